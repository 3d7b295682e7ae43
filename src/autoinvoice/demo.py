"""``autoinvoice demo``: a day of compressor jobs, end to end, on SQLite and a local stand-in.

Starts the platform stand-in and an SMTP server on loopback, ingests the jobs (the shared
examples when ../shared is beside the checkout, plus a generated day), runs the worker,
lets some clients pay, sweeps payments, and prints what happened."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from autoinvoice.bootstrap import App, bootstrap, check_platform_fit
from autoinvoice.config import (
    Config,
    PlatformConfig,
    SecretRef,
    default_config_text,
    parse_config,
)
from autoinvoice.demo_jobs import day_of_jobs, shared_examples, shared_work_orders
from autoinvoice.demo_regions import localise, localise_events
from autoinvoice.documents import en16931
from autoinvoice.domain.invoice import TaxRounding
from autoinvoice.domain.money import Money
from autoinvoice.netutil import free_port
from autoinvoice.pipeline import documents, views
from autoinvoice.pipeline.intake import accept
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.registry import make_standin, standin_app, standin_options
from autoinvoice.sandbox.server import serve_in_thread
from autoinvoice.store import repo
from autoinvoice.triggers.events import decode_json, parse_event
from autoinvoice.validation import InputError

DEMO_KEY = "sk_test_autoinvoice_demo"


class ShiftedClock:
    """Real time plus an offset the demo moves forward (to let signature waits expire)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


STANDIN_RATE = Decimal(500)


def demo_config(out: Path, platform: str, base_url: str, smtp_port: int,
                core: Any = None) -> Config:
    base = parse_config(default_config_text(), "embedded default")
    creds = {"api_key": SecretRef(DEMO_KEY), **standin_oauth_credentials(core)}
    authorize_url, token_url = standin_oauth_urls(base_url, core)
    tenants = {
        name: t.model_copy(update={"platform": PlatformConfig(
            name=platform, base_url=base_url, credentials=creds,
            authorize_url=authorize_url, token_url=token_url,
            # the stand-in company's own tax groups and areas (Business Central)
            **(standin_options(core, t.address.country) if core is not None else {}),
            # The local stand-in has no quota to protect: no need to pace at the real
            # platform's documented limit (Sage's 100/min alone would take a minute).
            rate_limit_per_second=STANDIN_RATE)})
        for name, t in base.tenants.items()
    }
    return _platform_rounding(base.model_copy(update={
        "tenants": tenants,
        "database": base.database.model_copy(update={"url": f"sqlite:///{out}/autoinvoice.db"}),
        "smtp": base.smtp.model_copy(update={"port": smtp_port}),
        "documents_dir": str(out / "invoices"),
        "source": "embedded default (demo)",
    }))


def _platform_rounding(config: Config) -> Config:
    """Tenants round tax the way their platform does (QuickBooks per document), i.e. the
    rounding the start-up check accepts."""
    for rounding in (None, *TaxRounding):
        candidate = config if rounding is None else config.model_copy(update={"tenants": {
            name: t.model_copy(update={"tax": t.tax.model_copy(update={"rounding": rounding})})
            for name, t in config.tenants.items()}})
        try:
            check_platform_fit(candidate)
        except InputError:
            continue
        return candidate
    return config


def follows_oauth_convention(core: Any) -> bool:
    """The stand-in convention of ``sandbox/oauth.py``: ``core.oauth`` + ``core.oauth_paths``."""
    return hasattr(core, "oauth") and hasattr(core, "oauth_paths")


def standin_oauth_urls(base_url: str, core: Any) -> tuple[str | None, str | None]:
    """``authorize_url``/``token_url`` of an OAuth2 stand-in served at ``base_url``."""
    if not follows_oauth_convention(core):
        return None, None
    authorize, token = core.oauth_paths
    return base_url + authorize, base_url + token


def standin_oauth_credentials(core: Any) -> dict[str, SecretRef]:
    if not follows_oauth_convention(core):
        return {}
    return {"client_id": SecretRef(core.oauth.client_id),
            "client_secret": SecretRef(core.oauth.client_secret)}


def connect_standin_tenants(app: App, core: Any, platform: str = "") -> None:
    """Every demo tenant consents through the stand-in: the real code flow over HTTP."""
    if not follows_oauth_convention(core):
        return
    from autoinvoice.connections.connect import connect_headless

    chosen = _own_organisations(platform, core, app)
    for name, tenant in app.config.tenants.items():
        connect_headless(app, name, choose=chosen.get(name)
                         or demo_choice(core, tenant.address.country))


def demo_choice(core: Any, country: str) -> dict[str, str] | None:
    """What a person would pick at consent on a stand-in holding one business or company per
    country (Sage, Business Central): the one in the tenant's country."""
    choose = getattr(core, "demo_choice", None)
    return choose(country) if choose is not None else None


@contextmanager
def throwaway_secret_key() -> Iterator[None]:
    """The demo's own ``AUTOINVOICE_SECRET_KEY`` when none is set (its tokens die with it)."""
    from autoinvoice.connections.crypto import ENV_KEY, new_key

    if os.environ.get(ENV_KEY):
        yield
        return
    os.environ[ENV_KEY] = new_key()
    try:
        yield
    finally:
        os.environ.pop(ENV_KEY, None)


@contextmanager
def mail_sink(folder: Path) -> Iterator[Any]:
    """A real SMTP server on loopback that files every message it receives as .eml."""
    from aiosmtpd.controller import Controller

    folder.mkdir(parents=True, exist_ok=True)

    class Handler:
        count = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            Handler.count += 1
            (folder / f"{Handler.count:03d}.eml").write_bytes(envelope.content)
            return "250 Message accepted"

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def _own_organisations(platform: str, core: Any, app: App) -> dict[str, dict[str, str]]:
    """Zoho Books: one login may keep several organisations, each with its own base
    currency; each demo tenant keeps its books in its own, picked at connect as a person
    would (``choose``). The stand-in's 100 calls a minute are lifted so the local demo does
    not wait them out."""
    if platform != "zoho_books":
        return {}
    core.per_minute = 100_000
    chosen = {}
    for n, (name, tenant) in enumerate(app.config.tenants.items()):
        org = f"{core.organization_id}{n}"
        core.add_organization(org, tenant.currency)
        chosen[name] = {"organization_id": org}
    return chosen


def _xero_demo_pace(app: App, platform: str, core: Any) -> None:
    """Xero tenants connected through the stand-in's OAuth2 server like the others; lift the
    stand-in's 60 calls a minute (and the connector's matching bucket) so the local demo does
    not wait them out."""
    if platform != "xero":
        return
    from dataclasses import replace

    from autoinvoice.connectors.xero import XeroConnector
    from autoinvoice.sandbox.xero import Limits

    core.limits = Limits(per_minute=None, per_day=None)
    for name in app.config.tenants:
        app._connectors[name] = XeroConnector(  # noqa: SLF001 (demo pace only)
            replace(app.connector_settings(name), rate_limit_per_second=500.0))


def _ingest(app: App, events: list[dict[str, Any]]) -> None:
    for raw in events:
        text = json.dumps(raw, default=str)
        accept(app, parse_event(decode_json(text)), text, actor="demo")


def _pay(app: App, platform: str, core: Any, base_url: str) -> int:
    """Clients pay: most in full, one in part, the rest not yet."""
    with app.sessions() as session:
        rows = [r for r in views.list_rows(session) if r.doc_state == "sent"]
    paid = 0
    for i, row in enumerate(rows):
        if i % 3 == 2:
            continue
        total = Money.from_minor(row.total_minor or 0, row.currency or "USD")
        amount = total if i % 5 != 4 else Money(total.amount / 2, total.currency)
        if platform == "stripe":
            core.record_payment(row.remote_id, amount.minor)
        elif platform == "business_central":
            core.record_payment(row.remote_id, amount.minor)
        elif platform == "freshbooks":
            core.record_payment(row.remote_id, amount.minor)
        elif platform == "zoho_books":
            core.record_payment(row.remote_id, amount.minor)
        elif platform == "xero":
            core.record_payment(row.remote_id, amount.minor)
        elif platform == "quickbooks":
            core.record_payment(row.remote_id, amount.minor)
        elif platform == "sage":
            core.record_payment(row.remote_id, amount.minor)
        elif platform == "myob":
            core.record_payment(row.remote_id, amount.minor, amount.currency)
        else:
            httpx.post(f"{base_url}/api/v1/invoices/{row.remote_id}/payments",
                       json={"amount": str(amount.amount)},
                       headers={"Authorization": f"Bearer {DEMO_KEY}"}, timeout=10)
        paid += 1
    return paid


def run_demo(out_dir: str = "demo-output", platform: str = "sandbox") -> int:
    started = time.perf_counter()
    out = Path(out_dir).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    core = make_standin(platform, api_key=DEMO_KEY)
    with serve_in_thread(standin_app(platform, core)) as server, \
            mail_sink(out / "mail") as smtp, throwaway_secret_key():
        clock = ShiftedClock()
        app = bootstrap(localise(demo_config(out, platform, server.base_url, smtp.port, core),
                                 platform), clock=clock)
        connect_standin_tenants(app, core, platform)
        _xero_demo_pace(app, platform, core)
        worker = Worker(app, concurrency=4)
        examples = localise_events(shared_examples() + shared_work_orders(app.config),
                                   platform)
        _ingest(app, examples + localise_events(day_of_jobs(), platform))
        worker.run_until_idle()
        clock.offset = timedelta(hours=49)  # the unsigned jobs' signature wait runs out
        worker.run_until_idle()
        paid = _pay(app, platform, core, server.base_url)
        clock.offset += timedelta(minutes=61)  # the hourly payment sweep comes round
        worker.run_until_idle()
        _summary(app, out, platform, len(examples), paid)
        _samples(app, out / "samples", examples)
        print(f"finished in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def _samples(app: App, folder: Path, examples: list[dict[str, Any]]) -> None:
    """Every document format of each shared example's invoice, as ``autoinvoice documents``
    writes them, each e-invoice checked against every rule set that applies to it."""
    jobs = dict.fromkeys((e["tenant"], e.get("job_id") or e["job"]["id"]) for e in examples)
    written, findings = 0, []
    for tenant, job_id in jobs:
        with app.sessions() as session:
            rows = views.find_job(session, job_id, tenant)
            if not rows:
                continue
            invoice, pay_url = repo.load_invoice(rows[0]), rows[0].remote_url
        # XRechnung is the German profile, for German sellers' clients
        formats = [f for f in documents.FORMATS if not f.startswith("xrechnung")
                   or invoice.seller.address.country == "DE"]
        files = documents.write(app.config.tenant(tenant), invoice, formats, folder,
                                pay_url=pay_url)
        written += len(files)
        findings += [f"{w.path.name}: {message}" for w in files for code, message in w.problems
                     if code != "einvoice_unchecked"]
    if written:
        verdict = "; ".join(findings) or ("all pass the rules that apply"
                                          if en16931.rules_available()
                                          else "not checked, the EN 16931 rules are absent")
        print(f"samples of the shared examples in every format: {written} files in {folder} "
              f"(e-invoices: {verdict})")


def _command() -> str:
    """How the user can run ``autoinvoice`` again (``.venv/bin/autoinvoice`` after make demo)."""
    script = Path(sys.argv[0])
    if script.name != "autoinvoice":
        return "autoinvoice"
    try:
        return str(script.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _summary(app: App, out: Path, platform: str, n_examples: int, paid: int) -> None:
    from autoinvoice.cli import format_table

    with app.sessions() as session:
        rows = [views.summary(r) for r in views.list_rows(session)]
    print(format_table(rows, ["tenant", "job_id", "number", "customer", "total", "currency",
                              "state", "payment_state", "flags", "hold"]))
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    mails = len(list((out / "mail").glob("*.eml")))
    print(f"\n{len(rows)} jobs ({n_examples} events and work orders read from "
          f"../shared/examples) on the local {platform} stand-in: "
          + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    print(f"{paid} client payments simulated; e-mails delivered over SMTP: {mails} "
          f"(saved in {out / 'mail'})")
    print(f"PDF invoices: {out / 'invoices'}")
    print(f"database: {out / 'autoinvoice.db'}  (from this directory: {_command()} invoices list, "
          f"{_command()} invoices show JOB_ID)")
