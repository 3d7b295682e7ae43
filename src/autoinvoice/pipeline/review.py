"""Review of held invoices: list them, approve (as they are, or with edits that make a new
revision), or reject.

An approval with edits never changes the held revision: the edited job is stored as a new
``job.completed`` event (``review-<job>-r<revision>``, the reviewer as its actor), so the audit
shows exactly what changed, and the held revision is corrected like any changed job -- void
(on the platform too, when it had been created there), then the next revision is built from
the edited job, and held again if it still has problems. Every check runs before anything is
written: bad input leaves the database as it was."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autoinvoice.bootstrap import App
from autoinvoice.pipeline import views
from autoinvoice.pipeline.build import build_step
from autoinvoice.pipeline.corrections import newest_completion, request_correction
from autoinvoice.pipeline.holds import reasons_of, release
from autoinvoice.pipeline.intake import store_event
from autoinvoice.pipeline.revise import finish_void
from autoinvoice.pipeline.states import Correction, DocState, Handoff
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow
from autoinvoice.triggers.events import JobCompleted, parse_event
from autoinvoice.validation import InputError


@dataclass(frozen=True, slots=True)
class Edits:
    """What a reviewer changes: a JSON merge patch (RFC 7386) on the job, its PO number, and
    agreed unit prices by SKU."""

    patch: dict[str, Any] | None = None
    po_number: str | None = None
    prices: tuple[tuple[str, Decimal], ...] = ()

    @property
    def empty(self) -> bool:
        return self.patch is None and self.po_number is None and not self.prices


def parse_edits(patch_text: str | None, po_number: str | None, prices: Sequence[str],
                source: str = "--edit") -> Edits:
    """The reviewer's edits from the command line; ``InputError`` names each bad one."""
    problems: list[str] = []
    patch = None
    if patch_text is not None:
        try:
            patch = json.loads(patch_text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            problems.append(f"{source}: not valid JSON ({exc})")
        else:
            if not isinstance(patch, dict):
                problems.append(f"{source}: a merge patch of the job must be a JSON object")
                patch = None
    if po_number is not None and not po_number.strip():
        problems.append("--po: must not be empty")
    parsed = [_price(text, problems) for text in prices]
    if problems:
        raise InputError(problems)
    return Edits(patch, po_number.strip() if po_number else None,
                 tuple(p for p in parsed if p is not None))


def _price(text: str, problems: list[str]) -> tuple[str, Decimal] | None:
    sku, sep, raw = text.partition("=")
    try:
        price = Decimal(raw.strip())
    except InvalidOperation:
        price = Decimal("NaN")
    if not sep or not sku.strip() or not price.is_finite() or price < 0:
        problems.append(f"--price {text!r}: expected SKU=PRICE with a price of 0 or more, "
                        "e.g. 1622-8757-00=399.00")
        return None
    return sku.strip(), price


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- list ---------------------------------------------------------------------------------


def held(app: App, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every invoice on hold, oldest hold first."""
    with app.sessions() as session:
        query = select(InvoiceRow).where(InvoiceRow.doc_state == DocState.ON_HOLD,
                                         InvoiceRow.kind == "invoice")
        if tenant:
            query = query.where(InvoiceRow.tenant == tenant)
        rows = session.scalars(query.order_by(InvoiceRow.held_at, InvoiceRow.id)).all()
        return [_held_view(row) for row in rows]


def _held_view(row: InvoiceRow) -> dict[str, Any]:
    summary = views.summary(row)
    return {key: summary[key] for key in ("tenant", "job_id", "revision", "number", "customer",
                                          "total", "currency", "platform")} | {
        "holds": reasons_of(row),
        "since": (row.held_at or row.updated_at).isoformat(),
        "correction": row.correction,
    }


# -- approve / reject ---------------------------------------------------------------------


def approve(app: App, job_id: str, tenant: str | None, *, actor: str, note: str | None = None,
            edits: Edits = Edits()) -> str:
    now = app.clock()
    with app.sessions.begin() as session:
        row = _held_row(session, job_id, tenant)
        if edits.empty:
            return _approve_as_is(session, row, now, actor, note)
        handoff, message = _approve_with_edits(app, session, row, now, actor, note, edits)
    if handoff is None:
        return message
    return f"{message}; {_build_now(app, handoff)}"


def _approve_as_is(session: Session, row: InvoiceRow, now: datetime, actor: str,
                   note: str | None) -> str:
    codes = [reason["code"] for reason in reasons_of(row)]
    # Created on the platform already (total_mismatch): it goes on to be sent as it is there.
    target = DocState.CREATED if row.remote_id else DocState.READY
    release(row)
    row.attempts, row.last_error, row.next_attempt_at = 0, None, now
    repo.record(session, row, now, "approved", actor=actor, to_state=target, note=note,
                holds=codes)
    return (f"{row.tenant}/{row.job_id} rev {row.revision}: approved by {actor} "
            f"({', '.join(codes)}); {target} next")


def _approve_with_edits(app: App, session: Session, row: InvoiceRow, now: datetime,
                        actor: str, note: str | None, edits: Edits
                        ) -> tuple[Handoff | None, str]:
    event, raw, changed = _edited_event(session, row, edits, now)
    if store_event(app, session, event, raw, now, f"review:{actor}") is None:
        raise InputError([f"job_id: event {event.event_id} exists already"])
    release(row)
    repo.record(session, row, now, "approved_with_edits", actor=actor, note=note,
                event_id=event.event_id, changed=changed)
    request_correction(session, row, Correction.REVISE, f"edited in review by {actor}", now,
                       actor=actor, event_id=event.event_id)
    head = (f"{row.tenant}/{row.job_id} rev {row.revision}: approved by {actor} with edits "
            f"(event {event.event_id})")
    if row.remote_id or row.create_started_at:  # it exists on the platform: the worker voids
        return None, f"{head}; the worker voids it on the platform and builds the next revision"
    return finish_void(app, session, row, now, "not_on_platform", actor=actor), \
        f"{head}; rev {row.revision} void"  # type: ignore[return-value]


def _edited_event(session: Session, row: InvoiceRow, edits: Edits, now: datetime
                  ) -> tuple[JobCompleted, str, list[str]]:
    source = newest_completion(repo.job_events(session, row.tenant, row.job_id))
    if source is None:
        raise InputError([f"job_id: job {row.job_id} has no completion event to edit"])
    original = json.loads(source.payload, parse_float=Decimal)["job"]
    job, changed = _apply(original, edits)
    # It must be the job's newest completion: never dated before the one it edits.
    occurred = max(now, source.occurred_at)
    data = {"event_id": f"review-{row.job_id}-r{row.revision + 1}", "type": "job.completed",
            "occurred_at": occurred.isoformat(), "tenant": row.tenant, "job": job}
    raw = dumps_exact(data)
    event = parse_event(json.loads(raw, parse_float=Decimal), source="edited job")
    assert isinstance(event, JobCompleted)
    if event.job == parse_event(json.loads(source.payload, parse_float=Decimal)).job:  # type: ignore[union-attr]
        raise InputError(["edits: they leave the job as it is; approve without edits instead"])
    return event, raw, changed


def _apply(job: dict[str, Any], edits: Edits) -> tuple[dict[str, Any], list[str]]:
    changed: list[str] = []
    if edits.patch is not None:
        patched = merge_patch(job, edits.patch)
        if patched.get("id") != job.get("id"):
            raise InputError(["--edit: the job id cannot change"])
        changed += [f"job.{key}" for key in sorted(edits.patch)]
        job = patched
    if edits.po_number is not None:
        job = {**job, "po_number": edits.po_number}
        changed.append("job.po_number")
    for sku, price in edits.prices:
        found = job.get("parts")
        parts: list[Any] = found if isinstance(found, list) else []
        hits = [i for i, part in enumerate(parts) if isinstance(part, dict)
                and part.get("sku") == sku]
        if not hits:
            raise InputError([f"--price {sku}: no part with SKU {sku!r} in job {job.get('id')}"])
        parts = [{**p, "unit_price": price} if i in hits else p for i, p in enumerate(parts)]
        job = {**job, "parts": parts}
        changed.append(f"job.parts[{sku}].unit_price")
    return job, changed


def _build_now(app: App, handoff: Handoff) -> str:
    """Build the new revision at once, so the reviewer sees whether it is held again (it was
    leased to us; should this fail, a worker builds it when the lease runs out)."""
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, handoff.row_id, with_for_update=True)
        build_step(app, session, row, now)
        if row.doc_state == DocState.ON_HOLD:
            holds = "; ".join(f"{r['code']}: {r['message']}" for r in reasons_of(row))
            return f"rev {row.revision} built and held again ({holds})"
        if row.doc_state == DocState.READY:
            return (f"rev {row.revision} built, total {views.summary(row)['total']} "
                    f"{row.currency}; ready to be created and sent by the worker")
        return f"rev {row.revision} {row.doc_state}"


def reject(app: App, job_id: str, tenant: str | None, *, actor: str, reason: str) -> str:
    if not reason.strip():
        raise InputError(["--reason: say why the invoice is rejected"])
    now = app.clock()
    with app.sessions.begin() as session:
        row = _held_row(session, job_id, tenant)
        codes = [r["code"] for r in reasons_of(row)]
        release(row)
        repo.record(session, row, now, "rejected", actor=actor, reason=reason, holds=codes)
        request_correction(session, row, Correction.VOID, f"rejected by {actor}: {reason}",
                           now, actor=actor)
        head = f"{row.tenant}/{row.job_id} rev {row.revision}: rejected by {actor}"
        if row.remote_id or row.create_started_at:
            return f"{head}; the worker voids it on the platform"
        finish_void(app, session, row, now, "not_on_platform", actor=actor)
        return f"{head}; void, nothing sent"


def _held_row(session: Session, job_id: str, tenant: str | None) -> InvoiceRow:
    rows = views.find_job(session, job_id, tenant)
    if not rows:
        raise InputError([f"job_id: no invoice for job {job_id!r}"
                          + (f" of tenant {tenant!r}" if tenant else "")])
    if len({r.tenant for r in rows}) > 1:
        raise InputError([f"job_id: job {job_id!r} exists for several tenants; add --tenant"])
    row = session.get_one(InvoiceRow, rows[0].id, with_for_update=True)
    if row.doc_state != DocState.ON_HOLD:
        raise InputError([f"job_id: invoice for job {job_id} (rev {row.revision}) is "
                          f"{row.doc_state}, not on hold"])
    if row.correction:
        raise InputError([f"job_id: rev {row.revision} of job {job_id} is already being "
                          f"corrected ({row.correction}: {row.correction_reason}); run the "
                          "worker, then review what it leaves"])
    return row


def dumps_exact(value: Any) -> str:
    """JSON with decimals written exactly as numbers (``json`` would need floats)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps_exact(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps_exact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)
