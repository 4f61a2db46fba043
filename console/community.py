"""Trust and community (#16): groups (who is in each, their open loans and who is
behind), hardship pauses to approve or decline, borrowers' stories to approve or
reject, and members' data-rights cases (corrections and erasures, with their 7-day
clock). Each action calls the use case `harambee pause ...` / `harambee stories ...` /
`harambee data ...` call, with the operator as `actor`, so it is audited in the use
case's own transaction."""
from __future__ import annotations

from typing import Any

from flask import abort, request, url_for
from flask_login import current_user

from console.access import ANYONE, SUPPORT, bp, requires
from console.render import act, csv_link, csv_response, form_text, page, wants_csv
from core import groups, pauses, privacy, stories
from core.errors import InvalidInput, NotFound
from core.messages import text
from core.models import DataRequestStatus, PauseStatus, StoryStatus
from runtime.http import services


@bp.get("/groups")
@requires(*ANYONE)
def group_list() -> Any:
    svc = services()
    rows = groups.group_list(svc.uow(), svc.now())
    if wants_csv():
        return csv_response("groups", ("id", "name", "village", "agent", "officer", "members",
                                       "invited", "open_loans", "behind"),
                            ((g.id, g.name, g.village, g.agent, g.officer, g.members, g.invited,
                              g.open_loans, g.behind) for g in rows))
    return page("groups.html", title="Groups", rows=rows, csv=csv_link())


@bp.get("/groups/<int:group_id>")
@requires(*ANYONE)
def group(group_id: int) -> Any:
    svc = services()
    try:
        seen = groups.overview(svc.uow(), group_id, svc.now())
    except NotFound:
        abort(404)
    if wants_csv():
        return csv_response(f"group-{group_id}", ("member", "phone", "status", "loan",
                                                  "loan_status", "behind"),
                            ((m.name, m.phone, m.status, m.loan, m.loan_status or "", m.behind)
                             for m in seen.members))
    return page("group.html", title=seen.name, group=seen, csv=csv_link())


@bp.get("/pauses")
@requires(SUPPORT)
def pause_list() -> Any:
    svc = services()
    show_all = request.args.get("all") == "1"
    rows = pauses.list_pauses(svc.uow(), None if show_all else PauseStatus.ASKED, limit=200)
    if wants_csv():
        return csv_response("pauses", ("id", "status", "loan", "borrower", "agent", "weeks",
                                       "reason", "asked", "decided", "by"),
                            ((p.id, p.status, p.loan, p.borrower, p.agent or "", p.weeks,
                              p.reason, p.asked_at, p.decided_at, p.decided_by or "")
                             for p in rows))
    reasons = {key: text(f"pause.reason.{key}", "en") for key in pauses.REASONS}
    return page("pauses.html", title="Pauses", rows=rows, reasons=reasons, show_all=show_all,
                csv=csv_link())


@bp.post("/pauses/<int:pause_id>/approve")
@requires(SUPPORT)
def pause_approve(pause_id: int) -> Any:
    svc = services()
    return act(lambda: pauses.decide(svc.uow(), pause_id=pause_id, approve=True,
                                     now=svc.now(), actor=current_user.actor),
               f"Pause {pause_id} approved: the unpaid installments move; the borrower gets "
               "the new dates and the lenders are told, by SMS.", url_for("console.pause_list"))


@bp.post("/pauses/<int:pause_id>/decline")
@requires(SUPPORT)
def pause_decline(pause_id: int) -> Any:
    svc = services()
    return act(lambda: pauses.decide(svc.uow(), pause_id=pause_id, approve=False,
                                     now=svc.now(), actor=current_user.actor,
                                     note=form_text("note")),
               f"Pause {pause_id} declined; the borrower is told by SMS.",
               url_for("console.pause_list"))


@bp.get("/stories")
@requires(SUPPORT)
def story_list() -> Any:
    svc = services()
    show_all = request.args.get("all") == "1"
    rows = (stories.list_stories(svc.uow(), None, limit=200, newest_first=True) if show_all
            else stories.list_stories(svc.uow(), StoryStatus.PENDING, limit=200))
    if wants_csv():
        return csv_response("stories", ("id", "status", "loan", "borrower", "written",
                                        "decided", "by", "reason", "text"),
                            ((s.id, s.status, s.loan, s.borrower, s.created_at, s.decided_at,
                              s.decided_by, s.reason, s.text) for s in rows))
    return page("stories.html", title="Stories", rows=rows, show_all=show_all,
                csv=csv_link())


@bp.post("/stories/<int:story_id>/approve")
@requires(SUPPORT)
def story_approve(story_id: int) -> Any:
    svc = services()
    return act(lambda: stories.approve(svc.uow(), story_id=story_id,
                                       operator=current_user.email, now=svc.now(),
                                       actor=current_user.actor),
               f"Story {story_id} approved: it goes to the loan's lenders by SMS, then to "
               "members who want stories.", url_for("console.story_list"))


@bp.post("/stories/<int:story_id>/reject")
@requires(SUPPORT)
def story_reject(story_id: int) -> Any:
    svc = services()
    return act(lambda: stories.reject(svc.uow(), story_id=story_id,
                                      operator=current_user.email, reason=form_text("reason"),
                                      now=svc.now(), actor=current_user.actor),
               f"Story {story_id} rejected; the borrower is thanked and told by SMS.",
               url_for("console.story_list"))


@bp.get("/data")
@requires(SUPPORT)
def data_cases() -> Any:
    svc = services()
    show_all = request.args.get("all") == "1"
    rows = privacy.list_requests(svc.uow(), svc.now(),
                                 status=None if show_all else DataRequestStatus.OPEN, limit=500)
    if wants_csv():
        return csv_response("data-requests", ("case", "kind", "status", "member_id", "member",
                                              "opened", "due", "overdue", "closed", "by",
                                              "note", "text"),
                            ((r.number, r.kind, r.status, r.member_id, r.member, r.created_at,
                              r.due_at, r.overdue, r.closed_at, r.closed_by, r.note, r.text)
                             for r in rows))
    return page("data_cases.html", title="Data requests", rows=rows, now=svc.now(),
                show_all=show_all, csv=csv_link())


@bp.get("/data/<number>")
@requires(SUPPORT)
def data_case(number: str) -> Any:
    svc = services()
    try:
        case, blockers = privacy.request_case(svc.uow(), number, svc.now())
    except NotFound:
        abort(404)
    return page("data_case.html", title=f"Request {case.number}", case=case, now=svc.now(),
                blockers=[text(key, "en", **params) for key, params in blockers])


@bp.post("/data/<number>/close")
@requires(SUPPORT)
def data_close(number: str) -> Any:
    svc = services()
    done = request.form.get("outcome") == "done"
    return act(lambda: privacy.close_request(svc.uow(), number=number,
                                             operator=current_user.email,
                                             note=form_text("note", 200), done=done,
                                             now=svc.now(), actor=current_user.actor),
               f"Request {number} closed as {'done' if done else 'refused'}; the member is "
               "told by SMS.", url_for("console.data_case", number=number))


@bp.post("/data/<number>/erase")
@requires(SUPPORT)
def data_erase(number: str) -> Any:
    svc = services()

    def erase() -> None:
        # Irreversible: only when the case number was typed again, exactly.
        if form_text("confirm", 20).strip().upper() != number.strip().upper():
            raise InvalidInput("console.confirm_case", case=number[:12])
        privacy.erase(svc.uow(), number=number, operator=current_user.email, now=svc.now(),
                      actor=current_user.actor)

    return act(erase, f"Request {number} done: the member is erased; the ledger is kept.",
               url_for("console.data_case", number=number))
