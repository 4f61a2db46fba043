"""What waits for a member's answer, for the USSD menu "Group & requests": group
invitations, guarantees asked of them, the choice on their partly funded loan, and
(for an agent) their members' hardship pauses. One read, newest kinds last."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from core.db import UnitOfWork
from core.groups import group_of
from core.models import (
    Group,
    GroupMember,
    Guarantee,
    GuaranteeStatus,
    Loan,
    LoanStatus,
    Member,
    MembershipStatus,
    Pause,
    PauseStatus,
)

INVITE, GUARANTEE, CHOICE, PAUSE, GROUP = "invite", "guarantee", "choice", "pause", "group"


@dataclass(frozen=True)
class Waiting:
    """One row: its kind, what it refers to (a group id, a guarantee id, a loan number,
    a pause id) and the words it is shown with (a name, a loan number, an amount)."""

    kind: str
    ref: str
    name: str = ""
    loan: str = ""
    amount: int = 0


def waiting(uow: UnitOfWork, member_id: int, now: datetime) -> list[Waiting]:
    """Everything waiting for this member's answer, then their group (if any)."""
    from core.guarantees import ASKABLE  # one home for the rule; no cycle at import

    with uow:
        s = uow.session
        rows = [Waiting(INVITE, str(gid), name=name) for gid, name in s.execute(
            select(Group.id, Group.name).join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.member_id == member_id,
                   GroupMember.status == MembershipStatus.INVITED).order_by(Group.id))]
        rows += [Waiting(GUARANTEE, str(gid), name=name.split()[0], loan=number or "",
                         amount=amount)
                 for gid, name, number, amount in s.execute(
                     select(Guarantee.id, Member.name, Loan.number, Guarantee.amount)
                     .join(Loan, Loan.id == Guarantee.loan_id)
                     .join(Member, Member.id == Loan.borrower_id)
                     .where(Guarantee.guarantor_id == member_id,
                            Guarantee.status == GuaranteeStatus.ASKED,
                            Loan.status.in_(ASKABLE)).order_by(Guarantee.id))]
        rows += [Waiting(CHOICE, number or "", loan=number or "", amount=pledged)
                 for number, pledged in s.execute(
                     select(Loan.number, Loan.pledged).where(
                         Loan.borrower_id == member_id, Loan.status == LoanStatus.LISTED,
                         Loan.choice_until.is_not(None), Loan.choice_until > now))]
        rows += [Waiting(PAUSE, str(pid), name=name.split()[0], loan=number or "",
                         amount=weeks)
                 for pid, name, number, weeks in s.execute(
                     select(Pause.id, Member.name, Loan.number, Pause.weeks)
                     .join(Loan, Loan.id == Pause.loan_id)
                     .join(Member, Member.id == Loan.borrower_id)
                     .where(Member.agent_id == member_id, Pause.status == PauseStatus.ASKED)
                     .order_by(Pause.id))]
        group = group_of(uow, member_id)
        if group is not None:
            rows.append(Waiting(GROUP, str(group.id), name=group.name))
        return rows


def count_of(member_id: Any, now: Any) -> Any:
    """How many things wait for a member's answer (the rows of `waiting` but their
    group), as one SQL expression over `member_id` and `now` (values, or a column and a
    bound parameter): the caller's statement carries it to the main menu's title."""
    from core.guarantees import ASKABLE

    borrower = Member.__table__.alias("borrower")
    parts = [
        select(func.count()).select_from(GroupMember).where(
            GroupMember.member_id == member_id,
            GroupMember.status == MembershipStatus.INVITED).scalar_subquery(),
        select(func.count()).select_from(Guarantee).join(Loan, Loan.id == Guarantee.loan_id)
        .where(Guarantee.guarantor_id == member_id, Guarantee.status == GuaranteeStatus.ASKED,
               Loan.status.in_(ASKABLE)).scalar_subquery(),
        select(func.count()).select_from(Loan).where(
            Loan.borrower_id == member_id, Loan.status == LoanStatus.LISTED,
            Loan.choice_until > now).scalar_subquery(),
        select(func.count()).select_from(Pause).join(Loan, Loan.id == Pause.loan_id)
        .join(borrower, borrower.c.id == Loan.borrower_id)
        .where(borrower.c.agent_id == member_id, Pause.status == PauseStatus.ASKED)
        .scalar_subquery(),
    ]
    return parts[0] + parts[1] + parts[2] + parts[3]


def in_group_of(member_id: Any) -> Any:
    """Whether a member has joined a group, as one SQL expression over `member_id`."""
    return select(GroupMember.id).where(
        GroupMember.member_id == member_id,
        GroupMember.status == MembershipStatus.JOINED).exists()


def count(uow: UnitOfWork, member_id: int, now: datetime) -> int:
    """How many things wait for this member's answer, in one query."""
    with uow:
        return int(uow.session.execute(select(count_of(member_id, now))).scalar_one())
