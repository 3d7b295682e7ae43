"""The register's CSV: text cells that a spreadsheet would run as a formula are neutralised;
money stays a plain number, negative amounts included."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from autoinvoice.audit.export import COLUMNS, csv_cell, register_row, write_csv
from autoinvoice.store.models import InvoiceRow

T0 = datetime(2026, 11, 21, tzinfo=UTC)


def row(customer: str, **values) -> dict[str, object]:
    inv = InvoiceRow(tenant="northwind", job_id="WO-1", revision=1, kind="credit_note",
                     customer_name=customer, number="CN-2026-00001", issue_date="2026-11-21",
                     due_date="2026-12-21", currency="USD", subtotal_minor=-10000,
                     tax_minor=-850, total_minor=-10850, doc_state="sent", pay_state="unpaid",
                     amount_paid_minor=0, remote_id="cn_123", platform="stripe", flags=[],
                     accepted_at=T0, updated_at=T0)
    for key, value in values.items():
        setattr(inv, key, value)
    return register_row(inv)


def exported(*rows: dict[str, object]) -> list[dict[str, str]]:
    out = io.StringIO()
    write_csv(list(rows), out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


@pytest.mark.parametrize(("customer", "cell"), [
    ('=HYPERLINK("http://evil.example","click")', '\'=HYPERLINK("http://evil.example","click")'),
    ("+1", "'+1"),
    ("-2", "'-2"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\tcmd", "'\tcmd"),
    ("\r=1", "'\r=1"),
    ("Acme Plastics Inc.", "Acme Plastics Inc."),
    ("Smith-Jones = Partners", "Smith-Jones = Partners"),
])
def test_a_text_cell_starting_like_a_formula_is_neutralised(customer, cell):
    [written] = exported(row(customer))
    assert written["customer"] == cell


def test_every_text_column_is_neutralised_not_only_the_customer():
    [written] = exported(row("x", number="=1+1", remote_id="@x", job_id="-WO"))
    assert (written["number"], written["remote_id"], written["job_id"]) == (
        "'=1+1", "'@x", "'-WO")


def test_money_stays_a_plain_number_negative_amounts_included():
    [written] = exported(row("Acme"))
    assert (written["subtotal"], written["tax"], written["total"], written["amount_paid"]) == (
        "-100.00", "-8.50", "-108.50", "0.00")
    assert written["kind"] == "credit_note"
    assert written["revision"] == "1"


def test_the_header_names_every_column_and_missing_values_are_empty():
    out = io.StringIO()
    write_csv([row("Acme", remote_id=None)], out)
    header, line = out.getvalue().splitlines()
    assert header.split(",") == COLUMNS
    assert line.endswith(",unpaid,0.00,")


def test_csv_cell_leaves_numbers_alone_and_quotes_text():
    assert csv_cell("total", "-5.00") == "-5.00"
    assert csv_cell("revision", 2) == "2"
    assert csv_cell("customer", "-5.00") == "'-5.00"
    assert csv_cell("customer", None) == ""
