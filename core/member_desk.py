"""What support does to a member from the console: verify them after seeing their ID,
suspend or reinstate them, unlock their PIN. Each step needs a reason, is audited in
its own transaction, and tells the member by SMS in their language."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from core import audit, outbox
from core.db import UnitOfWork
from core.errors import Conflict, NotFound
from core.members import get_member, verified_notice
from core.models import Member, MemberStatus, Purpose


def _member(uow: UnitOfWork, member_id: int) -> Member:
    try:
        return get_member(uow, member_id, lock=True)
    except NotFound:
        raise NotFound("member.not_found") from None


def unlock_pin(uow: UnitOfWork, actor: audit.Actor, *, member_id: int, reason: str,
               now: datetime) -> Member:
    """Clear a member's PIN lock and failed tries (after support has checked it is
    them on the phone); the member is told they can use their PIN again."""
    reason = audit.reason_given(reason)
    with uow:
        member = _member(uow, member_id)
        before = {"pin_failures": member.pin_failures, "pin_locked_until": member.pin_locked_until}
        member.pin_failures, member.pin_locked_until = 0, None
        outbox.queue(uow, [outbox.sms_to(member, f"pin_unlocked:{member.id}:{now.isoformat()}",
                                         "sms.pin_unlocked", Purpose.NOTICE,
                                         name=member.first_name)], now)
        audit.record(uow, actor, "member.unlock_pin", f"member:{member.id}", now=now,
                     before=before, after={"pin_failures": 0, "pin_locked_until": None},
                     reason=reason)
        uow.commit()
        return member


def suspend(uow: UnitOfWork, actor: audit.Actor, *, member_id: int, reason: str,
            now: datetime) -> Member:
    """Suspend a member: no new loan, pledge prompt or withdrawal (core/loans.py,
    core/stk.py, core/withdrawals.py refuse them); repaying stays open."""
    reason = audit.reason_given(reason)
    with uow:
        member = _member(uow, member_id)
        if member.status == MemberStatus.SUSPENDED:
            raise Conflict("member.already_suspended")
        before = {"status": str(member.status)}
        member.status = MemberStatus.SUSPENDED
        outbox.queue(uow, [outbox.sms_to(
            member, f"suspended:{member.id}:{now.isoformat()}", "sms.account_suspended",
            Purpose.NOTICE, name=member.first_name, support=uow.settings.app.support_phone)],
            now)
        audit.record(uow, actor, "member.suspend", f"member:{member.id}", now=now,
                     before=before, after={"status": str(member.status)}, reason=reason)
        uow.commit()
        return member


def reinstate(uow: UnitOfWork, actor: audit.Actor, *, member_id: int, reason: str,
              now: datetime) -> Member:
    """Lift a suspension: the member is verified again if they had been, else pending."""
    reason = audit.reason_given(reason)
    with uow:
        member = _member(uow, member_id)
        if member.status != MemberStatus.SUSPENDED:
            raise Conflict("member.not_suspended")
        member.status = (MemberStatus.VERIFIED if member.verified_at is not None
                         else MemberStatus.PENDING)
        outbox.queue(uow, [outbox.sms_to(
            member, f"reinstated:{member.id}:{now.isoformat()}", "sms.account_reinstated",
            Purpose.NOTICE, name=member.first_name)], now)
        audit.record(uow, actor, "member.reinstate", f"member:{member.id}", now=now,
                     before={"status": "suspended"}, after={"status": str(member.status)},
                     reason=reason)
        uow.commit()
        return member


def verify(uow: UnitOfWork, actor: audit.Actor, *, member_id: int, reason: str,
           now: datetime) -> Member:
    """An operator verifies a member (having seen their ID, e.g. at an office): the
    claimed ID becomes theirs, unless another member holds it (a clash to settle first)."""
    reason = audit.reason_given(reason)
    with uow:
        member = _member(uow, member_id)
        if member.status != MemberStatus.PENDING:
            raise Conflict("member.already_verified")
        before = {"status": str(member.status), "national_id": member.national_id,
                  "claimed_national_id": member.claimed_national_id}
        claimed = member.claimed_national_id
        if claimed is not None:
            if uow.session.scalar(select(Member.id).where(Member.national_id == claimed)):
                raise Conflict("member.national_id_taken")
            member.national_id, member.claimed_national_id = claimed, None
        member.status, member.verified_at = MemberStatus.VERIFIED, now
        if member.terms_accepted_at is not None:
            outbox.queue(uow, [verified_notice(member, uow.settings)], now)
        audit.record(uow, actor, "member.verify", f"member:{member.id}", now=now,
                     before=before, after={"status": "verified",
                                           "national_id": member.national_id},
                     reason=reason)
        uow.commit()
        return member
