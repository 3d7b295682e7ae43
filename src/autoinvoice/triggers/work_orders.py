"""Finalized work orders exported as CSV, turned into ``work_order.finalized`` events.

The export has one row per part. The first row of a job (its *job row*) fills the job columns;
*continuation rows* repeat ``job_id`` (or leave it empty: then they belong to the job above) and
leave every other job column empty, carrying only ``part_*``. Columns, all required in the
header (extra columns are ignored)::

    job_id, customer_id, customer_name, customer_email, service_type,
    asset_make, asset_model, asset_serial, running_hours, labor_hours, labor_kind,
    part_sku, part_description, part_qty, part_unit, po_number, completed_at

What the export does not carry, and what stands in for it:

- **labor span**: the export has hours, not start and end. ``labor_hours`` becomes one entry
  that *ends at* ``completed_at`` and starts ``labor_hours`` earlier, so it is billed in the
  rate window (normal, overtime, weekend, holiday) of the hours just before completion.
  ``labor_kind`` is ``onsite`` (the default when empty) or ``travel``.
- **technician**: none is named. Every job lists one technician, ``DEFAULT_TECHNICIAN_ID``
  ("Service technician"), of the grade the caller passes (the CLI passes the tenant's
  cheapest configured grade: an unknown technician is never billed at a senior rate).
- **billing address**: none either. The caller passes the configured addresses by customer
  id; a customer without one gets ``UNKNOWN_ADDRESS_LINE`` in the given country (a tenant with
  tax jurisdictions then holds the invoice for review: no jurisdiction matches).
- **asset type**: ``ASSET_TYPE``.

Some exporters pad a continuation row with a surplus empty cell (the shared example's line 3
has 18 cells under 17 columns): such a row is read without it when exactly one reading leaves
every job column empty, and a warning is logged; any other cell count is refused.

``event_id`` is ``wo-<job_id>-<hash>``, the hash taken over the tenant, the job id and the
job's rows (cell values by column name): importing the same export twice gives the same ids
(stored once: the pipeline de-duplicates by event id) while a changed row gives a new event.
``occurred_at`` is ``completed_at``, for the same reason.

Bad input raises one ``InputError`` naming the line, column and problem of every bad cell;
then no event is returned at all. A UTF-8 byte-order mark and CRLF line ends are accepted.
Quantities and hours are exact ``Decimal`` values, never floats.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from autoinvoice.triggers.events import EventType, parse_event
from autoinvoice.validation import InputError

if TYPE_CHECKING:  # annotations only: the parser itself reads no configuration
    from autoinvoice.config import TenantConfig

log = logging.getLogger(__name__)
PART_COLUMNS = ("part_sku", "part_description", "part_qty", "part_unit")
JOB_COLUMNS = (
    "customer_id", "customer_name", "customer_email", "service_type", "asset_make",
    "asset_model", "asset_serial", "running_hours", "labor_hours", "labor_kind", "po_number",
    "completed_at",
)
COLUMNS = ("job_id", *JOB_COLUMNS, *PART_COLUMNS)
DEFAULT_TECHNICIAN_ID = "unassigned"
DEFAULT_TECHNICIAN_NAME = "Service technician"
ASSET_TYPE = "compressor"
UNKNOWN_ADDRESS_LINE = "(billing address not in the work-order export)"
MAX_LABOR_HOURS = Decimal(24)

# Where a field of the event comes from, to name the column when ``parse_event`` rejects it.
_FIELD_COLUMNS = {
    "job.id": "job_id", "job.service_type": "service_type", "job.customer.id": "customer_id",
    "job.customer.name": "customer_name", "job.customer.email": "customer_email",
    "job.asset.make": "asset_make", "job.asset.model": "asset_model",
    "job.asset.serial": "asset_serial", "job.asset.running_hours": "running_hours",
    "job.labor[0].kind": "labor_kind", "job.labor[0]": "labor_hours", "job.po_number": "po_number",
    "job.completed_at": "completed_at", "occurred_at": "completed_at",
}
_PART_FIELDS = {"sku": "part_sku", "description": "part_description", "quantity": "part_qty",
                "unit": "part_unit"}


@dataclass(frozen=True, slots=True)
class _Row:
    line: int  # where the record starts in the file (the header is line 1)
    cells: dict[str, str]
    fitted: bool = True  # False: its cells did not match the header (already reported)

    def __getitem__(self, column: str) -> str:
        return self.cells.get(column, "")


class _Problems(list[str]):
    """Messages "line N, column C: what"; the first problem of a cell is the one kept."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: set[tuple[int, str]] = set()

    def add(self, row: _Row | int, column: str | None, what: str) -> None:
        line = row if isinstance(row, int) else row.line
        if column is None:
            self.append(f"line {line}: {what}")
        elif (line, column) not in self.cells:
            self.cells.add((line, column))
            self.append(f"line {line}, column {column}: {what}")


def parse_work_orders(
    text: str, *, tenant: str, source: str, grade: str = "technician",
    addresses: Mapping[str, Mapping[str, str]] | None = None, country: str = "US",
) -> list[dict[str, Any]]:
    """One ``work_order.finalized`` event dict (the JSON shape ``parse_event`` accepts) per job,
    in file order; ``InputError`` naming line and column of every problem, and then none.

    ``grade``: the default technician's grade; ``addresses``: billing addresses by customer
    id; ``country``: the placeholder address's country for a customer without one."""
    problems = _Problems()
    rows = _read_rows(text, problems)
    groups = _group(rows, problems)
    events = []
    for job_id, job_rows in groups.items():
        event = _event(tenant, job_id, job_rows, grade, addresses or {}, country, problems)
        if event is not None:
            events.append(event)
    if problems:
        raise InputError(sorted(problems, key=_line_of), source=source)
    return events


def tenant_defaults(tenant: TenantConfig) -> dict[str, Any]:
    """``parse_work_orders``' keyword arguments from a tenant's configuration: the cheapest
    configured grade (the first of equals; "technician" when none is configured), the
    ``customers.<id>.address`` entries, and the tenant's own country."""
    grades = tenant.rates.grades
    return {
        "grade": min(grades, key=grades.__getitem__) if grades else "technician",
        "addresses": {cid: c.address.model_dump() for cid, c in tenant.customers.items()
                      if c.address is not None},
        "country": tenant.address.country,
    }


def event_json(event: Mapping[str, Any]) -> str:
    """The event as JSON text, exact decimals written as strings (as our JSON carries them)."""
    return json.dumps(event, default=str, ensure_ascii=False)


# -- reading and grouping ----------------------------------------------------------------
def _read_rows(text: str, problems: _Problems) -> list[_Row]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = [cell.strip() for cell in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        for column in missing:
            problems.add(1, column, "required column is missing from the header")
        if missing:
            return []
        rows: list[_Row] = []
        end = reader.line_num
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            fitted = _fit(cells, header, start)
            if fitted is None:
                problems.add(start, None, f"has {len(cells)} cells, the header has {len(header)}")
                rows.append(_Row(start, {"job_id": cells[0].strip()}, fitted=False))
                continue
            rows.append(_Row(start, dict(zip(header, fitted, strict=True))))
    except csv.Error as exc:
        problems.add(reader.line_num, None, f"not valid CSV ({exc})")
        return []
    return rows


def _fit(cells: list[str], header: list[str], line: int) -> list[str] | None:
    """The row's cells, one per header column; None when they cannot be matched up.

    Some exporters pad a continuation row's empty job columns with a surplus empty cell (the
    shared example does). Such a row is read with the surplus dropped when exactly one
    reading makes it a continuation row (every job column empty); anything else is refused."""
    cells = [cell.strip() for cell in cells]
    surplus = len(cells) - len(header)
    if surplus <= 0:
        return cells if surplus == 0 else None
    readings = set()
    for i in range(1, len(header) + 1):
        if any(cells[i:i + surplus]):
            continue
        reading = (*cells[:i], *cells[i + surplus:])
        if not any(v for h, v in zip(header, reading, strict=True) if h in JOB_COLUMNS):
            readings.add(reading)
    if len(readings) != 1:
        return None
    log.warning("line %d: %d cells, the header has %d; read as a continuation row without "
                "the surplus empty cell(s)", line, len(cells), len(header))
    return list(readings.pop())


def _group(rows: list[_Row], problems: _Problems) -> dict[str, list[_Row]]:
    """Rows by job id: a job row starts a job, continuation rows follow it. The rows of a job
    with a bad row already reported are left out quietly (one mistake, one message)."""
    groups: dict[str, list[_Row]] = {}
    broken: set[str | None] = set()
    current: str | None = None
    for row in rows:
        job_id, starts_job = row["job_id"] or current, any(row[c] for c in JOB_COLUMNS)
        if not row.fitted or job_id in broken:
            broken.add(job_id)
        elif not row["job_id"] and starts_job:
            problems.add(row, "job_id", "required on a job row (one that fills the job columns)")
        elif job_id is None:
            problems.add(row, "job_id", "a continuation row before any job row")
        elif starts_job and job_id in groups:
            problems.add(row, "job_id", f"job {job_id} already started on line "
                         f"{groups[job_id][0].line}; its continuation rows leave the job "
                         "columns empty")
        elif not starts_job and job_id not in groups:
            problems.add(row, "job_id", f"a continuation row of job {job_id} before any job "
                         "row of it (its job columns are empty)")
            broken.add(job_id)
        else:
            groups.setdefault(job_id, []).append(row)
            if not starts_job and not any(row[c] for c in PART_COLUMNS):
                problems.add(row, "part_sku", "a continuation row needs a part")
        current = job_id
    return groups


# -- one job -----------------------------------------------------------------------------
def _event(tenant: str, job_id: str, rows: list[_Row], grade: str,
           addresses: Mapping[str, Mapping[str, str]], country: str, problems: _Problems
           ) -> dict[str, Any] | None:
    head = rows[0]
    completed_at = _timestamp(head, "completed_at", problems)
    job: dict[str, Any] = {
        "id": job_id, "service_type": head["service_type"],
        "customer": _customer(head, addresses, country),
        "completed_at": completed_at.isoformat() if completed_at else None,
        "technicians": [{"id": DEFAULT_TECHNICIAN_ID, "name": DEFAULT_TECHNICIAN_NAME,
                         "grade": grade}],
        "asset": _asset(head, problems),
        "labor": _labor(head, completed_at, problems),
        "parts": [p for row in rows if (p := _part(row, problems)) is not None],
        "po_number": head["po_number"] or None,
    }
    event = {"event_id": _event_id(tenant, job_id, rows),
             "type": EventType.WORK_ORDER_FINALIZED.value, "occurred_at": job["completed_at"],
             "tenant": tenant, "job": job}
    _check(event, rows, problems)
    return event if completed_at is not None else None


def _event_id(tenant: str, job_id: str, rows: list[_Row]) -> str:
    cells = [[row[c] for c in COLUMNS] for row in rows]
    canonical = json.dumps([tenant, job_id, list(COLUMNS), cells], ensure_ascii=False)
    return f"wo-{job_id[:100]}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def _customer(row: _Row, addresses: Mapping[str, Mapping[str, str]], country: str
              ) -> dict[str, Any]:
    address = addresses.get(row["customer_id"]) or {
        "line1": UNKNOWN_ADDRESS_LINE, "city": "(unknown)", "country": country}
    return {"id": row["customer_id"], "name": row["customer_name"],
            "email": row["customer_email"], "billing_address": dict(address)}


def _asset(row: _Row, problems: _Problems) -> dict[str, Any] | None:
    columns = ("asset_make", "asset_model", "asset_serial", "running_hours")
    if not any(row[c] for c in columns):
        return None
    asset: dict[str, Any] = {"type": ASSET_TYPE, "make": row["asset_make"],
                             "model": row["asset_model"], "serial": row["asset_serial"]}
    if row["running_hours"]:
        hours = _decimal(row, "running_hours", problems, positive=False)
        if hours is not None and hours != hours.to_integral_value():
            problems.add(row, "running_hours", f"must be whole hours (got {hours})")
        elif hours is not None:
            asset["running_hours"] = int(hours)
    return asset


def _labor(row: _Row, completed_at: datetime | None, problems: _Problems
           ) -> list[dict[str, Any]]:
    """One entry ending at ``completed_at``, ``labor_hours`` long (the export has no span)."""
    kind = row["labor_kind"] or "onsite"
    if not row["labor_hours"]:
        if row["labor_kind"]:
            problems.add(row, "labor_hours", "required when labor_kind is given")
        return []
    hours = _decimal(row, "labor_hours", problems)
    if kind not in ("onsite", "travel"):
        problems.add(row, "labor_kind", f"must be onsite or travel (got {kind!r})")
        return []
    if hours is not None and hours > MAX_LABOR_HOURS:
        problems.add(row, "labor_hours", f"at most {MAX_LABOR_HOURS} in one entry (got {hours})")
        return []
    if hours is None or completed_at is None:
        return []
    seconds = int((hours * 3600).to_integral_value(rounding=ROUND_HALF_UP))
    start = completed_at - timedelta(seconds=seconds)
    return [{"technician": DEFAULT_TECHNICIAN_ID, "kind": kind, "start": start.isoformat(),
             "end": completed_at.isoformat()}]


def _part(row: _Row, problems: _Problems) -> dict[str, Any] | None:
    if not any(row[c] for c in PART_COLUMNS):
        return None
    if not row["part_sku"]:
        problems.add(row, "part_sku", "required when the row has a part")
    if not row["part_qty"]:
        problems.add(row, "part_qty", "required when the row has a part")
        return None
    quantity = _decimal(row, "part_qty", problems)
    return {"sku": row["part_sku"], "description": row["part_description"],
            "quantity": quantity, "unit": row["part_unit"] or "ea"}


# -- cells -------------------------------------------------------------------------------
def _decimal(row: _Row, column: str, problems: _Problems, *, positive: bool = True
             ) -> Decimal | None:
    raw = row[column]
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        problems.add(row, column, f"not a number (got {raw!r})")
        return None
    if value < 0 or (positive and value == 0):
        problems.add(row, column, f"must be {'greater than 0' if positive else 'at least 0'} "
                     f"(got {raw})")
        return None
    return value


def _timestamp(row: _Row, column: str, problems: _Problems) -> datetime | None:
    raw = row[column]
    if not raw:
        problems.add(row, column, "required on a job row")
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        problems.add(row, column, f"not an ISO 8601 timestamp (got {raw!r})")
        return None
    if moment.tzinfo is None:
        problems.add(row, column, f"needs a UTC offset, e.g. 2026-11-22T14:10:00-06:00 "
                     f"(got {raw!r})")
        return None
    return moment


def _check(event: dict[str, Any], rows: list[_Row], problems: _Problems) -> None:
    """What ``parse_event`` rejects (an empty name, a bad e-mail), named by line and column."""
    try:
        parse_event(event)
    except InputError as exc:
        for problem in exc.problems:
            path, _, what = problem.partition(": ")
            row, column = _origin(path, rows)
            if column is None:
                problems.add(row, None, f"job {event['job']['id']}: {problem}")
            else:
                problems.add(row, column, _plain(what, row[column]))


def _origin(path: str, rows: list[_Row]) -> tuple[_Row, str | None]:
    """The row and column an event field came from (the job row when unsure)."""
    if path.startswith("job.parts["):
        index, _, field = path.removeprefix("job.parts[").partition("].")
        part_rows = [r for r in rows if any(r[c] for c in PART_COLUMNS)]
        if index.isdigit() and int(index) < len(part_rows):
            return part_rows[int(index)], _PART_FIELDS.get(field.split(".")[0])
    for prefix, column in _FIELD_COLUMNS.items():
        if path == prefix or path.startswith(prefix + "."):
            return rows[0], column
    return rows[0], None


def _line_of(problem: str) -> int:
    return int(problem.split()[1].rstrip(",:"))


def _plain(what: str, value: str) -> str:
    if what.startswith("String should have at least 1 character"):
        return "required on a job row" if not value else what
    if what.startswith("String should match pattern"):
        return f"not an e-mail address (got {value!r})"  # the only pattern we map
    return what
