"""Work-order CSV -> work_order.finalized events: grouping, derived labor, ids, bad cells."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, load_config
from autoinvoice.triggers.events import parse_event
from autoinvoice.triggers.work_orders import (
    DEFAULT_TECHNICIAN_ID,
    UNKNOWN_ADDRESS_LINE,
    event_json,
    parse_work_orders,
    tenant_defaults,
)
from autoinvoice.validation import InputError
from tests.helpers import read_example

HEADER = ("job_id,customer_id,customer_name,customer_email,service_type,asset_make,asset_model,"
          "asset_serial,running_hours,labor_hours,labor_kind,part_sku,part_description,part_qty,"
          "part_unit,po_number,completed_at")


def row(**cells: str) -> str:
    """One CSV line: the named cells, every other column empty."""
    return ",".join(cells.get(column, "") for column in HEADER.split(","))


INLINE = "\n".join([
    HEADER,
    "WO-1,C-1,Acme,ap@acme.example,repair,Atlas Copco,GA37,S-1,1200,1.75,onsite,"
    "OIL-RIF-8K,Fluid,2.5,l,PO-1,2026-11-23T16:00:00-06:00",
    row(job_id="WO-1", part_sku="1613-7408-00", part_description="Separator", part_qty="1",
        part_unit="ea"),
    # no job_id: belongs to the job above
    row(part_sku="1202-6243-00", part_description="Air filter", part_qty="3"),
    row(job_id="WO-2", customer_id="C-2", customer_name='"Smith, Jones & Co"',
        customer_email="ap@sj.example", service_type="inspection",
        completed_at="2026-11-24T10:00:00Z"),
]) + "\n"
ADDRESSES = {  # what a tenant would configure under customers.<id>.address
    "CUST-0102": {"line1": "5500 S 129th E Ave", "city": "Tulsa", "region": "OK",
                  "postal_code": "74134", "country": "US"},
    "CUST-0088": {"line1": "1200 Industrial Pkwy", "city": "Tulsa", "region": "OK",
                  "postal_code": "74107", "country": "US"},
}


def parse(text: str, tenant: str = "northwind", **kwargs):
    return parse_work_orders(text, tenant=tenant, source="orders.csv", **kwargs)


def problems_of(text: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        parse(text)
    assert caught.value.source == "orders.csv"
    return caught.value.problems


def test_rows_are_grouped_into_one_event_per_job_in_file_order():
    events = parse(INLINE)
    assert [e["job"]["id"] for e in events] == ["WO-1", "WO-2"]
    assert [p["sku"] for p in events[0]["job"]["parts"]] == [
        "OIL-RIF-8K", "1613-7408-00", "1202-6243-00"]
    assert events[1]["job"]["parts"] == []
    assert events[1]["job"]["customer"]["name"] == "Smith, Jones & Co"
    assert {e["type"] for e in events} == {"work_order.finalized"}


def test_every_column_is_mapped_and_the_event_parses():
    event = parse(INLINE)[0]
    job = parse_event(event).job  # the shape parse_event accepts
    assert (job.customer.id, job.customer.name, job.customer.email) == (
        "C-1", "Acme", "ap@acme.example")
    assert job.service_type == "repair"
    assert job.asset is not None
    assert (job.asset.make, job.asset.model, job.asset.serial, job.asset.running_hours) == (
        "Atlas Copco", "GA37", "S-1", 1200)
    assert job.po_number == "PO-1"
    assert job.completed_at.isoformat() == "2026-11-23T16:00:00-06:00"
    assert event["occurred_at"] == "2026-11-23T16:00:00-06:00"
    part = job.parts[0]
    assert (part.sku, part.description, part.quantity, part.unit) == (
        "OIL-RIF-8K", "Fluid", Decimal("2.5"), "l")
    assert type(event["job"]["parts"][0]["quantity"]) is Decimal
    assert job.parts[2].unit == "ea"  # empty part_unit


def test_labor_hours_become_an_entry_ending_at_completion():
    job = parse_event(parse(INLINE)[0]).job
    (entry,) = job.labor
    assert entry.kind == "onsite"
    assert entry.end == job.completed_at
    assert entry.start is not None
    assert entry.start.isoformat() == "2026-11-23T14:15:00-06:00"  # 16:00 - 1.75 h


def test_the_default_technician_has_the_given_grade_and_works_every_entry():
    events = parse(INLINE, grade="senior")
    for event in events:
        (tech,) = event["job"]["technicians"]
        assert (tech["id"], tech["grade"]) == (DEFAULT_TECHNICIAN_ID, "senior")
    assert events[0]["job"]["labor"][0]["technician"] == DEFAULT_TECHNICIAN_ID


def test_demo_tenant_defaults_use_the_cheapest_grade_and_configured_addresses():
    defaults = tenant_defaults(load_config().tenant("northwind"))
    assert (defaults["grade"], defaults["country"]) == ("technician", "US")
    assert defaults["addresses"]["CUST-0102"]["postal_code"] == "74115"
    de = tenant_defaults(load_config().tenant("kompressor-service-de"))
    assert (de["grade"], de["country"]) == ("technician", "DE")


def test_billing_address_comes_from_the_addresses_given_else_a_marked_placeholder():
    events = parse(INLINE, addresses={"C-1": ADDRESSES["CUST-0088"]}, country="DE")
    assert events[0]["job"]["customer"]["billing_address"] == ADDRESSES["CUST-0088"]
    assert events[1]["job"]["customer"]["billing_address"] == {
        "line1": UNKNOWN_ADDRESS_LINE, "city": "(unknown)", "country": "DE"}


def test_bom_and_crlf_are_accepted_and_give_the_same_events():
    assert parse("\ufeff" + INLINE.replace("\n", "\r\n")) == parse(INLINE)


def test_event_ids_are_stable_per_content_and_change_with_any_row():
    first, again = parse(INLINE), parse(INLINE)
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
    assert first[0]["event_id"].startswith("wo-WO-1-")
    changed = parse(INLINE.replace("Air filter,3", "Air filter,4"))
    assert changed[0]["event_id"] != first[0]["event_id"]
    assert changed[1]["event_id"] == first[1]["event_id"]  # WO-2 did not change
    other_tenant = parse(INLINE, tenant="kompressor-service-de")
    assert other_tenant[0]["event_id"] != first[0]["event_id"]


def test_event_json_keeps_decimals_exact():
    text = event_json(parse(INLINE)[0])
    assert '"quantity": "2.5"' in text
    assert parse_event(json.loads(text)).job == parse_event(parse(INLINE)[0]).job


# -- bad input: every problem names line and column; nothing is returned ---------------------
def test_a_missing_column_is_named():
    text = INLINE.replace(",part_unit", "")
    assert problems_of(text) == [
        "line 1, column part_unit: required column is missing from the header"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    (",2.5,l,", ",two,l,", "line 2, column part_qty: not a number (got 'two')"),
    (",1.75,", ",1,75,", "line 2: has 18 cells, the header has 17"),
    (",1.75,", ",-1,", "line 2, column labor_hours: must be greater than 0 (got -1)"),
    (",1.75,", ",25,", "line 2, column labor_hours: at most 24 in one entry (got 25)"),
    ("onsite", "offsite", "line 2, column labor_kind: must be onsite or travel (got 'offsite')"),
    (",1200,", ",12.5,", "line 2, column running_hours: must be whole hours (got 12.5)"),
    ("2026-11-23T16:00:00-06:00", "23/11/2026",
     "line 2, column completed_at: not an ISO 8601 timestamp (got '23/11/2026')"),
    ("2026-11-23T16:00:00-06:00", "2026-11-23T16:00:00",
     "line 2, column completed_at: needs a UTC offset, e.g. 2026-11-22T14:10:00-06:00 "
     "(got '2026-11-23T16:00:00')"),
    ("ap@acme.example", "ap-at-acme",
     "line 2, column customer_email: not an e-mail address (got 'ap-at-acme')"),
    (",Acme,", ",,", "line 2, column customer_name: required on a job row"),
    ("1613-7408-00", "", "line 3, column part_sku: required when the row has a part"),
    ("WO-1,,,,", "WO-9,,,,",
     "line 3, column job_id: a continuation row of job WO-9 before any job row of it "
     "(its job columns are empty)"),
    ("\nWO-2,C-2", "\nWO-1,C-2",
     "line 5, column job_id: job WO-1 already started on line 2; its continuation rows "
     "leave the job columns empty"),
])
def test_a_bad_cell_is_named_by_line_and_column(old, new, expected):
    assert old in INLINE
    assert problems_of(INLINE.replace(old, new, 1)) == [expected]


def test_a_continuation_row_before_any_job_row_is_refused():
    text = HEADER + "\n,,,,,,,,,,,X-1,Part,1,ea,,\n"
    assert problems_of(text) == ["line 2, column job_id: a continuation row before any job row"]


def test_every_bad_row_is_reported_and_none_is_returned():
    text = INLINE.replace(",2.5,l,", ",x,l,").replace("2026-11-24T10:00:00Z", "soon")
    assert problems_of(text) == [
        "line 2, column part_qty: not a number (got 'x')",
        "line 5, column completed_at: not an ISO 8601 timestamp (got 'soon')",
    ]


def test_line_numbers_count_physical_lines_of_quoted_newlines():
    text = INLINE.replace('"Smith, Jones & Co"', '"Smith,\nJones"').replace(
        "2026-11-24T10:00:00Z", "later")
    assert problems_of(text) == [
        "line 5, column completed_at: not an ISO 8601 timestamp (got 'later')"]


def test_a_padded_continuation_row_is_read_without_its_surplus_empty_cell(caplog):
    padded = INLINE.replace("WO-1,,,,,,,,,,,1613", "WO-1,,,,,,,,,,,,1613")
    assert parse(padded) == parse(INLINE)
    assert "line 3: 18 cells, the header has 17" in caplog.text


def test_a_surplus_cell_that_cannot_be_placed_is_refused():
    padded = INLINE.replace("Separator,1,ea,,", "Separator,1,ea,,,X")
    assert problems_of(padded) == ["line 3: has 18 cells, the header has 17"]


# -- the shared export ---------------------------------------------------------------------
def test_the_shared_export_parses(shared_dir):
    events = parse(read_example(shared_dir, "work-order-finalized.csv"))
    assert [(e["job"]["id"], [p["sku"] for p in e["job"]["parts"]]) for e in events] == [
        ("WO-10490", ["39911615", "92740950"]), ("WO-10491", [])]
    jobs = [parse_event(e).job for e in events]
    assert [j.labor[0].start.isoformat() for j in jobs] == [
        "2026-11-22T11:40:00-06:00", "2026-11-23T08:30:00-06:00"]


def _totals(text: str, **kwargs) -> dict[str, tuple[str, str, list[str]]]:
    config = load_config()  # the embedded demo default
    rules = billing_rules(config.tenant("northwind"))
    defaults = {**tenant_defaults(config.tenant("northwind")), **kwargs}
    out = {}
    for event in parse(text, **defaults):
        job = parse_event(event).job.domain()
        built = build_invoice(job, rules, tenant="northwind", revision=1,
                              issue_date=date(2026, 11, 24))
        out[event["job"]["id"]] = (str(built.invoice.tax_total.amount),
                                   str(built.invoice.total.amount),
                                   [p.code for p in built.problems])
    return out


def test_shared_export_totals_with_configured_addresses(shared_dir):
    # Demo northwind: technician 115.00/h, weekend x2.0, 2.0 h minimum on site, parts taxed
    # 8.5 % in OK (per line), labor untaxed.
    # WO-10490 (repair), 2.5 h ending Sun 2026-11-22 14:10 CST: 11:40-14:10, all weekend.
    #   labor 2.50 h x 115.00 x 2.0 = 575.00 (2.5 h >= the 2.0 h minimum: no top-up)
    #   parts 318.00 (39911615) + 164.00 (92740950) = 482.00
    #   tax 318.00 x 0.085 = 27.03, 164.00 x 0.085 = 13.94 -> 40.97
    #   total 575.00 + 482.00 + 40.97 = 1097.97
    # WO-10491 (inspection), 1.0 h ending Mon 2026-11-23 09:30 CST: 08:30-09:30, normal.
    #   labor 1.00 h x 115.00 = 115.00; top-up to the minimum 1.00 h x 115.00 = 115.00
    #   no parts, labor untaxed; PO-77813 present (CUST-0088 requires one) -> 230.00
    totals = _totals(read_example(shared_dir, "work-order-finalized.csv"), addresses=ADDRESSES)
    assert totals == {"WO-10490": ("40.97", "1097.97", []),
                      "WO-10491": ("0.00", "230.00", [])}


def test_shared_export_without_customer_addresses_is_held_for_the_unknown_address(shared_dir):
    # No customer addresses configured: the placeholder matches no tax jurisdiction, so both
    # are held, untaxed: 575.00 + 482.00 = 1057.00 and 230.00 (as above, tax 0).
    totals = _totals(read_example(shared_dir, "work-order-finalized.csv"), addresses={})
    assert totals == {"WO-10490": ("0.00", "1057.00", ["no_tax_jurisdiction"]),
                      "WO-10491": ("0.00", "230.00", ["no_tax_jurisdiction"])}
