"""Operator accounts: who may use the console, and how they prove it.

Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed when those
change). Finance and admin operators must also give a TOTP code (RFC 6238, pyotp); a
code is good once, so one seen over a shoulder cannot be replayed. Five failed logins
in a row lock the account for fifteen minutes; a login refused for any reason says
the same thing, and an unknown email costs the same argon2 work as a known one, so
the login form tells no one which emails exist.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from core import audit
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.models import Operator, OperatorRole

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 12
TOTP_STEP = 30
ISSUER = "Harambee console"
NEEDS_TOTP = (OperatorRole.FINANCE, OperatorRole.ADMIN)

_hasher = PasswordHasher()
# Checked against when the email is unknown, so a miss costs what a hit costs.
_DUMMY = _hasher.hash("not-a-real-password-at-all")


def clean_email(raw: str) -> str:
    email = raw.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 254 or any(c.isspace() for c in email):
        raise InvalidInput("operator.bad_email")
    return email


def clean_role(raw: str) -> OperatorRole:
    try:
        return OperatorRole(raw.strip().lower())
    except ValueError:
        raise InvalidInput("operator.bad_role") from None


def provisioning_uri(operator: Operator) -> str | None:
    """The otpauth:// URI an authenticator app reads (as a QR code or typed)."""
    if operator.totp_secret is None:
        return None
    return pyotp.TOTP(operator.totp_secret).provisioning_uri(name=operator.email,
                                                             issuer_name=ISSUER)


@dataclass(frozen=True)
class NewOperator:
    operator: Operator
    totp_secret: str | None


def add_operator(uow: UnitOfWork, *, email: str, role: str, password: str, now: datetime,
                 totp: bool | None = None, actor: audit.Actor | None = None) -> NewOperator:
    """Create an operator. Finance and admin always get a TOTP secret; support gets one
    when `totp` is true. Returns the secret once, to be shown to its owner."""
    email, chosen = clean_email(email), clean_role(role)
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("operator.short_password", n=MIN_PASSWORD)
    secret = pyotp.random_base32() if (chosen in NEEDS_TOTP or totp) else None
    with uow:
        if uow.session.scalar(select(Operator.id).where(Operator.email == email)):
            raise Conflict("operator.exists")
        operator = Operator(email=email, role=chosen, password_hash=_hasher.hash(password),
                            totp_secret=secret, failed_logins=0, active=True, created_at=now)
        uow.session.add(operator)
        uow.session.flush()
        if actor is not None:
            audit.record(uow, actor, "operator.add", f"operator:{operator.id}", now=now,
                         after={"email": email, "role": str(chosen)})
        uow.commit()
        return NewOperator(operator, secret)


def get_operator(uow: UnitOfWork, operator_id: int) -> Operator | None:
    """The operator with this id, if still active (the session loader)."""
    with uow:
        operator = uow.session.get(Operator, operator_id)
        return operator if operator is not None and operator.active else None


def _totp_step(secret: str, code: str, now: datetime, last: int | None) -> int | None:
    """The time step `code` belongs to (now, or one either side for clock drift), if it
    is right and newer than the last one used."""
    code = code.strip().replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    here = int(now.timestamp()) // TOTP_STEP
    for step in (here - 1, here, here + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code) and (last is None
                                                                      or step > last):
            return step
    return None


def authenticate(uow: UnitOfWork, *, email: str, password: str, code: str,
                 now: datetime) -> Operator:
    """The operator, when the password (and, where one is set, the TOTP code) is right
    and the account is neither locked nor disabled. Every refusal is
    NotAllowed("operator.bad_login") except a lock, which says until when."""
    try:
        email = clean_email(email)
    except InvalidInput:
        email = ""
    refused: str | None = None
    with uow:
        operator = uow.session.scalar(
            select(Operator).where(Operator.email == email).with_for_update()) if email else None
        if operator is None or not operator.active:
            _password_ok(_DUMMY, password)
            raise NotAllowed("operator.bad_login")
        if operator.locked_until is not None and operator.locked_until > now:
            raise NotAllowed("operator.locked", until=operator.locked_until.strftime(
                "%H:%M UTC"))
        step = None
        good = _password_ok(operator.password_hash, password)
        if good and operator.totp_secret is not None:
            step = _totp_step(operator.totp_secret, code, now, operator.last_totp_step)
            good = step is not None
        if not good:
            operator.failed_logins += 1
            refused = "operator.bad_login"
            if operator.failed_logins >= MAX_FAILURES:
                operator.locked_until, operator.failed_logins = now + LOCK_FOR, 0
        else:
            operator.failed_logins, operator.locked_until = 0, None
            operator.last_login_at = now
            if step is not None:
                operator.last_totp_step = step
            if _hasher.check_needs_rehash(operator.password_hash):
                operator.password_hash = _hasher.hash(password)
        uow.commit()
    if refused:
        raise NotAllowed(refused)
    return operator


def _password_ok(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def all_operators(uow: UnitOfWork) -> list[Operator]:
    with uow:
        return list(uow.session.scalars(select(Operator).order_by(Operator.email)))


def set_active(uow: UnitOfWork, actor: audit.Actor, *, operator_id: int, active: bool,
               reason: str, now: datetime) -> Operator:
    """An admin disables an operator (their sessions end at the next request) or
    enables them again, and unlocks them."""
    reason = audit.reason_given(reason)
    with uow:
        operator = uow.session.get(Operator, operator_id, with_for_update=True)
        if operator is None:
            raise NotFound("error.not_found")
        if operator.id == actor.operator_id and not active:
            raise NotAllowed("operator.not_self")
        before = {"active": operator.active, "locked_until": operator.locked_until}
        operator.active, operator.locked_until, operator.failed_logins = active, None, 0
        audit.record(uow, actor, "operator.enable" if active else "operator.disable",
                     f"operator:{operator.id}", now=now, before=before,
                     after={"active": active, "locked_until": None}, reason=reason)
        uow.commit()
        return operator
