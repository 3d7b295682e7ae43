"""``autoinvoice audit verify`` and ``autoinvoice export`` (registered by ``cli.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2
FORMATS = ("csv", "json")


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
    p = add("export", cmd_export, "the invoice register of a period (by issue date)")
    p.add_argument("--from", dest="date_from", required=True, metavar="DATE")
    p.add_argument("--to", dest="date_to", required=True, metavar="DATE")
    p.add_argument("--tenant")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
