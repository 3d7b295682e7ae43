"""The tamper-evident audit chain over ``history``.

Every history entry is an audit entry: ``seq`` numbers a tenant's entries 1, 2, 3… without
gaps, and ``hash = sha256(prev_hash || canonical JSON of the entry)`` links it to the tenant's
previous entry (the first links to ``GENESIS``). The canonical JSON has sorted keys, no spaces,
UTF-8, and holds: entry id, seq, tenant, invoice id, job id, revision, kind, ``at`` (ISO 8601
UTC with microseconds), actor, action, from/to state, detail (where platform request ids and
document hashes are kept, when a caller passes them) and request id.

``audit_heads`` keeps each tenant's last seq and hash. ``append`` locks that row (``FOR
UPDATE`` on PostgreSQL; on SQLite the transaction already holds the one write lock), so a
tenant's entries are chained one at a time. ``verify`` walks each chain and names the first
broken link. Without a secret key the chain shows edits, deletions and insertions made with
SQL; someone who recomputes every later hash and the head can hide them, which is why
``verify`` prints the head hash: kept elsewhere, it pins the chain up to that point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, cast, select, update
from sqlalchemy.orm import Session

from autoinvoice.store.db import dialect_insert
from autoinvoice.store.models import (
    AuditHeadRow,
    DocumentRow,
    HistoryRow,
    InvoiceRow,
    PlatformExchangeRow,
)

GENESIS = "0" * 64


def canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_content(*, entry_id: int, seq: int, tenant: str, invoice_id: int | None,
                  job_id: str | None, revision: int | None, kind: str | None, at: datetime,
                  actor: str, action: str, from_state: str | None, to_state: str | None,
                  detail: Any, request_id: str | None) -> dict[str, Any]:
    return {
        "entry_id": entry_id, "seq": seq, "tenant": tenant, "invoice_id": invoice_id,
        "job_id": job_id, "revision": revision, "kind": kind,
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": actor, "action": action, "from_state": from_state, "to_state": to_state,
        # as it reads back from the JSON column (tuples are lists, keys are strings)
        "detail": json.loads(json.dumps(detail)), "request_id": request_id,
    }


def entry_hash(prev_hash: str, content: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(content)).encode("utf-8")).hexdigest()


def append(session: Session, entry: HistoryRow, invoice: InvoiceRow) -> None:
    """Chain ``entry`` (a new history row of ``invoice``) onto its tenant's audit chain."""
    _ensure_head(session, entry.tenant)
    last_seq, last_hash = session.execute(
        select(AuditHeadRow.last_seq, AuditHeadRow.last_hash)
        .where(AuditHeadRow.tenant == entry.tenant).with_for_update()).one()
    entry.seq, entry.prev_hash = last_seq + 1, last_hash
    session.add(entry)
    session.flush()  # the entry id is part of what is hashed
    entry.hash = entry_hash(last_hash, _content_of(entry, invoice.job_id, invoice.revision,
                                                   invoice.kind, entry.detail))
    session.execute(update(AuditHeadRow).where(AuditHeadRow.tenant == entry.tenant)
                    .values(last_seq=entry.seq, last_hash=entry.hash))


def _ensure_head(session: Session, tenant: str) -> None:
    session.execute(dialect_insert(session)(AuditHeadRow)
                    .values(tenant=tenant, last_seq=0, last_hash=GENESIS)
                    .on_conflict_do_nothing())


def _content_of(h: Any, job_id: str | None, revision: int | None, kind: str | None,
                detail: Any) -> dict[str, Any]:
    return entry_content(
        entry_id=h.id, seq=h.seq, tenant=h.tenant, invoice_id=h.invoice_id, job_id=job_id,
        revision=revision, kind=kind, at=h.at, actor=h.actor, action=h.action,
        from_state=h.from_state, to_state=h.to_state, detail=detail, request_id=h.request_id)


# -- verify ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Break:
    """The first broken link of a chain: at which seq and entry, and what is wrong."""

    seq: int | None
    entry_id: int | None
    problem: str


@dataclass(frozen=True)
class ChainReport:
    tenant: str
    entries: int
    head_seq: int
    head_hash: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify(session: Session, tenant: str | None = None) -> list[ChainReport]:
    """Each tenant's chain (or ``tenant``'s alone), checked from seq 1 to the head."""
    tenants = set(session.scalars(select(HistoryRow.tenant).distinct()))
    tenants |= set(session.scalars(select(AuditHeadRow.tenant)))
    if tenant is not None:
        tenants = {tenant}
    return [verify_tenant(session, t) for t in sorted(tenants)]


def verify_tenant(session: Session, tenant: str) -> ChainReport:
    head = session.execute(select(AuditHeadRow.last_seq, AuditHeadRow.last_hash)
                           .where(AuditHeadRow.tenant == tenant)).one_or_none()
    head_seq, head_hash = head if head is not None else (0, GENESIS)
    walker = _Walker()
    broken = None
    for row in _entries(session, tenant):
        broken = walker.step(row)
        if broken is not None:
            break
    else:
        broken = walker.end(head_seq, head_hash) or _stored_files(session, tenant, walker)
    return ChainReport(tenant, walker.count, head_seq, head_hash, broken)


def _stored_files(session: Session, tenant: str, walker: _Walker) -> Break | None:
    """Each stored document and platform exchange must hash to what the chain recorded when
    it was stored (so changing a kept PDF or response is caught like changing an entry)."""
    documents = session.execute(
        select(DocumentRow.invoice_id, DocumentRow.filename, DocumentRow.content)
        .where(DocumentRow.tenant == tenant).order_by(DocumentRow.id))
    for invoice_id, filename, content in documents:
        if hashlib.sha256(content).hexdigest() not in walker.files.get(
                (invoice_id, filename), ()):
            return Break(None, None, f"stored document {filename} (invoice {invoice_id}) does "
                                     "not match the hash the audit log recorded for it")
    exchanges = session.execute(
        select(PlatformExchangeRow.id, PlatformExchangeRow.invoice_id,
               PlatformExchangeRow.exchanges)
        .join(InvoiceRow, InvoiceRow.id == PlatformExchangeRow.invoice_id)
        .where(InvoiceRow.tenant == tenant).order_by(PlatformExchangeRow.id))
    for exchange_id, invoice_id, body in exchanges:
        if exchanges_hash(body) not in walker.files.get((invoice_id, "exchanges"), ()):
            return Break(None, None, f"stored platform exchange {exchange_id} (invoice "
                                     f"{invoice_id}) does not match the hash the audit log "
                                     "recorded for it")
    return None


def exchanges_hash(exchanges: Any) -> str:
    """What the audit log records for one step's platform exchanges."""
    return hashlib.sha256(canonical({"exchanges": exchanges}).encode("utf-8")).hexdigest()


def exchanges_detail(exchanges: list[dict[str, Any]]) -> dict[str, Any]:
    """The audit entry's part about stored platform exchanges: their hash, the request ids."""
    return {"requests": len(exchanges),
            "request_ids": [x["request_id"] for x in exchanges if x.get("request_id")],
            "exchanges_sha256": exchanges_hash(exchanges)}


def _entries(session: Session, tenant: str) -> Iterator[Any]:
    query = (select(HistoryRow.id, HistoryRow.seq, HistoryRow.tenant, HistoryRow.invoice_id,
                    HistoryRow.at, HistoryRow.actor, HistoryRow.action, HistoryRow.from_state,
                    HistoryRow.to_state, cast(HistoryRow.detail, Text).label("detail_text"),
                    HistoryRow.request_id, HistoryRow.prev_hash, HistoryRow.hash,
                    InvoiceRow.job_id, InvoiceRow.revision, InvoiceRow.kind)
             .outerjoin(InvoiceRow, InvoiceRow.id == HistoryRow.invoice_id)
             .where(HistoryRow.tenant == tenant)
             .order_by(HistoryRow.seq.is_(None), HistoryRow.seq, HistoryRow.id))
    yield from session.execute(query.execution_options(yield_per=1000))


class _Walker:
    def __init__(self) -> None:
        self.count = 0
        self.prev_seq = 0
        self.prev_hash = GENESIS
        #: (invoice id, file name or "exchanges") -> hashes the entries recorded
        self.files: dict[tuple[int, str], set[str]] = {}

    def step(self, row: Any) -> Break | None:
        expected = self.prev_seq + 1
        if row.seq is None:
            return Break(None, row.id, "entry is not on the chain (no seq): inserted "
                                       "outside the store")
        if row.seq < expected:
            return Break(row.seq, row.id, f"seq {row.seq} appears twice: an entry was "
                                          "inserted or its seq changed")
        if row.seq > expected:
            return Break(expected, row.id, f"seq {expected} is missing (next is seq "
                                           f"{row.seq}, entry {row.id}): an entry was deleted")
        if row.prev_hash != self.prev_hash:
            return Break(row.seq, row.id, "prev_hash does not match the previous entry's "
                                          "hash: entries reordered or prev_hash changed")
        detail = _detail(row)
        if _recomputed(row, detail) != row.hash:
            return Break(row.seq, row.id, "hash does not match the entry: its content (or "
                                          "its hash) was changed")
        self.count, self.prev_seq, self.prev_hash = self.count + 1, row.seq, row.hash
        self._note_files(row.invoice_id, detail)
        return None

    def _note_files(self, invoice_id: int | None, detail: Any) -> None:
        if invoice_id is None or not isinstance(detail, dict):
            return
        for name, digest in (detail.get("document_hashes") or {}).items():
            self.files.setdefault((invoice_id, name), set()).add(digest)
        if detail.get("exchanges_sha256"):
            self.files.setdefault((invoice_id, "exchanges"), set()).add(
                detail["exchanges_sha256"])

    def end(self, head_seq: int, head_hash: str) -> Break | None:
        if head_seq > self.prev_seq:
            return Break(self.prev_seq + 1, None, f"entries after seq {self.prev_seq} are "
                                                  f"missing (the head is at seq {head_seq}): "
                                                  "deleted")
        if head_seq != self.prev_seq or head_hash != self.prev_hash:
            return Break(self.prev_seq, None, f"the chain head (seq {head_seq}) does not "
                                              "match the last entry")
        return None


_UNREADABLE = object()


def _detail(row: Any) -> Any:
    try:
        return json.loads(row.detail_text) if row.detail_text is not None else None
    except json.JSONDecodeError:
        return _UNREADABLE


def _recomputed(row: Any, detail: Any) -> str | None:
    if detail is _UNREADABLE:
        return None
    return entry_hash(row.prev_hash, _content_of(row, row.job_id, row.revision, row.kind,
                                                 detail))
