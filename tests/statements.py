"""M-Pesa organisation statement exports built in tests, row by row, as the M-Pesa
business portal writes them: a few lines of preamble, the header row, then one row per
movement (a charge on a row of its own, with its transaction's receipt)."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")
HEADER = ["Receipt No.", "Completion Time", "Initiation Time", "Details", "Transaction Status",
          "Paid In", "Withdrawn", "Balance", "Balance Confirmed", "Reason Type",
          "Other Party Info", "Linked Transaction ID", "A/C No."]
PREAMBLE = [["Organisation Name:", "HARAMBEE MICROLENDING LTD"],
            ["Organisation Short Code:", "174379"],
            ["Time Period:", "01-03-2026 - 31-03-2026"],
            []]


def shillings(minor: int) -> str:
    """`1,050.00` for 105000 minor units, as the export writes amounts."""
    whole, cents = divmod(minor, 100)
    return f"{whole:,}.{cents:02d}"


def stamp(when: datetime) -> str:
    """Nairobi wall clock, as the export writes times."""
    return when.astimezone(NAIROBI).strftime("%Y-%m-%d %H:%M:%S")


def paybill(receipt: str, when: datetime, amount: int, account: str | None, *,
            payer: str = "254712345678", name: str = "AMINA OTIENO",
            status: str = "Completed", online: bool = False) -> dict[str, str]:
    """A customer's paybill payment (`account` None: the customer typed none)."""
    kind = "Pay Bill Online" if online else "Pay Bill"
    details = f"{kind} from {payer} - {name}" + (f" Acc. {account}" if account is not None
                                                 else "")
    return {"Receipt No.": receipt, "Completion Time": stamp(when),
            "Initiation Time": stamp(when), "Details": details, "Transaction Status": status,
            "Paid In": shillings(amount), "Withdrawn": "", "Balance Confirmed": "true",
            "Reason Type": kind, "Other Party Info": f"{payer} - {name}"}


def b2c(receipt: str, when: datetime, amount: int, *, phone: str = "254712345678",
        name: str = "AMINA OTIENO", status: str = "Completed") -> dict[str, str]:
    """A payout to a phone (B2C, BusinessPayment)."""
    return {"Receipt No.": receipt, "Completion Time": stamp(when),
            "Initiation Time": stamp(when),
            "Details": f"Business Payment to {phone} - {name}", "Transaction Status": status,
            "Paid In": "", "Withdrawn": "-" + shillings(amount), "Balance Confirmed": "true",
            "Reason Type": "Business Payment", "Other Party Info": f"{phone} - {name}"}


def charge(receipt: str, when: datetime, amount: int, what: str = "Pay Bill") -> dict[str, str]:
    """M-Pesa's charge for a movement, on the movement's receipt."""
    return {"Receipt No.": receipt, "Completion Time": stamp(when),
            "Initiation Time": stamp(when), "Details": f"{what} Charge",
            "Transaction Status": "Completed", "Paid In": "", "Withdrawn": "-" + shillings(amount),
            "Balance Confirmed": "true", "Reason Type": f"{what} Charge"}


def statement_csv(rows: list[dict[str, Any]], *, preamble: list[list[str]] | None = None,
                  header: list[str] | None = None, delimiter: str = ",") -> bytes:
    """The export's bytes: preamble lines, the header, the rows (absent cells empty)."""
    header = header or HEADER
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    for line in PREAMBLE if preamble is None else preamble:
        writer.writerow(line)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    return out.getvalue().encode()
