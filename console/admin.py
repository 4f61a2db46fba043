"""Admin: the audit log (filtered), operator accounts, and the settings, read-only."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

from flask import flash, redirect, url_for
from flask_login import current_user

from console.access import ADMIN, bp, requires
from console.render import (
    PAGE,
    act,
    arg_date,
    arg_text,
    csv_link,
    csv_response,
    form_text,
    page,
    page_number,
    wants_csv,
)
from core import audit, operators
from core.errors import DomainError
from core.messages import text
from runtime.http import services

SECRET_WORDS = ("secret", "key", "token", "password", "passkey", "credential", "url")


@bp.get("/audit")
@requires(ADMIN)
def audit_log() -> Any:
    svc = services()
    zone = svc.settings.zone
    since, until = arg_date("since"), arg_date("until")
    where = audit.AuditFilter(
        operator=arg_text("operator", 254),
        action=arg_text("action", 40),
        subject=arg_text("subject", 60),
        since=None if since is None else _midnight(since, zone),
        until=None if until is None else _midnight(until + timedelta(days=1), zone))
    number = page_number()
    if wants_csv():
        rows = audit.entries(svc.uow(), where, limit=100_000)
        return csv_response("audit", ("id", "at", "operator", "action", "subject", "before",
                                      "after", "reason"),
                            ((e.id, e.created_at, e.operator_email, e.action, e.subject,
                              e.before, e.after, e.reason) for e in rows))
    rows = audit.entries(svc.uow(), where, limit=PAGE, offset=(number - 1) * PAGE)
    return page("audit.html", title="Audit log", rows=rows, where=where,
                actions=audit.actions(svc.uow()), page_number=number, more=len(rows) == PAGE,
                since=since, until=until, csv=csv_link())


def _midnight(day: date, zone: Any) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


@bp.get("/operators")
@requires(ADMIN)
def operator_list() -> Any:
    rows = operators.all_operators(services().uow())
    if wants_csv():
        return csv_response("operators", ("email", "role", "active", "totp", "locked_until",
                                          "last_login_at"),
                            ((o.email, o.role, o.active, o.totp_secret is not None,
                              o.locked_until, o.last_login_at) for o in rows))
    return page("operators.html", title="Operators", rows=rows, csv=csv_link())


@bp.post("/operators")
@requires(ADMIN)
def operator_add() -> Any:
    svc = services()
    try:
        made = operators.add_operator(svc.uow(), email=form_text("email", 254),
                                      role=form_text("role", 10),
                                      password=form_text("password", 200), now=svc.now(),
                                      actor=current_user.actor)
    except DomainError as exc:
        flash(text(exc.key, "en", **exc.params), "error")
        return redirect(url_for("console.operator_list"), code=303)
    # The secret is shown once, on this response only: never stored in the session.
    return page("operator_added.html", title="Operator added", operator=made.operator,
                secret=made.totp_secret, uri=operators.provisioning_uri(made.operator))


@bp.post("/operators/<int:operator_id>/<action>")
@requires(ADMIN)
def operator_action(operator_id: int, action: str) -> Any:
    svc = services()
    if action not in ("enable", "disable"):
        return page("refused.html", title="Not found", why="No such action."), 404
    return act(lambda: operators.set_active(svc.uow(), current_user.actor,
                                            operator_id=operator_id, active=action == "enable",
                                            reason=form_text("reason"), now=svc.now()),
               f"Operator {action}d.", url_for("console.operator_list"))


def _shown(section: str, name: str, value: Any) -> Any:
    if any(word in name for word in SECRET_WORDS) and value:
        return "(set)"
    return value


@bp.get("/settings")
@requires(ADMIN)
def settings() -> Any:
    settings = services().settings
    sections = []
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if dataclasses.is_dataclass(value):
            sections.append((field.name, [(f.name, _shown(field.name, f.name,
                                                          getattr(value, f.name)))
                                          for f in dataclasses.fields(value)]))
    return page("settings.html", title="Settings", sections=sections)
