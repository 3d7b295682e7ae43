"""The generic sandbox over real HTTP: uvicorn on a free port, the connector on real sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest

from autoinvoice.connectors.sandbox import SandboxConnector
from autoinvoice.sandbox.generic import GenericSandbox, asgi_app
from autoinvoice.sandbox.server import RunningServer, serve_in_thread
from tests.connectors.test_sandbox_connector import (
    API_KEY,
    CUSTOMER,
    Wire,
    keys_for,
    make_invoice,
    pay,
    settings_for,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def sandbox() -> GenericSandbox:
    return GenericSandbox(api_key=API_KEY)


@pytest.fixture
def server(sandbox: GenericSandbox) -> Iterator[RunningServer]:
    with serve_in_thread(asgi_app(sandbox)) as running:
        yield running


def connector_for(server: RunningServer, wire: Wire | None = None) -> SandboxConnector:
    return SandboxConnector(settings_for(None, wire or Wire(), base_url=server.base_url))


def test_connector_runs_the_whole_flow_over_real_http(sandbox: GenericSandbox,
                                                      server: RunningServer) -> None:
    # given
    connector = connector_for(server)
    invoice = make_invoice()
    keys = keys_for(invoice)
    # when
    connector.check_auth()
    created = connector.create_invoice(invoice, connector.ensure_customer(CUSTOMER, keys), keys)
    sent = connector.send_invoice(created, keys)
    pay(sandbox, sent.id, str(invoice.total.amount))
    status = connector.fetch_status(sent.id)
    # then
    assert created.total == invoice.total
    assert connector.find_by_reference(invoice) == replace(created, status="paid")
    assert (status.status, status.amount_paid, status.balance.is_zero()) == (
        "paid", invoice.total, True)


def test_every_response_carries_a_request_id(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        unauthorised = client.get("/api/v1/account")
        missing = client.get("/api/v1/nowhere", headers=AUTH)
    assert unauthorised.status_code == 401
    assert unauthorised.json()["error"]["code"] == "unauthorized"
    assert missing.status_code == 404
    assert unauthorised.headers["x-request-id"] != missing.headers["x-request-id"]


def test_lost_response_drops_the_socket_after_the_invoice_was_made(
        sandbox: GenericSandbox, server: RunningServer) -> None:
    # given
    customer = connector_for(server).ensure_customer(CUSTOMER, keys_for(make_invoice()))
    body = {"customer_id": customer.id, "reference": "JOB-1", "revision": 1, "currency": "USD",
            "issue_date": "2025-03-05", "due_date": "2025-04-04",
            "lines": [{"description": "Labor", "quantity": "1", "unit_price": "100.00",
                       "amount": "100.00", "tax_rate": "0"}]}
    sandbox.faults.lose_response("/api/v1/invoices", method="POST")
    headers = {**AUTH, "Idempotency-Key": "lost-1"}
    with httpx.Client(base_url=server.base_url) as client:
        # when: the connection closes before any byte of the answer
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/api/v1/invoices", json=body, headers=headers)
        # then: the invoice exists, and the same key replays it
        replay = client.post("/api/v1/invoices", json=body, headers=headers)
    assert sandbox.invoice_count == 1
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")


def test_connector_survives_a_lost_response_on_a_real_socket(sandbox: GenericSandbox,
                                                             server: RunningServer) -> None:
    connector = connector_for(server)
    invoice = make_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(CUSTOMER, keys)
    sandbox.faults.lose_response("/api/v1/invoices", method="POST")
    remote = connector.create_invoice(invoice, customer, keys)
    assert remote.total == invoice.total
    assert sandbox.invoice_count == 1


def test_concurrent_clients_each_get_their_own_invoice(sandbox: GenericSandbox,
                                                       server: RunningServer) -> None:
    connector = connector_for(server)
    customer = connector.ensure_customer(CUSTOMER, keys_for(make_invoice()))
    invoices = [make_invoice(job_id=f"JOB-{n:05d}") for n in range(40)]
    with ThreadPoolExecutor(8) as pool:
        remotes = list(pool.map(
            lambda inv: connector.create_invoice(inv, customer, keys_for(inv)), invoices))
    assert len({r.id for r in remotes}) == sandbox.invoice_count == 40


def test_stop_is_fast_and_releases_the_port(sandbox: GenericSandbox) -> None:
    running = serve_in_thread(asgi_app(sandbox))
    with httpx.Client(base_url=running.base_url, headers=AUTH) as client:  # stays kept alive
        assert client.get("/api/v1/account").status_code == 200
        started = time.monotonic()
        running.stop()
        assert time.monotonic() - started < 1.0
    address = (running.host, running.port)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(address, 0.5):
        pass
