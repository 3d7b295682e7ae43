"""The ``autoinvoice`` command. Exit codes: 0 done, 1 failed, 2 bad input (nothing stored)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from autoinvoice.config import Config, load_config
from autoinvoice.sandbox.registry import STANDINS
from autoinvoice.validation import InputError

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2


def _app(args: argparse.Namespace) -> Any:
    from autoinvoice.bootstrap import bootstrap

    return bootstrap(load_config(args.config))


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# -- ingest ------------------------------------------------------------------------------
def read_events(path: str, fmt: str = "auto", tenant: str | None = None,
                config: Config | None = None) -> list[tuple[str, str]]:
    """(label, JSON text) for each event in a file: one JSON document, NDJSON, or (a path
    ending in .csv, or ``fmt`` "csv") the finalized work orders of ``tenant``."""
    text = sys.stdin.read() if path == "-" else _read_file(path)
    source = "stdin" if path == "-" else path
    if fmt == "csv" or (fmt == "auto" and path.lower().endswith(".csv")):
        return _work_order_events(text, source, tenant, config or load_config())
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return [(f"{source}:{n}", line) for n, line in enumerate(text.splitlines(), 1)
                if line.strip()]
    return [(source, text)]


def _work_order_events(text: str, source: str, tenant: str | None, config: Config
                       ) -> list[tuple[str, str]]:
    from autoinvoice.triggers.work_orders import event_json, parse_work_orders, tenant_defaults

    if not tenant:
        raise InputError(["--tenant: required for a work-order CSV (the file names no tenant)"],
                         source=source)
    defaults = tenant_defaults(config.tenant(tenant))
    events = parse_work_orders(text, tenant=tenant, source=source, **defaults)
    return [(f"{source} job {e['job']['id']}", event_json(e)) for e in events]


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise InputError([f"cannot read {path!r}: {exc.strerror}"], source="ingest") from None


def cmd_ingest(args: argparse.Namespace) -> int:
    from autoinvoice.pipeline.intake import accept
    from autoinvoice.triggers.events import decode_json, parse_event

    app = _app(args)
    parsed: list[tuple[Any, str]] = []
    problems: list[str] = []
    try:
        events = read_events(args.path, args.format, args.tenant, app.config)
    except InputError as exc:
        events, problems = [], [f"{exc.source or args.path}: {p}" for p in exc.problems]
    for label, text in events:
        try:
            event = parse_event(decode_json(text, label), label)
            app.config.tenant(event.tenant)
            if args.tenant and event.tenant != args.tenant:
                raise InputError([f"tenant: is {event.tenant!r}, --tenant says {args.tenant!r}"])
            parsed.append((event, text))
        except InputError as exc:
            problems.extend(f"{label}: {p}" for p in exc.problems)
    if problems:  # validate everything first: a bad stream stores nothing
        print("invalid input, nothing stored:\n  " + "\n  ".join(problems), file=sys.stderr)
        return EXIT_INPUT
    for event, text in parsed:
        result = accept(app, event, text, actor="cli")
        print(json.dumps(result.as_dict()) if args.json else
              f"{result.status:9} {result.tenant}/{result.job_id} event {result.event_id}")
    return EXIT_OK


# -- worker / serve ----------------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    from autoinvoice.ledger_setup import check_ledger_setup
    from autoinvoice.pipeline.worker import Worker

    app = _app(args)
    check_ledger_setup(app)
    worker = Worker(app, concurrency=args.concurrency)
    if args.until_idle:
        steps = worker.run_until_idle()
        if worker.problems:  # never "fine" when a step failed or was put off
            for problem in worker.problems:
                print(f"worker: {problem}", file=sys.stderr)
            failed = sum(1 for p in worker.problems if p.retry_at is None)
            print(f"worker: {steps} step(s) done; {failed} failed, "
                  f"{len(worker.problems) - failed} to be retried", file=sys.stderr)
            return EXIT_FAIL
        print(f"worker: {steps} step(s) done, nothing more is due")
        return EXIT_OK
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("worker: running (Ctrl-C or SIGTERM to stop)")
    try:
        worker.run_forever(stop, float(app.config.worker.poll_interval_seconds))
    except KeyboardInterrupt:
        stop.set()
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from autoinvoice.api.app import create_app
    from autoinvoice.ledger_setup import check_ledger_setup
    from autoinvoice.pipeline.worker import Worker

    app = _app(args)
    check_ledger_setup(app)
    stop = threading.Event()
    if args.with_worker:
        worker = Worker(app)
        threading.Thread(target=worker.run_forever, args=(stop, 1.0), daemon=True).start()
    uvicorn.run(create_app(app), host=args.host, port=args.port, log_level="info")
    stop.set()
    return EXIT_OK


# -- invoices ----------------------------------------------------------------------------
def cmd_invoices_list(args: argparse.Namespace) -> int:
    from autoinvoice.pipeline import views

    app = _app(args)
    with app.sessions() as session:
        rows = [views.summary(r) for r in views.list_rows(session, args.tenant, args.state)]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    print(format_table(rows, ["tenant", "job_id", "number", "customer", "total", "currency",
                              "state", "payment_state", "flags", "hold"]))
    return EXIT_OK


def cmd_invoices_show(args: argparse.Namespace) -> int:
    from autoinvoice.pipeline import views

    app = _app(args)
    with app.sessions() as session:
        rows = views.find_job(session, args.job_id, args.tenant)
        if not rows:
            print(f"no invoice for job {args.job_id!r}", file=sys.stderr)
            return EXIT_INPUT
        if len({r.tenant for r in rows}) > 1:
            print(f"job {args.job_id!r} exists for several tenants; add --tenant",
                  file=sys.stderr)
            return EXIT_INPUT
        data = views.job_detail(session, rows[0])
    if args.json:
        _print_json(data)
    else:
        print(format_detail(data))
    return EXIT_OK


def cmd_invoices_retry(args: argparse.Namespace) -> int:
    from autoinvoice.pipeline.admin import retry

    app = _app(args)
    print(retry(app, args.job_id, args.tenant))
    return EXIT_OK


# -- review ------------------------------------------------------------------------------
def _actor(args: argparse.Namespace) -> str:
    return str(args.actor or os.environ.get("USER") or "cli")


def cmd_review_list(args: argparse.Namespace) -> int:
    from autoinvoice.pipeline.review import held

    rows = held(_app(args), args.tenant)
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("nothing is on hold")
        return EXIT_OK
    for row in rows:
        print(f"{row['tenant']}/{row['job_id']} rev {row['revision']}  {row['customer']}  "
              f"{row['total'] or '-'} {row['currency'] or ''}  held since {row['since']}")
        for hold in row["holds"]:
            print(f"    {hold['code']}: {hold['message']}")
    return EXIT_OK


def cmd_review_approve(args: argparse.Namespace) -> int:
    from autoinvoice.pipeline.review import approve, parse_edits

    patch = _read_file(args.edit) if args.edit else None
    edits = parse_edits(patch, args.po, args.price or [], source=f"--edit {args.edit}")
    print(approve(_app(args), args.job_id, args.tenant, actor=_actor(args), note=args.note,
                  edits=edits))
    return EXIT_OK


def cmd_review_reject(args: argparse.Namespace) -> int:
    from autoinvoice.pipeline.review import reject

    print(reject(_app(args), args.job_id, args.tenant, actor=_actor(args), reason=args.reason))
    return EXIT_OK


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = ", ".join(map(str, value))
    return "-" if value is None or value == "" else str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def format_detail(d: dict[str, Any]) -> str:
    out = [f"{d['tenant']}/{d['job_id']} rev {d['revision']}  number {d['number'] or '-'}",
           f"state {d['state']}  payment {d['payment_state']}  platform {d['platform']} "
           f"remote {d['remote']['id'] or '-'}",
           f"customer {d['customer']}  issue {d['issue_date']}  due {d['due_date']}"]
    if d["hold"]:
        out.append(f"ON HOLD {d['hold']['code']}: {d['hold']['message']}")
    if d["last_error"]:
        out.append(f"last error: {d['last_error']}")
    out.append(format_table(d["lines"], ["no", "description", "quantity", "unit",
                                         "unit_price", "amount", "tax_rate", "tax",
                                         "tax_category"]))
    out.append(f"subtotal {d['subtotal']}  tax {d['tax']}  total {d['total']} {d['currency']}"
               f"  paid {d['payment']['amount_paid']}")
    out += [f"note: {note}" for note in d.get("notes") or []]
    out += [f"  {h['at']}  {h['actor']:10} {h['action']:20} {h['to'] or ''}"
            for h in d["history"]]
    if len(d.get("documents") or []) > 1:
        out.append("documents of this job:")
        out.append(format_table(d["documents"], ["kind", "revision", "number", "state",
                                                 "total", "currency", "credits_invoice"]))
    return "\n".join(out)


# -- preview / demo ------------------------------------------------------------------------
def cmd_preview(args: argparse.Namespace) -> int:
    from autoinvoice.preview import preview

    result = preview(load_config(args.config), _read_file(args.event), args.event, args.tenant)
    if args.json:
        _print_json(result)
    else:
        print(format_table(result["invoice"]["lines"], ["description", "quantity",
                                                         "unit_price", "amount", "tax"]))
        print(f"total {result['invoice']['total']} {result['invoice']['currency']}")
        for req in result["requests"] or []:
            print(f"{req['method']} {req['url']}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from autoinvoice.demo import run_demo

    return run_demo(out_dir=args.out, platform=args.platform)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    app = _app(args)
    print(f"database at {app.config.database.url} is up to date")
    return EXIT_OK


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from autoinvoice.sandbox.registry import serve_standin

    serve_standin(args.platform, args.host, args.port, args.api_key)
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    config_help = ("TOML config (default: $AUTOINVOICE_CONFIG, ./autoinvoice.toml, else the "
                   "embedded demo default)")
    parser = argparse.ArgumentParser(prog="autoinvoice", description=__doc__)
    parser.add_argument("--config", help=config_help)
    # after the command too; SUPPRESS keeps a --config given before the command (argparse
    # would otherwise overwrite it with the subcommand's default)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str,
            into: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = into.add_parser(name, parents=[common], help=help_)
        p.set_defaults(func=func)
        return p

    p = add("serve", cmd_serve, "run the HTTP API (events, webhooks, invoices)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--with-worker", action="store_true", help="also run a worker thread")
    p = add("ingest", cmd_ingest, "ingest one JSON event, an NDJSON stream, a work-order "
            "CSV, or - for stdin")
    p.add_argument("path")
    p.add_argument("--format", choices=["auto", "json", "csv"], default="auto",
                   help="auto: CSV when the path ends in .csv, else JSON or NDJSON")
    p.add_argument("--tenant", help="the tenant a work-order CSV belongs to (required for "
                   "CSV); for JSON, every event must name it")
    p.add_argument("--json", action="store_true")
    p = add("worker", cmd_worker, "advance invoices through the pipeline")
    p.add_argument("--until-idle", action="store_true", help="do everything due, then exit")
    p.add_argument("--concurrency", type=int, default=1)
    p = add("preview", cmd_preview, "show the invoice and the exact requests, sending nothing")
    p.add_argument("event")
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p = add("demo", cmd_demo, "run a day of compressor jobs through the local sandbox")
    p.add_argument("--out", default="demo-output")
    p.add_argument("--platform", default="sandbox", choices=sorted(STANDINS))
    inv = add("invoices", lambda a: EXIT_INPUT, "list and inspect invoices")
    isub = inv.add_subparsers(dest="invoices_command", required=True)
    p = add("list", cmd_invoices_list, "all invoices", isub)
    p.add_argument("--tenant")
    p.add_argument("--state")
    p.add_argument("--json", action="store_true")
    p = add("show", cmd_invoices_show, "one invoice with lines, payment and history", isub)
    p.add_argument("job_id")
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p = add("retry", cmd_invoices_retry, "re-queue a failed invoice now", isub)
    p.add_argument("job_id")
    p.add_argument("--tenant")
    rv = add("review", lambda a: EXIT_INPUT, "review invoices held for a person")
    rsub = rv.add_subparsers(dest="review_command", required=True)
    p = add("list", cmd_review_list, "every invoice on hold, with its reasons", rsub)
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p = add("approve", cmd_review_approve, "let a held invoice go on, or rebuild it with edits "
            "as a new revision", rsub)
    p.add_argument("job_id")
    p.add_argument("--tenant")
    p.add_argument("--note", help="why it is approved (kept in the history)")
    p.add_argument("--edit", metavar="FILE",
                   help="JSON merge patch (RFC 7386) applied to the job of its newest event")
    p.add_argument("--po", help="set the job's PO number")
    p.add_argument("--price", action="append", metavar="SKU=PRICE",
                   help="agreed unit price for that SKU's parts (repeatable)")
    p.add_argument("--actor", help="who approves (default: $USER)")
    p = add("reject", cmd_review_reject, "void a held invoice; nothing is sent", rsub)
    p.add_argument("job_id")
    p.add_argument("--tenant")
    p.add_argument("--reason", required=True)
    p.add_argument("--actor", help="who rejects (default: $USER)")
    db = add("db", lambda a: EXIT_INPUT, "database maintenance")
    add("upgrade", cmd_db_upgrade, "apply migrations", db.add_subparsers(required=True))
    sb = add("sandbox", lambda a: EXIT_INPUT, "run a local platform stand-in")
    p = add("serve", cmd_sandbox_serve, "serve a stand-in over HTTP",
            sb.add_subparsers(required=True))
    p.add_argument("--platform", default="sandbox", choices=sorted(STANDINS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8766)
    p.add_argument("--api-key", help="the key the stand-in accepts (default: its built-in one)")
    from autoinvoice.audit.commands import register as register_audit
    from autoinvoice.connections.commands import register as register_connections

    register_connections(add)
    register_audit(add)
    return parser


def known_tenant(args: argparse.Namespace) -> None:
    """``--tenant`` must name a tenant of the config: an unknown one is refused before the
    command runs (never an empty answer, or "OK" about nothing)."""
    name = getattr(args, "tenant", None)
    if name is None:
        return
    tenants = load_config(args.config).tenants
    if name not in tenants:
        raise InputError([f"--tenant: unknown tenant {name!r}; the config has: "
                          f"{', '.join(sorted(tenants)) or 'none'}"])


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        known_tenant(args)
        code: int = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the user gets one line; AUTOINVOICE_DEBUG=1 shows the trace
        if os.environ.get("AUTOINVOICE_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc} (set AUTOINVOICE_DEBUG=1 for details)",
              file=sys.stderr)
        return EXIT_FAIL
    return code


if __name__ == "__main__":
    sys.exit(main())
