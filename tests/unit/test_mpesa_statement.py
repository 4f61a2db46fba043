"""Reading M-Pesa's organisation statement export: the header found by name after the
preamble, exact amounts, completed rows only, charges apart, bad rows reported by
number and skipped, a file that is no statement refused in one line."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpesa.statement import (
    Kind,
    StatementError,
    minor_units,
    read_statement,
    read_time,
)
from tests.statements import (
    HEADER,
    NAIROBI,
    b2c,
    charge,
    paybill,
    shillings,
    statement_csv,
)

T0 = datetime(2026, 3, 2, 6, 0, 5, tzinfo=UTC)  # 09:00:05 in Nairobi


def read(data: bytes, **kw):
    return read_statement(data, scale=100, zone=NAIROBI, **kw)


def test_a_statement_with_preamble_is_read_by_its_header():
    data = statement_csv([
        paybill("QC10000001", T0, 105_000, "L1042"),
        charge("QC10000001", T0, 1_000),
        b2c("QC10000002", T0 + timedelta(minutes=5), 500_000),
        paybill("QC10000003", T0, 90_000, "L1042", status="Failed"),
    ])
    statement = read(data)
    assert statement.header_row == 5  # four preamble lines, a blank one among them
    assert statement.not_completed == 1 and statement.problems == []
    paid, fee, payout = statement.rows
    assert (paid.row, paid.receipt, paid.kind, paid.amount) == (6, "QC10000001", Kind.IN, 105_000)
    assert paid.completed_at == T0 and paid.completed_at.tzinfo is not None
    assert paid.account == "L1042" and paid.msisdn == "254712345678" and paid.pay_bill
    assert (fee.kind, fee.receipt, fee.amount) == (Kind.CHARGE, "QC10000001", 1_000)
    assert (payout.kind, payout.amount) == (Kind.OUT, 500_000)  # "-5,000.00" withdrawn
    assert not payout.pay_bill and payout.account == ""
    assert statement.period == (T0, T0 + timedelta(minutes=5))


def test_columns_are_found_by_name_in_any_order_and_older_spellings():
    header = ["Balance (KSHs)", "Status", "Withdrawn (KSHs)", "Paid In (KSHs)", "Details",
              "Date", "Receipt"]
    rows = [{"Receipt": "qc20000001", "Date": "02-03-2026 09:00:05",
             "Details": "Pay Bill from 2547****678 - AMINA Acc. l1042", "Status": "Completed",
             "Paid In (KSHs)": "1,050", "Withdrawn (KSHs)": "", "Balance (KSHs)": "9,999.00"}]
    statement = read(statement_csv(rows, header=header, preamble=[]))
    (row,) = statement.rows
    assert (row.receipt, row.amount, row.completed_at) == ("QC20000001", 105_000, T0)
    assert row.account == "l1042" and row.msisdn is None  # masked: no number to keep


def test_a_semicolon_export_and_a_byte_order_mark_are_read():
    data = statement_csv([paybill("QC30000001", T0, 5_000, "L1")], delimiter=";")
    statement = read(b"\xef\xbb\xbf" + data)
    assert [r.receipt for r in statement.rows] == ["QC30000001"]


def test_the_account_column_wins_over_details_and_details_may_span_lines():
    typed = paybill("QC40000001", T0, 5_000, "L1042")
    typed["A/C No."] = " L 7 "
    multi = paybill("QC40000002", T0, 5_000, None)
    multi["Details"] = "Pay Bill Online from\n254700000001 - JOHN\nDOE Acc.\nliamani pp1"
    multi["Other Party Info"] = ""
    none = paybill("QC40000003", T0, 5_000, None)
    statement = read(statement_csv([typed, multi, none]))
    assert [r.account for r in statement.rows] == ["L 7", "liamani pp1", ""]
    assert statement.rows[1].msisdn == "254700000001" and statement.rows[1].pay_bill
    assert statement.rows[1].details == ("Pay Bill Online from 254700000001 - JOHN DOE Acc. "
                                         "liamani pp1")


def test_an_unreadable_row_is_reported_by_number_and_skipped():
    bad_amount = paybill("QC50000002", T0, 5_000, "L1")
    bad_amount["Paid In"] = "1,05.00"
    bad_time = paybill("QC50000003", T0, 5_000, "L1")
    bad_time["Completion Time"] = "yesterday"
    both = paybill("QC50000004", T0, 5_000, "L1")
    both["Withdrawn"] = "10.00"
    neither = paybill("QC50000005", T0, 5_000, "L1")
    neither["Paid In"] = ""
    too_precise = paybill("QC50000006", T0, 5_000, "L1")
    too_precise["Paid In"] = "50.005"
    no_receipt = paybill("", T0, 5_000, "L1")
    shifted = paybill("QC50000008", T0, 5_000, "L1")
    failed_garbage = paybill("QC50000009", T0, 5_000, "L1", status="Cancelled")
    failed_garbage["Paid In"] = "n/a"
    data = statement_csv([paybill("QC50000001", T0, 5_000, "L1"), bad_amount, bad_time, both,
                          neither, too_precise, no_receipt, shifted, failed_garbage,
                          paybill("QC50000010", T0, 7_000, "L1"),
                          paybill("QC50000001", T0, 5_000, "L1")])
    data = data.replace(b"QC50000008,", b"QC50000008,extra,")  # a cell too many: all shift
    statement = read(data)
    assert [r.receipt for r in statement.rows] == ["QC50000001", "QC50000010"]
    assert statement.not_completed == 1  # a cancelled row is ignored, however garbled
    reasons = {p.row: p.reason for p in statement.problems}
    assert sorted(reasons) == [7, 8, 9, 10, 11, 12, 13, 16]
    assert reasons[7] == 'the Paid In amount "1,05.00" is not an amount'
    assert reasons[8].startswith('the Completion Time "yesterday" is not a time')
    assert reasons[9] == "has both a Paid In and a Withdrawn amount"
    assert reasons[10] == "has neither a Paid In nor a Withdrawn amount"
    assert reasons[11] == 'the Paid In amount "50.005" has more than 2 decimals'
    assert reasons[12] == "has no Receipt No."
    assert reasons[13].startswith('the Transaction Status "Pay Bill from')  # shifted along
    assert reasons[16] == "receipt QC50000001 is already on row 6; this row is left out"


@pytest.mark.parametrize("data", [
    b"",
    b"name,phone\nAnn,0712345678\n",
    b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00 binary spreadsheet",
    "\n".join(["x,y"] * 40 + [",".join(HEADER)]).encode(),  # the header too far down
], ids=["empty", "not a statement", "xlsx", "header too late"])
def test_a_file_that_is_not_a_statement_is_refused_in_one_line(data):
    with pytest.raises(StatementError) as refused:
        read(data)
    assert "\n" not in str(refused.value) and str(refused.value)


def test_a_missing_column_is_named():
    header = [name for name in HEADER if name != "Withdrawn"]
    with pytest.raises(StatementError, match="no Withdrawn column"):
        read(statement_csv([paybill("QC60000001", T0, 5_000, "L1")], header=header))


def test_undecodable_bytes_are_refused():
    with pytest.raises(StatementError, match="not text"):
        read(b"Receipt No.,Details\n\x81\x8d\x8f\x90\x9d\n")


@pytest.mark.parametrize(("text", "minor"), [
    ("1,050.00", 105_000), ("1050", 105_000), ("0.07", 7), ("1,234,567.89", 123_456_789),
    ("", 0), ("  ", 0), ("0.00", 0), (".5", 50), ("12.50", 1_250), ("12.500", 1_250),
])
def test_amounts_are_exact_minor_units(text, minor):
    assert minor_units(text, scale=100) == minor


@pytest.mark.parametrize("text", ["1,05", "1e3", "1.005", "abc", "1,050,00", "NaN", "-5",
                                  "1.2.3", "١٢٣", "5.", "1 000x"])
def test_malformed_amounts_are_refused(text):
    with pytest.raises(ValueError):
        minor_units(text, scale=100)


def test_a_withdrawn_amount_may_carry_a_sign():
    assert minor_units("-4,029.00", scale=100, signed=True) == -402_900


@given(st.integers(min_value=0, max_value=10**13))
def test_every_amount_as_the_export_writes_it_reads_back_exactly(minor):
    assert minor_units(shillings(minor), scale=100) == minor
    assert minor_units(shillings(minor).replace(",", ""), scale=100) == minor


@pytest.mark.parametrize("text", ["2026-03-02 09:00:05", "02-03-2026 09:00:05",
                                  "02/03/2026 09:00:05", " 2026-03-02  09:00:05 "])
def test_times_are_nairobi_wall_clock_day_first(text):
    assert read_time(text, NAIROBI) == T0


@pytest.mark.parametrize("text", ["", "2026-13-02 09:00:05", "03/32/2026 09:00:05", "9am"])
def test_malformed_times_are_refused(text):
    with pytest.raises(ValueError):
        read_time(text, NAIROBI)


def test_a_large_statement_is_read_whole_with_progress():
    rows = []
    for i in range(20_000):
        when = T0 + timedelta(seconds=37 * i)
        if i % 2:
            rows.append(paybill(f"QD{i:08d}", when, 100 + 137 * i, f"L{1000 + i % 500}"))
        else:
            rows.append(b2c(f"QE{i:08d}", when, 5_000 + i))
    data = statement_csv(rows)
    seen: list[tuple[int, int]] = []
    statement = read(data, progress=lambda done, total: seen.append((done, total)))
    assert len(statement.rows) == 20_000 and not statement.problems
    assert sum(r.amount for r in statement.rows if r.kind == Kind.IN) == sum(
        100 + 137 * i for i in range(1, 20_000, 2))
    assert seen[-1][0] == seen[-1][1] == 20_005 and len(seen) > 10


def test_a_row_longer_than_the_header_is_skipped():
    data = statement_csv([paybill("QC70000001", T0, 5_000, "L1"),
                          paybill("QC70000002", T0, 5_000, "L1")])
    lines = data.split(b"\r\n")
    lines[6] += b",surplus"  # the second movement
    statement = read(b"\r\n".join(lines))
    assert [r.receipt for r in statement.rows] == ["QC70000001"]
    (problem,) = statement.problems
    assert problem.row == 7 and "14 cells, more than the header's 13" in problem.reason
