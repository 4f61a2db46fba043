"""`harambee reconcile STATEMENT.csv`: M-Pesa's organisation statement against the ledger.

The export is read by `mpesa.statement` (pure), compared by `core.reconciliation`
(a read use case); with `--apply`, each payment the ledger lacks is recorded through
`repayments.record_payment`, one transaction each, exactly as if its confirmation had
come. Like `harambee check` it needs only the database: the receipts' SMS and the
lenders' notices it writes are sent by the sweeps of `harambee cron`. Exit 0 when
everything matches, 1 when something needs attention, 2 when the file cannot be read.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from core.config import ConfigError, Settings, load_settings
from core.db import Database, UnitOfWork
from core.reconciliation import Item, Line, Report, Side
from mpesa.statement import Kind, Row, Statement, StatementError

PROVIDER = "mpesa"
PROGRESS_FROM_ROWS = 5_000  # a progress bar on a terminal for a statement this long
PROGRESS_FROM_PAYMENTS = 100  # and for applying this many payments
CATEGORIES = (("matched", "matched"), ("missing_from_ledger", "missing from the ledger"),
              ("missing_from_statement", "missing from the statement"),
              ("mismatched", "amount mismatch"))


@dataclass(frozen=True)
class Applied:
    """What --apply did with one statement row missing from the ledger."""

    row: Row
    outcome: str  # "recorded", "already recorded", "not applied"
    detail: str


@click.command("reconcile")
@click.argument("statement", type=click.Path(path_type=Path))
@click.option("--apply", "apply_", is_flag=True,
              help="Record the payments on the statement that the ledger lacks.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, every row included.")
def reconcile(statement: Path, apply_: bool, as_json: bool) -> None:
    """Compare M-Pesa's organisation statement export (CSV) with the ledger: matched rows,
    rows missing from the ledger, rows missing from the statement, amount mismatches.
    Exit 0 when everything matches, 1 otherwise, 2 when the file cannot be read."""
    from mpesa.statement import read_statement

    try:
        data = statement.read_bytes()
    except OSError as exc:
        _unreadable(statement, exc.strerror or str(exc))
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    database = Database(settings)
    try:
        try:
            with _progress(data.count(b"\n"), PROGRESS_FROM_ROWS, "reading", "rows") as tick:
                parsed = read_statement(data, scale=settings.app.minor_scale,
                                        zone=settings.zone, progress=tick)
        except StatementError as exc:
            _unreadable(statement, str(exc))
        report = _compare(database, parsed)
        applied: list[Applied] = []
        if apply_:
            applied = _apply(database, parsed, report)
            report = _compare(database, parsed)
        out = _Output(settings, statement, parsed)
        if as_json:
            click.echo(json.dumps(out.document(report, applied if apply_ else None),
                                  ensure_ascii=False, indent=1))
        else:
            out.text(report, applied if apply_ else None)
        sys.exit(0 if report.clean and not parsed.problems else 1)
    finally:
        database.dispose()


def _unreadable(path: Path, why: str) -> NoReturn:
    click.echo(f"harambee reconcile: cannot read {path}: {why}", err=True)
    sys.exit(2)


def _lines(parsed: Statement) -> list[Line]:
    sides = {Kind.IN: Side.IN, Kind.OUT: Side.OUT}
    return [Line(row=r.row, receipt=r.receipt, side=sides[r.kind], amount=r.amount,
                 completed_at=r.completed_at) for r in parsed.rows if r.kind in sides]


def _compare(database: Database, parsed: Statement) -> Report:
    from core import reconciliation

    return reconciliation.reconcile(UnitOfWork(database), provider=PROVIDER,
                                    lines=_lines(parsed))


def _apply(database: Database, parsed: Statement, report: Report) -> list[Applied]:
    """Record each payment the ledger lacks, in its own transaction. Only customers'
    paybill payments: other money in (a transfer between the organisation's own
    accounts) is no repayment, and is left for a person to look at."""
    from core import repayments
    from core.errors import DomainError
    from core.messages import text
    from core.models import PaymentKind

    by_row = {row.row: row for row in parsed.rows}
    missing = [by_row[item.line.row] for item in report.missing_from_ledger
               if item.side == Side.IN and item.line is not None]
    done: list[Applied] = []
    with _progress(len(missing), PROGRESS_FROM_PAYMENTS, "applying", "payments") as tick:
        for count, row in enumerate(missing, start=1):
            tick(count, len(missing))
            if not row.pay_bill:
                done.append(Applied(row, "not applied",
                                    "not a Pay Bill payment: look at it by hand"))
                continue
            try:
                receipt = repayments.record_payment(
                    UnitOfWork(database), provider=PROVIDER, transaction_id=row.receipt,
                    phone=row.msisdn, amount=row.amount,
                    currency=database.settings.app.currency, reference=row.account,
                    occurred_at=row.completed_at, now=datetime.now(UTC))
            except DomainError as exc:
                done.append(Applied(row, "not applied", text(exc.key, "en", **exc.params)))
                continue
            payment = receipt.payment
            where = {PaymentKind.REPAYMENT: f"repayment of {payment.reference}",
                     PaymentKind.TOPUP: f"wallet top-up for {payment.reference}",
                     PaymentKind.UNMATCHED: (
                         f"in suspense (account {payment.reference!r} names no loan or member)"
                         if payment.reference else "in suspense (no account)")}[payment.kind]
            done.append(Applied(row, "recorded" if receipt.created else "already recorded",
                                f"payment #{payment.id}, {where}"))
    return done


@contextmanager
def _progress(total: int, threshold: int, what: str, unit: str
              ) -> Iterator[Callable[[int, int], None]]:
    """A progress callback: a bar on stderr when it is a terminal and `total` is at
    least `threshold`, else nothing at all (tests, pipes, cron mail)."""
    if total < threshold or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=what, unit=f" {unit}", leave=False, file=sys.stderr)

    def tick(done: int, of: int) -> None:
        bar.total = of
        bar.update(done - bar.n)

    try:
        yield tick
    finally:
        bar.close()


class _Output:
    """The report, for a finance person (text) or a machine (JSON)."""

    def __init__(self, settings: Settings, path: Path, parsed: Statement) -> None:
        self.settings = settings
        self.path = path
        self.parsed = parsed
        self.rows = {row.row: row for row in parsed.rows}
        self.charges = [row for row in parsed.rows if row.kind == Kind.CHARGE]

    def fmt(self, minor: int) -> str:
        return self.settings.fmt(minor)

    def when(self, moment: datetime) -> str:
        return moment.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M:%S")

    # ------------------------------------------------------------ text

    def text(self, report: Report, applied: list[Applied] | None) -> None:
        parsed, echo = self.parsed, click.echo
        movements = len(parsed.rows) - len(self.charges)
        if report.period:
            start, end = report.period
            echo(f"Statement {self.path.name}: {_plural(movements, 'movement')} from "
                 f"{self.when(start)} "
                 f"to {self.when(end)} ({self.settings.app.timezone} time)")
        else:
            echo(f"Statement {self.path.name}: no completed movements")
        notes = [f"header on row {parsed.header_row}"]
        if parsed.not_completed:
            notes.append(f"{_plural(parsed.not_completed, 'row')} not completed (ignored)")
        if self.charges:
            notes.append(f"{_plural(len(self.charges), 'charge')} of "
                         f"{self.fmt(sum(r.amount for r in self.charges))} (not compared)")
        if parsed.problems:
            notes.append(f"{_plural(len(parsed.problems), 'unreadable row')} (skipped)")
        echo("  " + "; ".join(notes))
        if applied is not None:
            self._applied(applied)
        echo("")
        echo(f"  {'':<28}{'count':>7}{'money in':>17}{'money out':>17}")
        for name, label in CATEGORIES:
            items: list[Item] = getattr(report, name)
            money_in, money_out = (self.fmt(total) if count else "-"
                                   for count, total in _totals(items))
            echo(f"  {label:<28}{len(items):>7,}{money_in:>17}{money_out:>17}")
        if parsed.problems:
            echo(f"  {'unreadable rows':<28}{len(parsed.problems):>7,}{'?':>17}{'?':>17}")
        echo("  (amounts as the statement has them; missing from the statement, as the "
             "ledger has them)")
        self._attention(report)
        echo("")
        attention = (len(report.missing_from_ledger) + len(report.missing_from_statement)
                     + len(report.mismatched) + len(parsed.problems))
        echo("Everything matches." if not attention
             else f"{_plural(attention, 'item')} to look at.")

    def _applied(self, applied: list[Applied]) -> None:
        echo = click.echo
        if not applied:
            echo("\nApplied: no payment was missing from the ledger.")
            return
        echo(f"\nApplied ({_plural(len(applied), 'payment')} missing from the ledger):")
        for done in applied:
            row = done.row
            echo(f"  row {row.row:<6} {row.receipt:<12} {self.fmt(row.amount):>14}  "
                 f"{done.outcome}: {done.detail}")
        counts = {o: sum(1 for d in applied if d.outcome == o)
                  for o in ("recorded", "already recorded", "not applied")}
        echo("  " + ", ".join(f"{n} {o}" for o, n in counts.items()))

    def _attention(self, report: Report) -> None:
        echo = click.echo
        if report.missing_from_ledger:
            echo("\nMissing from the ledger (on the statement, not recorded by us):")
            for item in report.missing_from_ledger:
                assert item.line is not None
                row = self.rows[item.line.row]
                echo(f"  row {row.row:<6} {_side(item.side):<4} {row.receipt:<12} "
                     f"{self.when(row.completed_at)} {self.fmt(row.amount):>14}  {row.details}")
        if report.missing_from_statement:
            echo("\nMissing from the statement (recorded by us, not on the statement):")
            for item in report.missing_from_statement:
                assert item.entry is not None
                entry = item.entry
                what = (f"reference {entry.reference}" if item.side == Side.IN
                        else entry.reference)
                echo(f"  {_side(item.side):<4} {entry.receipt:<12} {self.when(entry.at)} "
                     f"{self.fmt(entry.amount):>14}  {entry.label}, {what}")
        if report.mismatched:
            echo("\nAmount mismatches (the same receipt, another amount):")
            for item in report.mismatched:
                assert item.line is not None and item.entry is not None
                echo(f"  row {item.line.row:<6} {_side(item.side):<4} {item.receipt:<12} "
                     f"statement {self.fmt(item.line.amount)}, ledger "
                     f"{self.fmt(item.entry.amount)} ({item.entry.label})")
        if self.parsed.problems:
            echo("\nUnreadable rows (skipped, not compared):")
            for problem in self.parsed.problems:
                echo(f"  row {problem.row}: {problem.reason}")

    # ------------------------------------------------------------ JSON

    def document(self, report: Report, applied: list[Applied] | None) -> dict[str, Any]:
        parsed, app = self.parsed, self.settings.app
        summary = {}
        for name, _ in CATEGORIES:
            items = getattr(report, name)
            (n_in, t_in), (n_out, t_out) = _totals(items)
            summary[name] = {"count": len(items), "in": {"count": n_in, "amount": t_in},
                             "out": {"count": n_out, "amount": t_out}}
        document: dict[str, Any] = {
            "statement": self.path.name, "provider": PROVIDER, "currency": app.currency,
            "minor_scale": app.minor_scale,
            "period": ({"start": _iso(report.period[0]), "end": _iso(report.period[1])}
                       if report.period else None),
            "header_row": parsed.header_row, "movements": len(parsed.rows) - len(self.charges),
            "not_completed": parsed.not_completed,
            "charges": {"count": len(self.charges),
                        "amount": sum(r.amount for r in self.charges)},
            "summary": summary,
            "clean": report.clean and not parsed.problems,
        }
        for name, _ in CATEGORIES:
            document[name] = [self._item(item) for item in getattr(report, name)]
        document["unreadable"] = [{"row": p.row, "reason": p.reason} for p in parsed.problems]
        if applied is not None:
            document["applied"] = [{"row": d.row.row, "receipt": d.row.receipt,
                                    "amount": d.row.amount, "outcome": d.outcome,
                                    "detail": d.detail} for d in applied]
        return document

    def _item(self, item: Item) -> dict[str, Any]:
        out: dict[str, Any] = {"side": item.side.value, "receipt": item.receipt}
        if item.line is not None:
            row = self.rows[item.line.row]
            out["statement"] = {"row": row.row, "amount": row.amount,
                                "completed_at": _iso(row.completed_at), "details": row.details,
                                "account": row.account}
        if item.entry is not None:
            entry = item.entry
            out["ledger"] = {"kind": "payment" if entry.side == Side.IN else "payout",
                             "id": entry.id, "amount": entry.amount, "at": _iso(entry.at),
                             "reference": entry.reference}
        return out


def _totals(items: Sequence[Item]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(count, amount) of money in and of money out; an item's amount is the
    statement's when it is on the statement, else the ledger's."""
    sums = {Side.IN: [0, 0], Side.OUT: [0, 0]}
    for item in items:
        amount = (item.line.amount if item.line is not None
                  else item.entry.amount if item.entry is not None else 0)
        sums[item.side][0] += 1
        sums[item.side][1] += amount
    return (sums[Side.IN][0], sums[Side.IN][1]), (sums[Side.OUT][0], sums[Side.OUT][1])


def _side(side: Side) -> str:
    return "in" if side == Side.IN else "out"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")
