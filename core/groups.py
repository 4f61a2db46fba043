"""Groups (chamas): an agent forms one by USSD (a name, a village, members by phone);
each member joins only by saying yes on their own phone; the group's officer (the
first member the agent named) sees the group's loans and who is behind. No one outside
the group sees any of it. `overview` is the read the console's group page calls, and
`group_list` its list of groups.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from core import outbox
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.members import check_pin, clean_place, get_member
from core.models import (
    OPEN_LOAN_STATES,
    Group,
    GroupMember,
    Installment,
    Loan,
    LoanStatus,
    Member,
    MembershipStatus,
    Purpose,
    Role,
)
from core.phones import normalise

MIN_MEMBERS = 3  # a chama of fewer is not a group; the officer counts
MAX_MEMBERS = 30


def clean_group_name(raw: str) -> str:
    """A group's name as people write it: letters, digits and spaces, 3 to 40."""
    name = " ".join(raw.split())
    if not 3 <= len(name) <= 40 or not all(c.isalnum() or c in " '-" for c in name) \
            or not name.isascii():
        raise InvalidInput("group.name_invalid")
    return name.title()


def clean_village(raw: str) -> str:
    return clean_place(raw)


def group_of(uow: UnitOfWork, member_id: int) -> Group | None:
    """The group the member has joined, if any (one at a time)."""
    return uow.session.scalar(
        select(Group).join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.member_id == member_id,
               GroupMember.status == MembershipStatus.JOINED).limit(1))


def same_group(uow: UnitOfWork, a: int, b: int) -> Group | None:
    """The group both members have joined, if they share one."""
    group = group_of(uow, a)
    return group if group is not None and group_of(uow, b) == group else None


def form_group(uow: UnitOfWork, *, agent_id: int, name: str, village: str,
               phones: list[str], pin: str, now: datetime, request_key: str) -> Group:
    """The agent names a group and its members (the first is its officer); each is
    invited by SMS and joins only by saying yes on their own phone. The agent's PIN
    first. Idempotent by `request_key`."""
    check_pin(uow, agent_id, pin, now)
    settings = uow.settings
    with uow:
        existing = uow.session.scalar(select(Group).where(Group.request_key == request_key))
        if existing is not None:
            return existing
        agent = get_member(uow, agent_id)
        if not agent.has_role(Role.AGENT):
            raise NotAllowed("member.not_agent")
        name, village = clean_group_name(name), clean_village(village)
        wanted = list(dict.fromkeys(normalise(p, settings.app.default_region) for p in phones))
        if not MIN_MEMBERS <= len(wanted) <= MAX_MEMBERS:
            raise InvalidInput("group.size", min=MIN_MEMBERS, max=MAX_MEMBERS)
        found = {m.phone: m for m in uow.session.scalars(
            select(Member).where(Member.phone.in_(wanted)))}
        members = []
        for phone in wanted:
            member = found.get(phone)
            if member is None:
                raise NotFound("group.member_unknown", phone=phone[-9:])
            if group_of(uow, member.id) is not None:
                raise NotAllowed("group.already_in", name=member.first_name)
            members.append(member)
        group = Group(name=name, village=village, agent_id=agent.id, officer_id=members[0].id,
                      request_key=request_key, created_at=now)
        uow.session.add(group)
        uow.session.flush()
        for member in members:
            uow.session.add(GroupMember(group_id=group.id, member_id=member.id,
                                        status=MembershipStatus.INVITED, invited_at=now))
        outbox.queue(uow, [outbox.sms_to(
            member, f"group_invite:{group.id}:{member.id}",
            "sms.group_invite_officer" if i == 0 else "sms.group_invite", Purpose.NOTICE,
            agent=agent.first_name, group=name, village=village,
            service_code=settings.ussd.service_code)
            for i, member in enumerate(members)], now)
        uow.commit()
        return group


@dataclass(frozen=True)
class Invitation:
    group_id: int
    name: str
    village: str
    agent: str


def invitations(uow: UnitOfWork, member_id: int) -> list[Invitation]:
    """Groups waiting for this member's yes or no, oldest first."""
    with uow:
        rows = uow.session.execute(
            select(Group.id, Group.name, Group.village, Member.name)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .join(Member, Member.id == Group.agent_id)
            .where(GroupMember.member_id == member_id,
                   GroupMember.status == MembershipStatus.INVITED).order_by(Group.id))
        return [Invitation(gid, name, village, agent.split()[0])
                for gid, name, village, agent in rows]


def answer_invitation(uow: UnitOfWork, *, member_id: int, group_id: int, join: bool,
                      now: datetime) -> MembershipStatus:
    """The member's own yes or no, from their own phone. A second answer changes
    nothing; joining a second group is refused (one at a time)."""
    with uow:
        member = get_member(uow, member_id, lock=True)
        place = uow.session.scalar(select(GroupMember).where(
            GroupMember.group_id == group_id, GroupMember.member_id == member_id))
        if place is None:
            raise NotFound("group.not_found")
        if place.status != MembershipStatus.INVITED:
            if place.status == (MembershipStatus.JOINED if join else MembershipStatus.DECLINED):
                return place.status
            raise Conflict("group.answered")
        if join and group_of(uow, member_id) is not None:
            raise NotAllowed("group.already_in", name=member.first_name)
        place.status = MembershipStatus.JOINED if join else MembershipStatus.DECLINED
        place.answered_at = now
        group = place.group
        if join:
            outbox.queue(uow, [outbox.sms_to(member, f"group_joined:{group.id}:{member.id}",
                                             "sms.group_joined", Purpose.NOTICE,
                                             group=group.name)], now)
        uow.commit()
        return place.status


@dataclass(frozen=True)
class MemberLine:
    """One member as the group's officer sees them: their open loan and how far behind."""

    name: str
    phone: str
    status: MembershipStatus
    loan: str  # the open loan's number, "" when none
    loan_status: LoanStatus | None
    behind: int  # overdue, minor units
    member_id: int = 0  # for the console's links; the USSD screens do not show it


@dataclass(frozen=True)
class GroupOverview:
    id: int
    name: str
    village: str
    officer: str
    agent: str
    members: tuple[MemberLine, ...]

    @property
    def behind(self) -> tuple[MemberLine, ...]:
        return tuple(m for m in self.members if m.behind)


def overview(uow: UnitOfWork, group_id: int, now: datetime) -> GroupOverview:
    """A group, its members, their open loans and who is behind: for the group's
    officer (`overview_for`) and the console's group page. One statement whatever the
    group's size (a read, as `group_list`): the group with its officer and agent, a row
    per member (joined or invited), each with their latest open loan past draft and what
    of it is past due (correlated subqueries)."""
    today = now.astimezone(uow.settings.zone).date()
    agent, officer = aliased(Member), aliased(Member)
    owned = aliased(Loan)
    open_loan = (select(owned.id).where(
        owned.borrower_id == GroupMember.member_id, owned.status.in_(OPEN_LOAN_STATES),
        owned.status != LoanStatus.DRAFT).order_by(owned.id.desc()).limit(1)
        .correlate(GroupMember).scalar_subquery())
    behind = (select(func.coalesce(func.sum(Installment.amount - Installment.paid), 0))
              .where(Installment.loan_id == Loan.id, Installment.due_on < today)
              .correlate(Loan).scalar_subquery())
    query = (select(Group.id, Group.name, Group.village, officer.name, agent.name,
                    GroupMember.member_id, Member.name, Member.phone, GroupMember.status,
                    Loan.number, Loan.status, behind)
             .join(officer, officer.id == Group.officer_id)
             .join(agent, agent.id == Group.agent_id)
             .outerjoin(GroupMember, (GroupMember.group_id == Group.id)
                        & (GroupMember.status != MembershipStatus.DECLINED))
             .outerjoin(Member, Member.id == GroupMember.member_id)
             .outerjoin(Loan, Loan.id == open_loan)
             .where(Group.id == group_id)
             .order_by(GroupMember.id))
    with uow.reading() as conn:
        rows = conn.execute(query).all()
    if not rows:
        raise NotFound("group.not_found")
    lines = tuple(MemberLine(name, phone, status, number or "", loan_status,
                             int(late or 0) if loan_status is not None else 0, member_id)
                  for *_, member_id, name, phone, status, number, loan_status, late in rows
                  if member_id is not None)
    group_id, name, village, officer_name, agent_name = rows[0][:5]
    return GroupOverview(group_id, name, village, officer_name, agent_name, lines)


@dataclass(frozen=True)
class GroupRow:
    """A group as the console lists it."""

    id: int
    name: str
    village: str
    agent: str
    officer: str
    members: int  # joined
    invited: int  # not yet answered
    open_loans: int  # of its members (joined or invited), past draft
    behind: int  # members with an installment past due and not fully paid


def group_list(uow: UnitOfWork, now: datetime, *, limit: int = 500) -> list[GroupRow]:
    """Every group by name, with its counts: one statement (correlated subqueries),
    counting open loans and who is behind as `overview` does."""
    today = now.astimezone(uow.settings.zone).date()
    agent, officer = aliased(Member), aliased(Member)
    here = GroupMember.group_id == Group.id
    in_group = select(GroupMember.member_id).where(
        here, GroupMember.status != MembershipStatus.DECLINED).correlate(Group)
    owing = (Loan.borrower_id.in_(in_group), Loan.status.in_(OPEN_LOAN_STATES),
             Loan.status != LoanStatus.DRAFT)
    late = exists().where(Installment.loan_id == Loan.id, Installment.due_on < today,
                          Installment.paid < Installment.amount)

    def counted(column: Any, *where: Any) -> Any:
        return select(column).where(*where).correlate(Group).scalar_subquery()

    query = (select(Group.id, Group.name, Group.village, agent.name, officer.name,
                    counted(func.count(GroupMember.id), here,
                            GroupMember.status == MembershipStatus.JOINED),
                    counted(func.count(GroupMember.id), here,
                            GroupMember.status == MembershipStatus.INVITED),
                    counted(func.count(Loan.id), *owing),
                    counted(func.count(func.distinct(Loan.borrower_id)), *owing, late))
             .join(agent, agent.id == Group.agent_id)
             .join(officer, officer.id == Group.officer_id)
             .order_by(Group.name, Group.id).limit(limit))
    with uow.reading() as conn:
        return [GroupRow(*row) for row in conn.execute(query)]


def overview_for(uow: UnitOfWork, member_id: int, now: datetime) -> GroupOverview:
    """The caller's own group: its loans and who is behind for its officer; for any
    other member, its members only. Outside a group, NotFound."""
    with uow:
        group = group_of(uow, member_id)
        if group is None:
            raise NotFound("group.none")
        seen = overview(uow, group.id, now)
        if group.officer_id != member_id:
            seen = GroupOverview(seen.id, seen.name, seen.village, seen.officer, seen.agent,
                                 tuple(MemberLine(m.name, m.phone, m.status, "", None, 0,
                                                  m.member_id) for m in seen.members))
        return seen


def is_officer(uow: UnitOfWork, member_id: int) -> bool:
    with uow:
        group = group_of(uow, member_id)
        return group is not None and group.officer_id == member_id
