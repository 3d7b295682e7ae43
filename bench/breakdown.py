"""Where the time of one invoice goes, measured part by part, all in one process:

- the Stripe connector alone (create + send) against the in-process stand-in (MockTransport);
- the pipeline's own bookkeeping, with a connector that answers instantly;
- event intake (parse, validate, store, schedule).

    .venv/bin/python bench/breakdown.py [--invoices 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import completed, dumps  # noqa: E402
from tests.integration.conftest import tenant_toml  # noqa: E402

from autoinvoice.billing.engine import build_invoice  # noqa: E402
from autoinvoice.bootstrap import bootstrap  # noqa: E402
from autoinvoice.config import SecretRef, billing_rules, load_config, parse_config  # noqa: E402
from autoinvoice.connectors.base import (  # noqa: E402
    ConnectorSettings,
    IdempotencyKeys,
    RemoteCustomer,
    RemoteInvoice,
)
from autoinvoice.connectors.stripe import StripeConnector  # noqa: E402
from autoinvoice.pipeline.intake import accept  # noqa: E402
from autoinvoice.pipeline.worker import Worker  # noqa: E402
from autoinvoice.sandbox.stripe import StripeSandbox, mock_transport  # noqa: E402
from autoinvoice.triggers.events import decode_json, parse_event  # noqa: E402


class InstantConnector:
    """Answers at once: what is left is the pipeline's own work."""

    platform, delivers_itself = "stripe", True

    def ensure_customer(self, customer: Any, keys: Any) -> RemoteCustomer:
        return RemoteCustomer("cus_1")

    def create_invoice(self, invoice: Any, customer: Any, keys: Any) -> RemoteInvoice:
        return RemoteInvoice(f"in_{invoice.job_id}", invoice.total, "draft")

    def send_invoice(self, remote: RemoteInvoice, keys: Any) -> RemoteInvoice:
        return remote


def per_ms(start: float, n: int) -> float:
    return (time.perf_counter() - start) / n * 1000


def connector_alone(n: int) -> float:
    sandbox = StripeSandbox(api_key="sk_test_b")
    connector = StripeConnector(ConnectorSettings(
        tenant="t", currency="USD", credentials={"api_key": SecretRef("sk_test_b")},
        transport=mock_transport(sandbox), rate_limit_per_second=1e9))
    rules = billing_rules(load_config(None).tenants["northwind"])
    event = parse_event(decode_json(dumps(completed())))
    invoice = build_invoice(event.job.domain(), rules, tenant="t", revision=1,
                            issue_date=date(2026, 11, 23)).invoice.with_number("NW-1")
    customer = connector.ensure_customer(invoice.customer, IdempotencyKeys("warm"))
    start = time.perf_counter()
    for i in range(n):
        keys = IdempotencyKeys(f"k{i}")
        remote = connector.create_invoice(dataclasses.replace(invoice, job_id=f"J{i}"),
                                          customer, keys)
        connector.send_invoice(remote, keys)
    return per_ms(start, n)


def pipeline_parts(n: int) -> tuple[float, float]:
    os.environ.setdefault("BENCH_KEY", "k")
    with tempfile.TemporaryDirectory() as folder:
        text = f'[database]\nurl = "sqlite:///{folder}/b.db"\n' + tenant_toml(
            "northwind", "stripe", 'credentials = { api_key = "env:BENCH_KEY" }').replace(
            'require = ["job.completed", "job.signed"]', 'require = ["job.completed"]')
        app = bootstrap(parse_config(text, "bench"))
        app._connectors["northwind"] = InstantConnector()  # type: ignore[assignment]
        events = [dumps(completed(f"WO-{i}")) for i in range(n)]
        start = time.perf_counter()
        for raw in events:
            accept(app, parse_event(decode_json(raw)), raw)
        intake = per_ms(start, n)
        start = time.perf_counter()
        Worker(app).run_until_idle()
        return intake, per_ms(start, n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=300)
    n = parser.parse_args().invoices
    connector = connector_alone(n)
    intake, bookkeeping = pipeline_parts(n)
    print(f"Stripe connector, create + send, in-process stand-in: {connector:.1f} ms/invoice")
    print(f"pipeline bookkeeping (instant connector):            {bookkeeping:.1f} ms/invoice")
    print(f"event intake:                                          {intake:.1f} ms/event")


if __name__ == "__main__":
    main()
