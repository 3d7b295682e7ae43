from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import App, bootstrap
from autoinvoice.config import parse_config
from autoinvoice.netutil import free_port
from autoinvoice.pipeline.intake import accept
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.generic import GenericSandbox
from autoinvoice.sandbox.generic import mock_transport as generic_transport
from autoinvoice.sandbox.stripe import StripeSandbox
from autoinvoice.sandbox.stripe import mock_transport as stripe_transport
from autoinvoice.triggers.events import decode_json, parse_event
from tests.helpers import VirtualTimer, dumps

STRIPE_KEY = "sk_test_pipeline_4242"
WEBHOOK_SECRET = "whsec_pipeline_secret"

RATES = """
technician = "115.00"
senior = "145.00"
engineer = "175.00"
travel_factor = "0.75"
overtime_factor = "1.5"
weekend_factor = "2.0"
emergency_callout_fee = "250.00"
minimum_onsite_hours = "2.0"
mileage_rate = { per = "mi", price = "0.95" }
"""
PRICEBOOK = """
"1622-8757-00" = { price = "412.00", description = "Thermostatic valve kit" }
"1622-3637-80" = { price = "689.50", description = "Cooler fan motor 1.1 kW" }
"OIL-RIF-8K"   = { price = "18.40", unit = "l", description = "Roto-Inject Fluid, 8000 h" }
"""


def tenant_toml(name: str, platform: str, extra_platform: str = "") -> str:
    return f"""
[tenants.{name}]
legal_name = "Northwind Compressed Air Services LLC"
tax_id = "73-1234567"
email = "billing@northwind.example"
address = {{ line1 = "410 W 7th St", city = "Tulsa", region = "OK", postal_code = "74119", \
country = "US" }}
currency = "USD"
payment_terms_days = 30
invoice_series = "NW-{{year}}-{{seq:05d}}"
api_keys = ["env:TEST_{name.upper()}_API_KEY"]
[tenants.{name}.platform]
name = "{platform}"
{extra_platform}
[tenants.{name}.triggers]
require = ["job.completed", "job.signed"]
signature_wait_hours = 24
[tenants.{name}.rates]
{RATES}
[tenants.{name}.tax]
rate = "0.085"
labor_taxable = false
parts_taxable = true
[tenants.{name}.pricebook]
{PRICEBOOK}
"""


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 21, 3, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Harness:
    app: App
    clock: FakeClock
    stripe: StripeSandbox
    generic: GenericSandbox
    worker: Worker
    sleeps: list[float]

    def ingest(self, event: dict[str, Any]) -> Any:
        text = dumps(event)
        return accept(self.app, parse_event(decode_json(text)), text, actor="test")

    def run(self) -> int:
        return self.worker.run_until_idle()

    def row(self, job_id: str, tenant: str = "northwind") -> Any:
        from autoinvoice.pipeline import views

        with self.app.sessions() as session:
            return views.find_job(session, job_id, tenant)[0]

    def show(self, job_id: str, tenant: str = "northwind") -> dict[str, Any]:
        from autoinvoice.pipeline import views

        with self.app.sessions() as session:
            return views.detail(session, views.find_job(session, job_id, tenant)[0])


def make_config(tmp_path: Path, smtp_port: int = 1) -> Any:
    return parse_config(config_source(tmp_path, smtp_port), "test config")


def config_source(tmp_path: Path, smtp_port: int = 1) -> str:
    """The two test tenants' config as TOML (a Stripe one and a sandbox one)."""
    return f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'test.db'}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
[worker]
max_attempts = 4
backoff_base_seconds = "2"
payment_poll_minutes = "60"
""" + tenant_toml("northwind", "stripe", 'base_url = "https://api.stripe.com"\n'
                  'credentials = { api_key = "env:TEST_STRIPE_KEY" }\n'
                  'webhook_secret = "env:TEST_STRIPE_WHSEC"') + tenant_toml("mail", "sandbox")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_STRIPE_KEY", STRIPE_KEY)
    monkeypatch.setenv("TEST_STRIPE_WHSEC", WEBHOOK_SECRET)
    monkeypatch.setenv("TEST_NORTHWIND_API_KEY", "nw-key-123")
    monkeypatch.setenv("TEST_MAIL_API_KEY", "mail-key-456")


@pytest.fixture
def harness(tmp_path: Path, env: None, smtp_sink: Any) -> Harness:
    clock = FakeClock()
    stripe = StripeSandbox(api_key=STRIPE_KEY)
    generic = GenericSandbox()
    sleeps = VirtualTimer()
    app = bootstrap(make_config(tmp_path, smtp_sink.port), clock=clock,
                    transports={"northwind": stripe_transport(stripe),
                                "mail": generic_transport(generic)},
                    timer=sleeps)
    return Harness(app, clock, stripe, generic, Worker(app), sleeps)


@dataclass
class SmtpSink:
    port: int
    messages: list[Any]


@pytest.fixture
def smtp_sink() -> Any:
    """A real SMTP server on loopback (aiosmtpd), collecting what it receives."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            msg = message_from_bytes(envelope.content, policy=policy.default)
            received.append((envelope.rcpt_tos, msg))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpSink(controller.port, received)
    finally:
        controller.stop()


@pytest.fixture
def api(harness: Harness) -> Any:
    """The FastAPI app served over real HTTP on loopback; an httpx client pointed at it."""
    import httpx

    from autoinvoice.api.app import create_app
    from autoinvoice.sandbox.server import serve_in_thread

    with serve_in_thread(create_app(harness.app)) as server, \
            httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client
