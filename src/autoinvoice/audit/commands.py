"""``autoinvoice audit verify``, ``audit pack``, ``export`` and ``documents`` (registered by
``cli.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2
FORMATS = ("csv", "json")
DOCUMENT_FORMATS = ("pdf", "ubl", "cii", "facturx", "xrechnung", "xrechnung-ubl")


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from autoinvoice.cli import _app, _print_json
    from autoinvoice.store.audit import verify

    with _app(args).sessions() as session:
        reports = verify(session, args.tenant)
    if args.json:
        _print_json([r.as_dict() for r in reports])
    elif not reports:
        print("no audit entries")
    for r in reports if not args.json else []:
        if r.broken is None:
            print(f"OK      {r.tenant}: {r.entries} entries, head seq {r.head_seq} "
                  f"hash {r.head_hash}")
        else:
            entry = f" entry {r.broken.entry_id}" if r.broken.entry_id is not None else ""
            print(f"BROKEN  {r.tenant}: first broken link at seq {r.broken.seq}{entry}: "
                  f"{r.broken.problem} ({r.entries} entries verified before it)")
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAIL


def cmd_export(args: argparse.Namespace) -> int:
    from autoinvoice.audit.export import register_rows, write_csv
    from autoinvoice.cli import _app
    from autoinvoice.validation import InputError

    start, end = _date(args.date_from, "--from"), _date(args.date_to, "--to")
    if start > end:
        raise InputError([f"--from {start} is after --to {end}"], source="export")
    with _app(args).sessions() as session:
        rows = register_rows(session, start, end, args.tenant)
    out = open(args.out, "w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        if args.format == "json":
            out.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        else:
            write_csv(rows, out)
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"{len(rows)} documents issued {start} to {end} written to {args.out}",
              file=sys.stderr)
    return EXIT_OK


def cmd_audit_pack(args: argparse.Namespace) -> int:
    from pathlib import Path

    from autoinvoice.audit.pack import build_packs, write_pack
    from autoinvoice.cli import _app

    app = _app(args)
    with app.sessions() as session:
        rows = one_tenant_job(session, args.job_id, args.tenant)
        packs = build_packs(session, rows[0].tenant, args.job_id)
    for pack in packs:
        path = write_pack(pack, Path(args.out))
        print(f"{path}  ({len(pack.files) + 1} files)")
    return EXIT_OK


def cmd_documents(args: argparse.Namespace) -> int:
    """Write one document of the job (an invoice revision, or with ``--credit-note`` the
    credit note that credits it) in the formats asked; an e-invoice with a fatal finding of
    any rule that applies is still written (to look at) but the command exits 1 and names
    the rules."""
    from pathlib import Path

    from autoinvoice.cli import _app
    from autoinvoice.pipeline import documents
    from autoinvoice.store import repo

    app = _app(args)
    with app.sessions() as session:
        rows = one_tenant_job(session, args.job_id, args.tenant)
        row = _revision(rows, args.revision)
        if args.credit_note:
            row = _credit_note(session, rows, args.revision)
        invoice, kept = repo.load_invoice(row), documents.stored(session, row.id)
        pay_url = row.remote_url
    formats = args.format or ["pdf"]
    written = documents.write(app.config.tenant(row.tenant), invoice, formats, Path(args.out),
                              pay_url=pay_url, kept=kept)
    for fmt, w in zip(dict.fromkeys(formats), written, strict=True):
        note = "as sent" if w.as_sent else "made now"
        if fmt != "pdf":
            note += "; " + ("; ".join(m for _, m in w.problems) if w.problems
                            else "passes " + _rules_named(fmt))
        print(f"{w.path}  ({note})")
    failed = any(code == "einvoice_invalid" for w in written for code, _ in w.problems)
    return EXIT_FAIL if failed else EXIT_OK


def _rules_named(fmt: str) -> str:
    return {"ubl": "EN 16931 and Peppol BIS 3", "xrechnung": "EN 16931 and XRechnung",
            "xrechnung-ubl": "EN 16931 and XRechnung"}.get(fmt, "EN 16931")


def _credit_note(session: Any, rows: list[Any], wanted: int | None) -> Any:
    """The credit note of revision ``wanted`` (default: the job's newest credit note)."""
    from sqlalchemy import select

    from autoinvoice.store.models import InvoiceRow
    from autoinvoice.validation import InputError

    first = rows[0]
    query = select(InvoiceRow).where(
        InvoiceRow.tenant == first.tenant, InvoiceRow.job_id == first.job_id,
        InvoiceRow.kind == "credit_note")
    if wanted is not None:
        query = query.where(InvoiceRow.revision == wanted)
    note = session.scalars(query.order_by(InvoiceRow.revision.desc())).first()
    if note is None or note.invoice_json is None:
        which = f"revision {wanted} of job" if wanted is not None else "job"
        raise InputError([f"--credit-note: {which} {first.job_id!r} has no credit note"],
                         source="job")
    return note


def one_tenant_job(session: Any, job_id: str, tenant: str | None) -> list[Any]:
    """The job's invoice revisions (newest first); an InputError when there are none or
    the job id exists for several tenants."""
    from autoinvoice.pipeline import views
    from autoinvoice.validation import InputError

    rows = views.find_job(session, job_id, tenant)
    if not rows:
        raise InputError([f"no invoice for job {job_id!r}"], source="job")
    if len({r.tenant for r in rows}) > 1:
        raise InputError([f"job {job_id!r} exists for several tenants; add --tenant"],
                         source="job")
    return rows


def _revision(rows: list[Any], wanted: int | None) -> Any:
    from autoinvoice.validation import InputError

    if wanted is None:
        return rows[0]
    for row in rows:
        if row.revision == wanted:
            return row
    raise InputError([f"--revision {wanted}: the job has revisions "
                      f"{sorted(r.revision for r in rows)}"], source="job")


def _date(value: str, flag: str) -> date:
    from autoinvoice.validation import InputError

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError([f"{flag}: {value!r} is not a date (YYYY-MM-DD)"],
                         source="export") from None


def _needs_subcommand(args: argparse.Namespace) -> int:
    return EXIT_INPUT


def register(add: Callable[..., argparse.ArgumentParser]) -> None:
    audit = add("audit", _needs_subcommand, "the tamper-evident audit log")
    sub: Any = audit.add_subparsers(dest="audit_command", required=True)
    p = add("verify", cmd_audit_verify, "walk each tenant's hash chain; exit 1 at the first "
            "broken link", sub)
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p = add("pack", cmd_audit_pack, "one archive per document of a job: events, signature, "
            "decisions and config, documents, platform exchanges, delivery, payments, "
            "history, and a manifest of hashes", sub)
    p.add_argument("job_id")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--tenant")
    p = add("documents", cmd_documents, "write a job's PDF and e-invoices (the stored copy "
            "as sent, else made now)")
    p.add_argument("job_id")
    p.add_argument("--format", action="append", choices=DOCUMENT_FORMATS,
                   help="pdf, ubl, cii, facturx, xrechnung or xrechnung-ubl (repeatable; "
                   "default pdf)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--tenant")
    p.add_argument("--revision", type=int, help="default: the newest")
    p.add_argument("--credit-note", action="store_true",
                   help="the credit note of --revision (default: the job's newest credit "
                        "note) instead of the invoice")
    p = add("export", cmd_export, "the invoice register of a period (by issue date)")
    p.add_argument("--from", dest="date_from", required=True, metavar="DATE")
    p.add_argument("--to", dest="date_to", required=True, metavar="DATE")
    p.add_argument("--tenant")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
