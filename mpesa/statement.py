"""M-Pesa's organisation statement export (CSV) read into typed rows.

Pure: bytes in, values out, no I/O and no database. `read_statement` raises only
`StatementError` (one line, for a file that as a whole is not a statement we can read);
a row that cannot be read is skipped and reported (`Statement.problems`, with its row
number as a spreadsheet numbers it), never raised.

What is relied on (docs/mpesa.md, "Reconciliation"):
- The export may open with a few lines of preamble (organisation name, short code, time
  period); the header row is found by its column names among the first `HEADER_SCAN`
  rows, and columns are read by name, never by position. Names are compared loosely:
  case, punctuation and a currency suffix ("Paid In (KSHs)") do not matter, and the
  older names ("Receipt", "Date", "Status", "Transaction Type") are accepted too.
- Only rows whose Transaction Status is "Completed" moved money; the others are counted
  and ignored, whatever their amounts say.
- Paid In is money in, Withdrawn money out (some exports sign it: "-5,000.00"). Amounts
  may carry thousands separators and be empty; they become exact minor units, read digit
  by digit, never through a float.
- A charge ("Pay Bill Charge", "Business Payment Charge") is a row of its own that may
  share its transaction's receipt number: it is kept apart (`Kind.CHARGE`).
- Times are Nairobi wall clock, `2026-03-02 09:00:05` (also day first, `02-03-2026` and
  `02/03/2026`); they become aware UTC datetimes.
- Details of a paybill payment read "Pay Bill from 254712345678 - AMINA OTIENO Acc.
  L1042" ("Pay Bill Online from ..." for one prompted by STK push): the account the
  customer typed follows "Acc.". An "A/C No." column, when present and filled, wins.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum

from core.money import MAX_MINOR

__all__ = ["HEADER_SCAN", "REQUIRED", "Kind", "Problem", "Row", "Statement", "StatementError",
           "minor_units", "read_statement", "read_time"]

HEADER_SCAN = 30  # the header row must be among the file's first rows
MAX_RECEIPT = 64  # Payment.transaction_id and Payout.receipt are 64 characters
PROGRESS_EVERY = 500  # rows between two calls of the progress callback

# Our name for a column -> the names exports give it, normalised by `_column_key`.
COLUMNS: dict[str, tuple[str, ...]] = {
    "receipt": ("receipt no", "receipt number", "receipt"),
    "completed": ("completion time", "date"),
    "initiated": ("initiation time",),
    "details": ("details",),
    "status": ("transaction status", "status"),
    "paid_in": ("paid in",),
    "withdrawn": ("withdrawn",),
    "balance": ("balance",),
    "reason": ("reason type", "transaction type"),
    "other_party": ("other party info",),
    "linked": ("linked transaction id",),
    "account": ("a c no", "ac no", "account no"),
}
REQUIRED = ("receipt", "completed", "details", "status", "paid_in", "withdrawn")
# How each required column is named in a message (the export's own spelling).
_LABELS = {"receipt": "Receipt No.", "completed": "Completion Time", "details": "Details",
           "status": "Transaction Status", "paid_in": "Paid In", "withdrawn": "Withdrawn"}

_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M",
                 "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+")
_RECEIPT = re.compile(r"[A-Za-z0-9]+")
_STATUS = re.compile(r"[A-Za-z][A-Za-z ]{0,29}")  # Completed, Failed, Cancelled, Declined...
_ACCOUNT = re.compile(r"\bAcc\.\s?(.*)$", re.IGNORECASE)
_PARTY = re.compile(r"\b(?:from|to)\s+(.+?)(?:\s+Acc\..*)?$", re.IGNORECASE)
_MSISDN = re.compile(r"[0-9]{9,15}")
_CHARGE = re.compile(r"\bcharges?\b", re.IGNORECASE)
_CHARGE_DETAILS = re.compile(r"[a-z][a-z .-]*\bcharges?", re.IGNORECASE)
_PAY_BILL = re.compile(r"pay\s?bill\b", re.IGNORECASE)
_SUFFIXES = ("kshs", "ksh", "kes")


class StatementError(ValueError):
    """The file as a whole is not an organisation statement we can read (one line)."""


class Kind(StrEnum):
    IN = "in"  # Paid In: money that came to the organisation
    OUT = "out"  # Withdrawn: money that left it
    CHARGE = "charge"  # M-Pesa's fee for a movement: never one of ours


@dataclass(frozen=True)
class Row:
    """One completed movement of the statement."""

    row: int  # the row number in the file, as a spreadsheet shows it (header included)
    receipt: str  # upper case
    kind: Kind
    amount: int  # minor units, > 0
    completed_at: datetime  # aware UTC
    details: str  # whitespace collapsed
    reason_type: str = ""
    other_party: str = ""
    linked: str = ""
    account: str = ""  # what the customer typed as the account ("" when none)
    msisdn: str | None = None  # the other party's number, when shown in full

    @property
    def pay_bill(self) -> bool:
        """A customer's payment to the paybill (`Pay Bill from`, `Pay Bill Online from`),
        as opposed to other money in (transfers between the organisation's accounts)."""
        return self.kind == Kind.IN and bool(
            _PAY_BILL.match(self.details) or _PAY_BILL.match(self.reason_type))


@dataclass(frozen=True)
class Problem:
    """A row skipped because it could not be read."""

    row: int
    reason: str


@dataclass(frozen=True)
class Statement:
    rows: list[Row]  # completed movements, in file order
    problems: list[Problem] = field(default_factory=list)
    not_completed: int = 0  # rows with another Transaction Status (Failed, Cancelled...)
    header_row: int = 1  # the header's row number in the file

    @property
    def period(self) -> tuple[datetime, datetime] | None:
        """The first and last completion time of the movements read (None when none)."""
        if not self.rows:
            return None
        times = [r.completed_at for r in self.rows]
        return min(times), max(times)


# ---------------------------------------------------------------- values

def minor_units(text: str, *, scale: int, signed: bool = False) -> int:
    """Minor units for an amount cell (`1,050.00`, `1050`, `-10.00` when `signed`); 0 for
    an empty cell. Raises ValueError (with a short reason) for anything else: no floats,
    no rounding, at most as many decimals as `scale` has (trailing zeros aside)."""
    decimals = len(str(scale)) - 1
    if scale < 1 or 10**decimals != scale:
        raise ValueError(f"scale must be a power of ten, not {scale}")
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if not cleaned:
        return 0
    negative = cleaned.startswith("-")
    if cleaned[0] in "-+":
        cleaned = cleaned[1:]
    if negative and not signed:
        raise ValueError("is negative")
    whole, dot, fraction = cleaned.partition(".")
    if not whole and fraction:
        whole = "0"
    if not _GROUPED.fullmatch(whole) or (dot and not fraction.isdigit()) or not whole.isascii() \
            or not fraction.isascii():
        raise ValueError("is not an amount")
    digits = whole.replace(",", "").lstrip("0")
    fraction = fraction.rstrip("0")
    if len(fraction) > decimals:
        raise ValueError(f"has more than {decimals} decimals")
    if len(digits) > len(str(MAX_MINOR)):
        raise ValueError("is too large")
    minor = int(digits + fraction.ljust(decimals, "0") or "0")
    if minor > MAX_MINOR:
        raise ValueError("is too large")
    return -minor if negative else minor


def read_time(text: str, zone: tzinfo) -> datetime:
    """An aware UTC datetime for a statement time in `zone` (Nairobi) wall clock. Raises
    ValueError for any other text."""
    cleaned = " ".join(text.split())
    for pattern in _TIME_FORMATS:
        try:
            local = datetime.strptime(cleaned, pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=zone).astimezone(UTC)
    raise ValueError("is not a time like 2026-03-02 09:00:05")


def _column_key(name: str) -> str:
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    if words and words[-1] in _SUFFIXES:
        words = words[:-1]
    return " ".join(words)


_ALIASES = {alias: ours for ours, aliases in COLUMNS.items() for alias in aliases}


def _header(cells: list[str]) -> dict[str, int]:
    """Our column name -> its index, for the cells of a would-be header row."""
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        ours = _ALIASES.get(_column_key(cell))
        if ours is not None and ours not in found:
            found[ours] = index
    return found


def _looks_like_header(found: dict[str, int]) -> bool:
    return "receipt" in found and len(found.keys() & set(REQUIRED)) >= 3


# ---------------------------------------------------------------- the file

def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise StatementError("the file is not text (is it the CSV export, not the Excel or PDF?)")


def _records(text: str) -> list[list[str]]:
    dialect = _delimiter(text)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=dialect))
    except csv.Error as exc:
        raise StatementError(f"the file is not a readable CSV file ({exc})") from None


def _delimiter(text: str) -> str:
    """Comma, unless the header row is only found with a semicolon or a tab (spreadsheets
    in some locales save CSV so)."""
    head = "\n".join(text.split("\n", HEADER_SCAN)[:HEADER_SCAN])
    for delimiter in (",", ";", "\t"):
        try:
            rows = list(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter))
        except csv.Error:
            continue
        if any(_looks_like_header(_header(cells)) for cells in rows):
            return delimiter
    return ","


def read_statement(data: bytes, *, scale: int, zone: tzinfo,
                   progress: Callable[[int, int], None] | None = None) -> Statement:
    """The completed movements of an organisation statement export.

    `progress`, when given, is called with the rows read so far and the rows in all,
    every PROGRESS_EVERY rows and once at the end (for a progress bar).
    """
    if b"\x00" in data[:4096]:
        raise StatementError("the file is not text (is it the CSV export, not the Excel "
                             "or PDF?)")
    records = _records(_decode(data))
    start, columns = _find_header(records)
    missing = [_LABELS[name] for name in REQUIRED if name not in columns]
    if missing:
        raise StatementError(f"the statement has no {', '.join(missing)} column "
                             f"(header on row {start + 1})")
    rows: list[Row] = []
    problems: list[Problem] = []
    not_completed = 0
    seen: dict[tuple[str, Kind], int] = {}
    width = len(records[start])
    for index in range(start + 1, len(records)):
        number = index + 1
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(number, len(records))
        cells = records[index]
        if not any(cell.strip() for cell in cells):
            continue
        try:
            row = _row(number, cells, columns, width, scale=scale, zone=zone)
        except _Skip as skip:
            problems.append(Problem(number, str(skip)))
            continue
        if row is None:
            not_completed += 1
            continue
        if row.kind != Kind.CHARGE:
            first = seen.setdefault((row.receipt, row.kind), number)
            if first != number:
                problems.append(Problem(number, f"receipt {row.receipt} is already on row "
                                                f"{first}; this row is left out"))
                continue
        rows.append(row)
    if progress is not None:
        progress(len(records), len(records))
    return Statement(rows=rows, problems=problems, not_completed=not_completed,
                     header_row=start + 1)


def _find_header(records: list[list[str]]) -> tuple[int, dict[str, int]]:
    for index, cells in enumerate(records[:HEADER_SCAN]):
        found = _header(cells)
        if _looks_like_header(found):
            return index, found
    raise StatementError("this is not an M-Pesa organisation statement: no header row "
                         "with Receipt No., Completion Time, Details, Transaction Status, "
                         f"Paid In and Withdrawn in its first {HEADER_SCAN} rows")


class _Skip(Exception):
    """This row cannot be read: the reason, for the report."""


def _cell(cells: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _row(number: int, cells: list[str], columns: dict[str, int], width: int, *, scale: int,
         zone: tzinfo) -> Row | None:
    """The row's movement; None when it did not complete; _Skip when unreadable."""
    if any(cell.strip() for cell in cells[width:]):
        raise _Skip(f"has {len(cells)} cells, more than the header's {width} (a comma "
                    "in a value without quotes?)")
    status = _cell(cells, columns, "status")
    if status.lower() != "completed":
        if not status:
            raise _Skip("has no Transaction Status")
        if not _STATUS.fullmatch(status):  # another column's value: the row is shifted
            raise _Skip(f"the Transaction Status {_quote(status)} is not a status")
        return None
    receipt = _cell(cells, columns, "receipt").upper()
    if not receipt:
        raise _Skip("has no Receipt No.")
    if len(receipt) > MAX_RECEIPT or not _RECEIPT.fullmatch(receipt) or not receipt.isascii():
        raise _Skip(f"the Receipt No. {_quote(receipt)} is not a receipt number")
    raw_time = _cell(cells, columns, "completed")
    try:
        completed_at = read_time(raw_time, zone)
    except ValueError as exc:
        raise _Skip(f"the Completion Time {_quote(raw_time)} {exc}") from None
    paid_in = _amount(cells, columns, "paid_in", "Paid In", scale=scale, signed=False)
    withdrawn = _amount(cells, columns, "withdrawn", "Withdrawn", scale=scale, signed=True)
    if paid_in and withdrawn:
        raise _Skip("has both a Paid In and a Withdrawn amount")
    if not paid_in and not withdrawn:
        raise _Skip("has neither a Paid In nor a Withdrawn amount")
    details = " ".join(_cell(cells, columns, "details").split())
    reason = " ".join(_cell(cells, columns, "reason").split())
    other_party = " ".join(_cell(cells, columns, "other_party").split())
    if _CHARGE.search(reason) or _CHARGE_DETAILS.fullmatch(details):
        kind = Kind.CHARGE
    else:
        kind = Kind.IN if paid_in else Kind.OUT
    return Row(row=number, receipt=receipt, kind=kind, amount=paid_in or withdrawn,
               completed_at=completed_at, details=details, reason_type=reason,
               other_party=other_party, linked=_cell(cells, columns, "linked"),
               account=_account(_cell(cells, columns, "account"), details),
               msisdn=_msisdn(other_party, details))


def _amount(cells: list[str], columns: dict[str, int], name: str, label: str, *, scale: int,
            signed: bool) -> int:
    raw = _cell(cells, columns, name)
    try:
        return abs(minor_units(raw, scale=scale, signed=signed))
    except ValueError as exc:
        raise _Skip(f"the {label} amount {_quote(raw)} {exc}") from None


def _account(column: str, details: str) -> str:
    """The account the customer typed: the A/C No. column, else what follows "Acc."."""
    if column.strip():
        return " ".join(column.split())[:64]
    found = _ACCOUNT.search(details)
    return found.group(1).strip()[:64] if found else ""


def _msisdn(other_party: str, details: str) -> str | None:
    """The other party's number when the statement shows it whole (`254712345678 - NAME`);
    None when it is masked (`2547****678`) or absent."""
    party = other_party
    if not party:
        found = _PARTY.search(details)
        party = found.group(1) if found else ""
    number = party.partition(" - ")[0].strip()
    return number if _MSISDN.fullmatch(number) else None


def _quote(text: str) -> str:
    return '"' + (text if len(text) <= 40 else text[:37] + "...") + '"'
