"""The audit pack: one ZIP archive per document of a job (each invoice revision and credit
note) with everything that led to it and everything that happened to it.

    events/NN-<event id>.json   each event of the job, byte for byte as received
    signature.json, .png         the client's signature (signer, time, method; the image)
    decisions.json               what priced it (currency, price list, contract coverage, the
                                 tax rule and its rate per kind of line), the invoice as priced
                                 (lines, tax categories and rates, notes), holds and reviews,
                                 the engine version and the hash of the configuration
    config.json                  that configuration (secrets appear only as references)
    documents/…                  the PDF and e-invoice files as sent
    platform/exchanges.json      the HTTP requests and responses, secrets masked
    delivery.json, payments.json how it reached the client; what was paid, when
    history.json                 the document's audit-log entries, each as hashed with its
                                 chain hashes: hash = sha256(prev_hash + canonical JSON of
                                 "hashed", keys sorted, no spaces)
    manifest.json                SHA-256 and size of every file above

Archives are deterministic: entries are sorted and dated with the document's issue date.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autoinvoice import __version__
from autoinvoice.documents.formats import file_stem as _safe
from autoinvoice.store.audit import entry_content
from autoinvoice.store.models import (
    ConfigVersionRow,
    DocumentRow,
    EventRow,
    HistoryRow,
    InvoiceRow,
    PaymentRow,
    PlatformExchangeRow,
)

__all__ = ["Pack", "build_packs", "read_manifest", "write_pack"]
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class Pack:
    """One archive's files by name, before it is written."""

    name: str
    files: dict[str, bytes]
    dated: datetime

    def manifest(self) -> dict[str, Any]:
        return {"format": "autoinvoice-audit-pack/1", "generator": f"autoinvoice {__version__}",
                "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                          for name, data in sorted(self.files.items())}}


def build_packs(session: Session, tenant: str, job_id: str) -> list[Pack]:
    """One pack per document of the job (revisions, then credit notes), oldest first."""
    rows = session.scalars(select(InvoiceRow).where(
        InvoiceRow.tenant == tenant, InvoiceRow.job_id == job_id
    ).order_by(InvoiceRow.id)).all()
    events = session.scalars(select(EventRow).where(
        EventRow.tenant == tenant, EventRow.job_id == job_id).order_by(EventRow.id)).all()
    return [_pack(session, row, events) for row in rows]


def _pack(session: Session, row: InvoiceRow, events: Any) -> Pack:
    files: dict[str, bytes] = {}
    for n, event in enumerate(events, start=1):
        files[f"events/{n:02d}-{_safe(event.event_id)}.json"] = event.payload.encode("utf-8")
    files.update(_signature(events))
    history = session.scalars(select(HistoryRow).where(HistoryRow.invoice_id == row.id)
                              .order_by(HistoryRow.seq, HistoryRow.id)).all()
    version = _config_version(history)
    files["decisions.json"] = _json(_decisions(row, history, version))
    config = session.get(ConfigVersionRow, version) if version else None
    if config is not None:
        files["config.json"] = _json({"sha256": config.sha256, "tenant": config.tenant,
                                      "config": json.loads(config.snapshot)})
    for doc in session.scalars(select(DocumentRow).where(DocumentRow.invoice_id == row.id)):
        files[f"documents/{doc.filename}"] = doc.content
    exchanges = session.scalars(select(PlatformExchangeRow).where(
        PlatformExchangeRow.invoice_id == row.id).order_by(PlatformExchangeRow.id)).all()
    files["platform/exchanges.json"] = _json(
        [{"step": x.step, "at": x.at.isoformat(), "exchanges": x.exchanges} for x in exchanges])
    files["delivery.json"] = _json(_delivery(row))
    payments = session.scalars(select(PaymentRow).where(PaymentRow.invoice_id == row.id)
                               .order_by(PaymentRow.id)).all()
    files["payments.json"] = _json(
        {"pay_state": row.pay_state, "amount_paid_minor": row.amount_paid_minor,
         "paid_at": _iso(row.paid_at),
         "observations": [{"source": p.source, "external_id": p.external_id,
                           "amount_paid_minor": p.amount_paid_minor, "currency": p.currency,
                           "observed_at": _iso(p.observed_at), "paid_at": _iso(p.paid_at)}
                          for p in payments]})
    files["history.json"] = _json([
        {"hashed": entry_content(
            entry_id=h.id, seq=h.seq or 0, tenant=h.tenant, invoice_id=h.invoice_id,
            job_id=row.job_id, revision=row.revision, kind=row.kind, at=h.at, actor=h.actor,
            action=h.action, from_state=h.from_state, to_state=h.to_state, detail=h.detail,
            request_id=h.request_id), "prev_hash": h.prev_hash, "hash": h.hash}
        for h in history])
    label = row.number or f"r{row.revision}-{row.kind}"
    dated = datetime.fromisoformat(row.issue_date) if row.issue_date else row.accepted_at
    return Pack(f"{_safe(row.tenant)}_{_safe(row.job_id)}_{_safe(label)}.zip", files, dated)


def _signature(events: Any) -> dict[str, bytes]:
    for event in reversed(events):
        if event.type != "job.signed":
            continue
        signature = dict(json.loads(event.payload).get("signature") or {})
        image = signature.pop("image_png_base64", None)
        out = {"signature.json": _json({"event_id": event.event_id, **signature})}
        if image:
            try:
                out["signature.png"] = base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                pass  # the event itself (under events/) keeps what was received
        return out
    return {}


def _config_version(history: Any) -> str | None:
    for entry in reversed(history):
        if entry.action == "built" and entry.detail.get("config_version"):
            return str(entry.detail["config_version"])
    return None


def _decisions(row: InvoiceRow, history: Any, version: str | None) -> dict[str, Any]:
    built: dict[str, Any] = next(
        (h.detail for h in reversed(history) if h.action == "built"), {})
    return {
        "tenant": row.tenant, "job_id": row.job_id, "revision": row.revision,
        "kind": row.kind, "number": row.number, "issue_date": row.issue_date,
        "engine_version": built.get("engine_version"), "config_version": version,
        "decisions": built.get("decisions"),
        "invoice": json.loads(row.invoice_json) if row.invoice_json else None,
        "holds_and_reviews": [_entry(h) for h in history if h.action in (
            "held", "approved", "rejected", "preflight_warnings", "einvoice_checked",
            "released", "revision_created")],
        "state": {"document": row.doc_state, "payment": row.pay_state,
                  "flags": sorted(row.flags or [])},
    }


def _delivery(row: InvoiceRow) -> dict[str, Any]:
    return {"platform": row.platform, "remote_id": row.remote_id,
            "remote_number": row.remote_number, "remote_url": row.remote_url,
            "platform_sent_at": _iso(row.platform_sent_at), "via": row.delivered_via,
            "message_id": row.message_id, "sent_at": _iso(row.sent_at)}


def _entry(h: HistoryRow) -> dict[str, Any]:
    return {"seq": h.seq, "at": _iso(h.at), "actor": h.actor, "action": h.action,
            "from_state": h.from_state, "to_state": h.to_state, "detail": h.detail,
            "request_id": h.request_id, "prev_hash": h.prev_hash, "hash": h.hash}


def write_pack(pack: Pack, out_dir: Path) -> Path:
    """The archive, with ``manifest.json``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / pack.name
    stamp = pack.dated.astimezone(UTC).timetuple()[:6] if pack.dated.tzinfo else \
        pack.dated.timetuple()[:6]
    stamp = max(stamp, (1980, 1, 1, 0, 0, 0))  # ZIP cannot date before 1980
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*sorted(pack.files.items()), (MANIFEST, _json(pack.manifest()))]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


def read_manifest(path: Path) -> list[str]:
    """Problems with an archive's manifest against its files (empty: it matches)."""
    problems: list[str] = []
    with zipfile.ZipFile(path) as archive:
        listed = json.loads(archive.read(MANIFEST))["files"]
        present = set(archive.namelist()) - {MANIFEST}
        for name in sorted(present - set(listed)):
            problems.append(f"{name}: in the archive but not in the manifest")
        for name, facts in sorted(listed.items()):
            if name not in present:
                problems.append(f"{name}: in the manifest but missing")
                continue
            digest = hashlib.sha256(archive.read(name)).hexdigest()
            if digest != facts["sha256"]:
                problems.append(f"{name}: sha256 {digest} but the manifest says "
                                f"{facts['sha256']}")
    return problems


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
