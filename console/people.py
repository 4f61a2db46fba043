"""Members (search, profile and credit history, verify, suspend, reinstate, unlock a
PIN) and disputes (the cases with their clocks, and each step on them)."""
from __future__ import annotations

from typing import Any

from flask import abort, request, url_for
from flask_login import current_user

from console.access import ANYONE, SUPPORT, bp, requires
from console.render import act, arg_text, csv_link, csv_response, form_text, page, wants_csv
from core import casebook, disputes, member_desk
from core.errors import NotFound
from runtime.http import services

MEMBER_ACTIONS = {
    "verify": (member_desk.verify, "Verified; the member was told by SMS."),
    "suspend": (member_desk.suspend, "Suspended; the member was told by SMS."),
    "reinstate": (member_desk.reinstate, "Reinstated; the member was told by SMS."),
    "unlock_pin": (member_desk.unlock_pin, "PIN unlocked; the member was told by SMS."),
}


@bp.get("/members")
@requires(*ANYONE)
def members() -> Any:
    svc = services()
    query = arg_text("q", 60)
    found = casebook.search_members(svc.uow(), query) if query.strip() else []
    if wants_csv():
        return csv_response("members", ("id", "name", "phone", "status", "place", "roles",
                                        "created_at"),
                            ((m.id, m.name, m.phone, m.status, m.place, m.roles, m.created_at)
                             for m in found))
    return page("members.html", title="Members", query=query, found=found, csv=csv_link())


@bp.get("/members/<int:member_id>")
@requires(*ANYONE)
def member(member_id: int) -> Any:
    svc = services()
    try:
        file = casebook.member_file(svc.uow(), member_id)
    except NotFound:
        abort(404)
    if wants_csv():
        return csv_response(f"member-{member_id}-sms", ("created_at", "status", "text"),
                            ((m.created_at, m.status, m.text) for m in file.sms_out))
    return page("member.html", title=file.member.name, file=file, now=svc.now(),
                csv=csv_link())


@bp.post("/members/<int:member_id>/<action>")
@requires(SUPPORT)
def member_action(member_id: int, action: str) -> Any:
    if action not in MEMBER_ACTIONS:
        abort(404)
    svc = services()
    use_case, done = MEMBER_ACTIONS[action]
    return act(lambda: use_case(svc.uow(), current_user.actor, member_id=member_id,
                                reason=form_text("reason"), now=svc.now()),
               done, url_for("console.member", member_id=member_id))


@bp.get("/disputes")
@requires(SUPPORT)
def cases() -> Any:
    svc = services()
    show_all = request.args.get("all") == "1"
    rows = disputes.cases(svc.uow(), open_only=not show_all)
    if wants_csv():
        return csv_response("disputes", ("case", "status", "loan", "member", "phone", "opened",
                                         "due", "text"),
                            ((r.dispute.number, r.dispute.status, r.loan_number, r.member.name,
                              r.member.phone, r.dispute.created_at, r.due, r.dispute.text)
                             for r in rows))
    return page("disputes.html", title="Disputes", rows=rows, now=svc.now(),
                show_all=show_all, csv=csv_link())


@bp.get("/disputes/<int:dispute_id>")
@requires(SUPPORT)
def case(dispute_id: int) -> Any:
    svc = services()
    try:
        row, notes = disputes.case_file(svc.uow(), dispute_id)
    except NotFound:
        abort(404)
    if wants_csv():
        return csv_response(f"case-{row.dispute.number}", ("at", "step", "text", "told_member"),
                            ((n.created_at, n.step, n.text, n.told_member) for n in notes))
    return page("dispute.html", title=f"Case {row.dispute.number}", row=row, notes=notes,
                now=svc.now(), csv=csv_link())


@bp.post("/disputes/<int:dispute_id>/step")
@requires(SUPPORT)
def case_step(dispute_id: int) -> Any:
    svc = services()
    step = form_text("step", 12)
    return act(lambda: disputes.take_step(
        svc.uow(), current_user.actor, dispute_id=dispute_id, step=step,
        text=form_text("text", 1000), now=svc.now(),
        tell_member=request.form.get("tell") == "1"),
        f"Done: {step}.", url_for("console.case", dispute_id=dispute_id))
