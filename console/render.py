"""Pages, CSV exports and refusals: what every console view shares."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from flask import Flask, Response, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from core.errors import DomainError
from core.messages import text
from runtime.http import services

PAGE = 100  # rows per page of a list
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def install_filters(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_filter(when)
    app.add_template_filter(percent)


def money(minor: int | None) -> str:
    """Whole shillings, as people read them: `Ksh 1,500`."""
    return "" if minor is None else services().settings.fmt(int(minor))


def when(moment: datetime | date | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        local = moment.astimezone(services().settings.zone)
        return local.strftime("%d/%m/%Y %H:%M")
    return moment.strftime("%d/%m/%Y")


def percent(fraction: float | None) -> str:
    return "–" if fraction is None else f"{fraction * 100:.1f}%"


def page(template: str, **context: Any) -> str:
    return render_template(f"console/{template}", **context)


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    cell = str(value)
    return "'" + cell if cell.startswith(_FORMULA) else cell


def wants_csv() -> bool:
    return request.args.get("format") == "csv"


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """Rows as a CSV download."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})


def csv_link() -> Markup:
    args: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict(),
                            "format": "csv"}
    href = url_for(request.endpoint or "console.home", **args)
    return Markup('<a class="export" href="{}">Download CSV</a>').format(href)


def act(call: Callable[[], Any], done: str, back: str) -> BaseResponse:
    """Run one use case for an action; flash what happened, or the refusal in words,
    and go back (303, so a reload does not post again)."""
    try:
        call()
    except DomainError as exc:
        flash(text(exc.key, "en", **exc.params), "error")
    else:
        flash(done, "ok")
    return redirect(back, code=303)


def _clean(value: str, limit: int) -> str:
    """Text as typed, without NUL (no database can store it) and cut to `limit`."""
    return value.replace("\x00", "")[:limit]


def form_text(name: str, limit: int = 500) -> str:
    return _clean(request.form.get(name, ""), limit)


def arg_text(name: str, limit: int = 60) -> str:
    return _clean(request.args.get(name, ""), limit).strip()


def arg_int(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


def arg_date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, "").strip())
    except ValueError:
        return None


def page_number() -> int:
    return max(1, min(arg_int("page") or 1, 10_000))
