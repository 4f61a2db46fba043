"""Members: registration, verification, roles, language, PIN and credit limit."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased

from core import outbox
from core.config import Settings
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, PinLocked, WrongPin
from core.messages import LANGUAGES, format_time, text
from core.models import Member, MemberStatus, Purpose, Role
from core.phones import local, normalise

_NAME = re.compile(r"^[A-Za-z][A-Za-z .'-]{1,39}$")
_NATIONAL_ID = re.compile(r"^\d{6,10}$")
_PLACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .'-]{1,29}$")


@dataclass(frozen=True)
class Registration:
    member: Member
    created: bool


def clean_name(raw: str) -> str:
    name = " ".join(raw.split()).title()
    if not _NAME.match(name):
        raise InvalidInput("member.name_invalid")
    return name


def clean_national_id(raw: str) -> str:
    value = raw.strip().replace(" ", "")
    if not _NATIONAL_ID.match(value):
        raise InvalidInput("member.national_id_invalid")
    return value


def clean_place(raw: str) -> str:
    place = " ".join(raw.split()).title()
    if not _PLACE.match(place):
        raise InvalidInput("member.place_invalid")
    return place


def clean_language(raw: str) -> str:
    lang = raw.strip().lower()
    if lang not in LANGUAGES:
        raise InvalidInput("member.language_invalid")
    return lang


def clean_roles(roles: str | list[str] | tuple[str, ...]) -> str:
    items = roles.split(",") if isinstance(roles, str) else list(roles)
    valid = {str(r) for r in Role}
    cleaned = sorted({r.strip().lower() for r in items if r.strip()})
    if not cleaned or any(r not in valid for r in cleaned):
        raise InvalidInput("member.role_invalid")
    return ",".join(cleaned)


def find_by_phone(uow: UnitOfWork, phone: str) -> Member | None:
    """The member with this phone (any typed form), or None."""
    e164 = normalise(phone, uow.settings.app.default_region)
    return uow.session.scalar(select(Member).where(Member.phone == e164))


def national_id_in_use(uow: UnitOfWork, national_id: str) -> bool:
    """Whether a member already has this national ID (asked early, so an agent hears it
    before typing the rest)."""
    with uow:
        return uow.session.scalar(select(Member.id).where(
            Member.national_id == clean_national_id(national_id))) is not None


def id_clashes(uow: UnitOfWork) -> list[tuple[Member, Member]]:
    """Members whose claimed ID another member holds or also claims: pairs for an agent
    or an operator to settle, oldest claim first."""
    other = aliased(Member)
    with uow:
        rows = uow.session.execute(
            select(Member, other).join(other, and_(
                other.id != Member.id,
                or_(other.national_id == Member.claimed_national_id,
                    and_(other.claimed_national_id == Member.claimed_national_id,
                         other.id < Member.id))))
            .where(Member.claimed_national_id.is_not(None)).order_by(Member.id))
        return [(claimant, holder) for claimant, holder in rows]


def get_member(uow: UnitOfWork, member_id: int, *, lock: bool = False) -> Member:
    member = uow.session.get(Member, member_id, with_for_update=lock)
    if member is None:
        raise NotFound("member.not_found")
    return member


def register(
    uow: UnitOfWork, *, phone: str, name: str, now: datetime, national_id: str | None = None,
    language: str = "en", roles: str | list[str] | tuple[str, ...] = ("borrower", "lender"),
    pin: str | None = None, agent_id: int | None = None, place: str | None = None,
    accept_terms: bool = False, by_operator: bool = False, agent_pin: str | None = None,
) -> Registration:
    """Register a member: self-registered ones are `pending`; an agent's, or one an
    operator adds (`by_operator`), are `verified`.

    Idempotent by phone: registering the same phone with the same national id again
    returns the existing member (created=False); a different one raises member.exists.
    With `agent_pin`, the agent's PIN is checked first (a phone channel always passes it).

    Only an ID someone vouched for is the member's `national_id`, one member each. A
    self-registered member's ID is a claim: it is taken whether or not the ID is held,
    with the same answer, so a stranger learns nothing and locks no one out; an agent
    settles it on verifying (`verify`), and operators see clashes (`id_clashes`).
    """
    settings = uow.settings
    if agent_id is not None and agent_pin is not None:
        check_pin(uow, agent_id, agent_pin, now)
    e164 = normalise(phone, settings.app.default_region)
    clean_id = clean_national_id(national_id) if national_id else None
    with uow:
        existing = uow.session.scalar(select(Member).where(Member.phone == e164))
        if existing is not None:
            if clean_id and clean_id in (existing.national_id, existing.claimed_national_id):
                return Registration(existing, created=False)
            raise Conflict("member.exists")
        agent = None
        if agent_id is not None:
            agent = get_member(uow, agent_id)
            if not agent.has_role(Role.AGENT):
                raise NotAllowed("member.not_agent")
        vouched = agent is not None or by_operator
        if vouched and clean_id and uow.session.scalar(
                select(Member.id).where(Member.national_id == clean_id)):
            raise Conflict("member.national_id_taken")
        member = Member(
            phone=e164, name=clean_name(name), national_id=clean_id if vouched else None,
            claimed_national_id=None if vouched else clean_id,
            language=clean_language(language), roles=clean_roles(roles),
            place=clean_place(place) if place else None,
            status=MemberStatus.VERIFIED if vouched else MemberStatus.PENDING,
            agent_id=agent.id if agent else None, verified_at=now if vouched else None,
            terms_accepted_at=now if accept_terms else None,
            credit_limit=settings.minor(settings.credit.first_loan_limit), pin_failures=0,
            limit_frozen=False, loans_repaid=0, loans_repaid_on_time=0, tips_opt_out=False,
            tips_wanted=False, sms_unreachable=False, created_at=now,
        )
        if pin is not None:
            member.pin_hash = hash_pin(pin, settings)
        uow.session.add(member)
        uow.session.flush()
        outbox.queue(uow, [_welcome(member, agent, settings)], now)
        uow.commit()
        return Registration(member, created=True)


def helper_of(member: Member, settings: Settings) -> tuple[str, str]:
    """Whom a member calls for help, and the number as it is dialled at home: their
    agent's first name, or Harambee's support line when they have no agent."""
    region = settings.app.default_region
    if member.agent is not None:
        return member.agent.first_name, local(member.agent.phone, region)
    return text("helper.harambee", member.language), local(settings.app.support_phone, region)


def _welcome(member: Member, agent: Member | None, settings: Settings) -> outbox.Sms:
    """The first SMS says what the member must do before they may borrow, and never
    that they may when they may not: a member not yet verified waits for an agent to
    see their ID, and is told whom to call; one an agent or an operator registered
    must still accept the terms on their own phone. Otherwise (a member registered
    verified with the terms accepted, as the demo does) it is their `sms.verified`."""
    key, name = f"welcome:{member.id}", member.first_name
    service_code = settings.ussd.service_code
    if member.status != MemberStatus.VERIFIED:
        who, phone = helper_of(member, settings)
        return outbox.sms_to(member, key, "sms.welcome", Purpose.NOTICE, name=name, who=who,
                             phone=phone)
    terms = member.terms_accepted_at is not None
    if agent is not None:
        return outbox.sms_to(member, key,
                             "sms.welcome_by_agent_ready" if terms else "sms.welcome_by_agent",
                             Purpose.NOTICE, name=name, agent=agent.first_name,
                             service_code=service_code)
    return outbox.sms_to(member, key, "sms.welcome_ready" if terms else "sms.welcome_terms",
                         Purpose.NOTICE, name=name, service_code=service_code)


def _verified(member: Member, settings: Settings) -> outbox.Sms:
    """The SMS that tells a member they may now borrow: sent once, when they are both
    verified and have accepted the terms, whichever came last."""
    return outbox.sms_to(member, f"verified:{member.id}", "sms.verified", Purpose.NOTICE,
                         name=member.first_name, limit=settings.fmt(member.credit_limit))


def verified_notice(member: Member, settings: Settings) -> outbox.Sms:
    """The SMS that tells a member they may now borrow (for an operator's verification)."""
    return _verified(member, settings)


def verify(uow: UnitOfWork, *, agent_id: int, phone: str, now: datetime,
           agent_pin: str | None = None) -> Member:
    """A field agent vouches for a self-registered member after meeting them; with
    `agent_pin`, the agent's PIN is checked first."""
    if agent_pin is not None:
        check_pin(uow, agent_id, agent_pin, now)
    with uow:
        agent = get_member(uow, agent_id)
        if not agent.has_role(Role.AGENT):
            raise NotAllowed("member.not_agent")
        member = find_by_phone(uow, phone)
        if member is None:
            raise NotFound("member.not_found")
        if member.status == MemberStatus.VERIFIED:
            return member
        if member.id == agent.id:
            raise NotAllowed("error.not_allowed")
        claimed = member.claimed_national_id
        if claimed is not None:  # the agent saw the ID: the claim becomes the member's
            if uow.session.scalar(select(Member.id).where(Member.national_id == claimed)):
                raise Conflict("member.national_id_taken")  # a clash for the agent to settle
            member.national_id, member.claimed_national_id = claimed, None
        member.status = MemberStatus.VERIFIED
        member.verified_at = now
        member.agent_id = agent.id
        if member.terms_accepted_at is not None:
            outbox.queue(uow, [_verified(member, uow.settings)], now)
        uow.commit()
        return member


def accept_terms(uow: UnitOfWork, member_id: int, now: datetime, *,
                 pin: str | None = None) -> Member:
    """The member accepts the terms on their own phone and, when they have none yet,
    sets their first PIN (`pin`)."""
    with uow:
        member = get_member(uow, member_id)
        if pin is not None:
            if member.pin_hash is not None:
                raise NotAllowed("error.not_allowed")
            member.pin_hash = hash_pin(pin, uow.settings)
        if member.terms_accepted_at is None:
            member.terms_accepted_at = now
            if member.status == MemberStatus.VERIFIED:  # registered by an agent: ready now
                outbox.queue(uow, [_verified(member, uow.settings)], now)
        uow.commit()
        return member


def send_terms(uow: UnitOfWork, *, phone: str, language: str, now: datetime) -> None:
    """The full terms by SMS to a phone (a member or not), at most once a day."""
    settings = uow.settings
    today = now.astimezone(settings.zone).date()
    with uow:
        outbox.queue(uow, [outbox.Sms(key=f"terms:{phone}:{today.isoformat()}", phone=phone,
                                      language=language, template="sms.terms",
                                      purpose=Purpose.NOTICE,
                                      params={"fee": settings.loan.fee_percent})], now)
        uow.commit()


def set_language(uow: UnitOfWork, member_id: int, language: str) -> Member:
    with uow:
        member = get_member(uow, member_id)
        member.language = clean_language(language)
        uow.commit()
        return member


def set_tips(uow: UnitOfWork, member_id: int, *, wanted: bool) -> Member:
    """Tips on (TIPS ON, START) or off (TIPS OFF, STOP): core/tips.py sends them only
    to members who asked; a tip already written is not sent once they say stop."""
    with uow:
        member = get_member(uow, member_id)
        member.tips_wanted = wanted
        member.tips_opt_out = not wanted
        uow.commit()
        return member


def add_roles(uow: UnitOfWork, member_id: int, roles: str | list[str]) -> Member:
    with uow:
        member = get_member(uow, member_id)
        member.roles = clean_roles(list(member.role_set) + clean_roles(roles).split(","))
        uow.commit()
        return member


# ---------------------------------------------------------------- PIN

_WEAK_PINS = {"0000", "1111", "1234", "4321", "2222", "9999", "12345", "123456", "000000"}


def validate_pin(pin: str, settings: Settings) -> str:
    if not (pin.isdigit() and pin.isascii() and len(pin) == settings.pin.length):
        raise InvalidInput("pin.invalid", length=settings.pin.length)
    if pin in _WEAK_PINS or len(set(pin)) == 1:
        raise InvalidInput("pin.too_simple")
    return pin


def hash_pin(pin: str, settings: Settings) -> str:
    """scrypt with a random salt: slow on purpose, stdlib, no native dependency."""
    validate_pin(pin, settings)
    n = 2 ** settings.pin.hash_cost
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return f"scrypt${settings.pin.hash_cost}${salt.hex()}${digest.hex()}"


def _pin_matches(pin: str, stored: str) -> bool:
    try:
        _, cost, salt_hex, digest_hex = stored.split("$")
        digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt_hex), n=2 ** int(cost),
                                r=8, p=1, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def set_pin(uow: UnitOfWork, member_id: int, pin: str, *, old_pin: str | None = None,
            now: datetime) -> Member:
    """Set the PIN; changing an existing one needs the old one."""
    with uow:
        has_pin = get_member(uow, member_id).pin_hash is not None
    if has_pin:
        if old_pin is None:
            raise NotAllowed("error.not_allowed")
        check_pin(uow, member_id, old_pin, now)
    return replace_pin(uow, member_id, pin)


def replace_pin(uow: UnitOfWork, member_id: int, pin: str) -> Member:
    """Set a new PIN for a member whose current PIN the caller has already checked
    with `check_pin` (USSD checks it a hop before the new PIN is typed twice)."""
    with uow:
        member = get_member(uow, member_id)
        member.pin_hash = hash_pin(pin, uow.settings)
        member.pin_failures = 0
        member.pin_locked_until = None
        uow.commit()
        return member


def pin_lock_text(member: Member, settings: Settings) -> str:
    """When a locked PIN unlocks, in local time (HH:MM)."""
    assert member.pin_locked_until is not None
    return format_time(member.pin_locked_until.astimezone(settings.zone))


def check_pin(uow: UnitOfWork, member_id: int, pin: str, now: datetime) -> None:
    """Raise unless `pin` is the member's PIN: `PinLocked` while it is locked (even for
    the right PIN), `WrongPin` with the tries left, and on the last try `WrongPin`
    saying until when it is now locked (`pin.max_tries` wrong tries lock it for
    `pin.lock_minutes`).

    Its own short transaction, with the member's row locked and committed whatever the
    answer: a wrong try counts although the action it guarded is refused, and parallel
    guesses queue on the lock, so no more than `pin.max_tries` are ever judged. It runs
    before the action it guards, which then opens its own transaction.
    """
    if uow.active:
        raise RuntimeError("check_pin runs in a transaction of its own, before the action")
    settings = uow.settings
    with uow:
        member = get_member(uow, member_id, lock=True)
        if member.pin_hash is None:
            raise NotAllowed("pin.not_set")
        if is_pin_locked(member, now):
            raise PinLocked(until=pin_lock_text(member, settings))
        if _pin_matches(pin, member.pin_hash):
            if member.pin_failures or member.pin_locked_until:
                member.pin_failures = 0
                member.pin_locked_until = None
                uow.commit()
            return
        member.pin_failures += 1
        tries_left = settings.pin.max_tries - member.pin_failures
        if tries_left <= 0:
            member.pin_failures = 0
            member.pin_locked_until = now + timedelta(minutes=settings.pin.lock_minutes)
        uow.commit()
        if tries_left <= 0:
            raise WrongPin("pin.wrong_locked", tries_left=0,
                           until=pin_lock_text(member, settings))
    raise WrongPin(tries_left=tries_left)


def is_pin_locked(member: Member, now: datetime) -> bool:
    return member.pin_locked_until is not None and member.pin_locked_until > now


# ---------------------------------------------------------------- credit limit

def after_loan_repaid(member: Member, settings: Settings, *, on_time: bool) -> None:
    """The ladder: every loan repaid with each installment on time raises the limit."""
    member.loans_repaid += 1
    if not on_time:
        member.limit_frozen = True
        return
    member.loans_repaid_on_time += 1
    if member.limit_frozen:
        member.limit_frozen = False  # an on-time loan thaws the limit; the next one raises it
        return
    scale = settings.app.minor_scale
    raised = (Decimal(member.credit_limit) * settings.credit.raise_factor / scale).quantize(
        Decimal(1), rounding=ROUND_DOWN)
    member.credit_limit = min(int(raised) * scale, settings.minor(settings.credit.cap))


def freeze_limit(member: Member) -> None:
    member.limit_frozen = True
