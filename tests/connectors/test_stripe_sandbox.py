"""The local Stripe stand-in behaves like Stripe where our connector depends on it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe as stripe_sdk
import uvicorn

from autoinvoice.sandbox.faults import ResponseLost
from autoinvoice.sandbox.stripe import (
    StripeSandbox,
    asgi_app,
    decode_form,
    mock_transport,
    parse_query,
    stripe_signature,
)

KEY = "sk_test_sandbox"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(clock: Clock) -> StripeSandbox:
    return StripeSandbox(clock=clock)


@pytest.fixture
def api(sandbox: StripeSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://api.stripe.test", headers=AUTH,
                      transport=mock_transport(sandbox)) as client:
        yield client


def post(api: httpx.Client, path: str, data: dict[str, Any] | None = None,
         key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(path, data=data or {}, headers=headers)


def draft(api: httpx.Client, *amounts: int, percentage: str = "10") -> dict[str, Any]:
    customer = post(api, "/v1/customers", {"name": "Acme", "metadata[our_id]": "C1"}).json()
    rate = post(api, "/v1/tax_rates", {"display_name": "Tax", "percentage": percentage,
                                       "inclusive": "false"}).json()
    invoice = post(api, "/v1/invoices", {"customer": customer["id"], "days_until_due": 30,
                                         "collection_method": "send_invoice",
                                         "metadata[job_id]": "J1"}).json()
    for amount in amounts:
        post(api, "/v1/invoiceitems", {"customer": customer["id"], "invoice": invoice["id"],
                                       "amount": amount, "tax_rates[0]": rate["id"]})
    return dict(api.get(f"/v1/invoices/{invoice['id']}").json())


# ---------------------------------------------------------------------------------------------
# Idempotency


def test_same_key_same_params_replays_the_stored_response(api, sandbox) -> None:
    first = post(api, "/v1/customers", {"name": "Acme"}, key="k-1")
    again = post(api, "/v1/customers", {"name": "Acme"}, key="k-1")
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    assert again.headers["Request-Id"] != first.headers["Request-Id"]
    assert sandbox.count("customer") == 1


def test_same_key_other_params_is_an_idempotency_error(api) -> None:
    post(api, "/v1/customers", {"name": "Acme"}, key="k-1")
    clash = post(api, "/v1/customers", {"name": "Other"}, key="k-1")
    other_endpoint = post(api, "/v1/tax_rates", {"display_name": "T", "percentage": 1,
                                                 "inclusive": "false"}, key="k-1")
    assert clash.status_code == 400
    assert clash.json()["error"]["type"] == "idempotency_error"
    assert other_endpoint.json()["error"]["type"] == "idempotency_error"


def test_keys_are_forgotten_after_24_hours(api, sandbox, clock) -> None:
    post(api, "/v1/customers", {"name": "Acme"}, key="k-1")
    clock.now += 24 * 3600 - 1
    assert "Idempotent-Replayed" in post(api, "/v1/customers", {"name": "Acme"}, "k-1").headers
    clock.now += 1
    fresh = post(api, "/v1/customers", {"name": "Acme"}, key="k-1")
    assert "Idempotent-Replayed" not in fresh.headers
    assert sandbox.count("customer") == 2


def test_validation_errors_are_not_saved_under_the_key(api, sandbox) -> None:
    assert post(api, "/v1/customers", {"nam": "typo"}, key="k-2").status_code == 400
    assert post(api, "/v1/customers", {"name": "Acme"}, key="k-3").status_code == 200
    assert post(api, "/v1/customers", {"nam": "typo"}, key="k-2").status_code == 400
    assert sandbox.count("customer") == 1


def test_a_lost_response_was_processed_and_its_retry_replays(sandbox) -> None:
    sandbox.faults.lose_response("/v1/customers")
    args = ("POST", "/v1/customers", "", {**AUTH, "Idempotency-Key": "k"}, b"name=Acme")
    with pytest.raises(ResponseLost):
        sandbox.handle(*args)
    status, headers, _ = sandbox.handle(*args)
    assert status == 200
    assert headers["Idempotent-Replayed"] == "true"
    assert sandbox.count("customer") == 1


# ---------------------------------------------------------------------------------------------
# Shapes, errors, auth


def test_every_response_has_a_request_id_and_stripe_error_bodies(api, sandbox) -> None:
    sandbox.faults.inject("/v1/tax_rates", status=429, retry_after=3, method="GET")
    responses = [api.get("/v1/balance"), api.get("/v1/invoices/in_nope"), api.get("/v1/nope"),
                 api.get("/v1/tax_rates"), api.get("/v1/balance", headers={"Authorization": ""})]
    assert [r.status_code for r in responses] == [200, 404, 404, 429, 401]
    assert all(r.headers["Request-Id"].startswith("req_") for r in responses)
    assert responses[1].json()["error"]["code"] == "resource_missing"
    assert responses[3].headers["Retry-After"] == "3"
    assert "did not provide an API key" in responses[4].json()["error"]["message"]


def test_a_wrong_key_is_401_and_masked_in_the_message(api) -> None:
    response = api.get("/v1/balance", headers={"Authorization": "Bearer sk_test_wrong0123456789"})
    assert response.status_code == 401
    assert "sk_test_wrong0123456789" not in response.text
    assert response.json()["error"]["message"].endswith("6789")


def test_basic_auth_with_the_key_as_user_is_accepted(sandbox) -> None:
    with httpx.Client(transport=mock_transport(sandbox), auth=(KEY, "")) as client:
        assert client.get("https://api.stripe.test/v1/balance").status_code == 200


def test_unknown_parameters_are_rejected_like_stripe(api) -> None:
    error = post(api, "/v1/customers", {"name": "A", "po_number": "1"}).json()["error"]
    assert error["message"] == "Received unknown parameter: po_number"
    assert error["param"] == "po_number"


def test_objects_have_the_fixture_shapes(api, sandbox, shared_dir: Path) -> None:
    fixtures = json.loads((shared_dir / "vendor-specs" / "stripe" /
                           "fixtures3.2023-09-12.json").read_text())["resources"]
    invoice = draft(api, 1000)
    item = api.get(f"/v1/invoiceitems/{invoice['lines']['data'][0]['invoice_item']}").json()
    ours = {"invoice": invoice, "line_item": invoice["lines"]["data"][0], "invoiceitem": item,
            "customer": api.get(f"/v1/customers/{invoice['customer']}").json(),
            "tax_rate": item["tax_rates"][0], "balance": api.get("/v1/balance").json()}
    for name, obj in ours.items():
        assert set(obj) == set(fixtures[name]), name


# ---------------------------------------------------------------------------------------------
# Totals, lifecycle, search


@pytest.mark.parametrize(("amounts", "tax"), [
    ((5,), 1), ((15,), 2), ((4,), 0), ((-15,), -2), ((5, 5), 2), ((10_000, 333), 1_033),
])
def test_tax_is_rounded_half_up_per_line(api, amounts, tax) -> None:
    invoice = draft(api, *amounts)
    assert invoice["tax"] == tax
    assert invoice["total"] == sum(amounts) + tax
    assert invoice["amount_remaining"] == invoice["total"]


def test_fractional_percentages(api) -> None:
    invoice = draft(api, 21_240, 15_585, percentage="8.5")  # 1805.4 -> 1805; 1324.725 -> 1325
    assert invoice["tax"] == 1805 + 1325


def test_lifecycle_finalize_send_pay_void(api, sandbox) -> None:
    invoice = draft(api, 1000)
    path = f"/v1/invoices/{invoice['id']}"
    assert post(api, f"{path}/send").status_code == 400  # a draft cannot be sent
    opened = post(api, f"{path}/finalize").json()
    assert opened["status"] == "open"
    assert opened["number"].endswith("-0001")
    assert opened["hosted_invoice_url"].startswith("https://invoice.stripe.com/")
    assert post(api, f"{path}/finalize").status_code == 400
    assert post(api, "/v1/invoiceitems", {"customer": invoice["customer"],
                                          "invoice": invoice["id"], "amount": 1}).status_code == 400
    assert post(api, f"{path}/send").json()["status"] == "open"
    assert post(api, f"{path}/pay").status_code == 402
    paid = post(api, f"{path}/pay", {"paid_out_of_band": "true"}).json()
    assert (paid["status"], paid["amount_paid"], paid["amount_remaining"]) == ("paid", 1100, 0)
    assert paid["status_transitions"]["paid_at"] is not None
    assert post(api, f"{path}/void").status_code == 400
    second = draft(api, 500)
    assert post(api, f"/v1/invoices/{second['id']}/finalize").json()["number"].endswith("-0001")


def test_record_payment_partial_then_full(api, sandbox) -> None:
    invoice = draft(api, 1000)
    post(api, f"/v1/invoices/{invoice['id']}/finalize")
    partial = sandbox.record_payment(invoice["id"], 600)
    assert (partial["status"], partial["amount_remaining"]) == ("open", 500)
    full = sandbox.record_payment(invoice["id"], 500)
    assert (full["status"], full["amount_paid"], full["paid"]) == ("paid", 1100, True)
    assert [e["type"] for e in sandbox.events] == [
        "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]


def test_void_an_open_invoice(api, sandbox) -> None:
    invoice = draft(api, 1000)
    post(api, f"/v1/invoices/{invoice['id']}/finalize")
    assert post(api, f"/v1/invoices/{invoice['id']}/void").json()["status"] == "void"
    assert sandbox.events[-1]["type"] == "invoice.voided"


def test_search_by_metadata_with_and_or_negation_and_escapes(api) -> None:
    customer = post(api, "/v1/customers", {"name": "A"}).json()["id"]
    for job, rev in (("J'1", "1"), ("J'1", "2"), ("J2", "1")):
        post(api, "/v1/invoices", {"customer": customer, "metadata[job_id]": job,
                                   "metadata[revision]": rev})

    def search(query: str) -> list[tuple[str, str]]:
        data = api.get("/v1/invoices/search", params={"query": query}).json()["data"]
        return [(i["metadata"]["job_id"], i["metadata"]["revision"]) for i in data]

    assert search("metadata['job_id']:'J\\'1' AND metadata['revision']:'2'") == [("J'1", "2")]
    assert search('metadata["job_id"]:"J2" OR metadata["revision"]:"2"') == [
        ("J2", "1"), ("J'1", "2")]  # newest first
    assert search("metadata['job_id']:'J\\'1' -metadata['revision']:'1'") == [("J'1", "2")]
    assert search("status:'draft' total>=0") == [("J2", "1"), ("J'1", "2"), ("J'1", "1")]
    bad = api.get("/v1/invoices/search", params={"query": "a:'1' AND b:'2' OR c:'3'"})
    assert bad.status_code == 400


def test_find_invoices_by_metadata_returns_copies(api, sandbox) -> None:
    invoice = draft(api, 1000)
    found = sandbox.find_invoices(job_id="J1")
    assert [i["id"] for i in found] == [invoice["id"]]
    assert sandbox.find_invoices(job_id="J1", revision="2") == []
    found[0]["status"] = "tampered"
    assert sandbox.get_invoice(invoice["id"])["status"] == "draft"


def test_lists_filter_and_paginate(api) -> None:
    for n in range(3):
        post(api, "/v1/tax_rates", {"display_name": "T", "percentage": n, "inclusive": "false"})
    first = api.get("/v1/tax_rates", params={"limit": 2, "active": "true"}).json()
    rest = api.get("/v1/tax_rates", params={"limit": 2,
                                            "starting_after": first["data"][-1]["id"]}).json()
    assert [r["percentage"] for r in first["data"] + rest["data"]] == [2, 1, 0]
    assert (first["has_more"], rest["has_more"]) == (True, False)


def test_form_decoding_and_query_parsing() -> None:
    assert decode_form("a[b][0][c]=1&a[b][1][c]=2&t[]=x&t[]=y&e=") == {
        "a": {"b": [{"c": "1"}, {"c": "2"}]}, "t": ["x", "y"], "e": ""}
    clauses, any_of = parse_query("metadata['k']:'v\\'x' AND email:\"a@b\"")
    assert [(c.field, c.value) for c in clauses] == [("metadata.k", "v'x"), ("email", "a@b")]
    assert any_of is False


# ---------------------------------------------------------------------------------------------
# Webhooks


def test_webhooks_are_signed_and_verifiable_with_stripes_sdk(clock) -> None:
    received: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200 if len(received) > 1 else 500)

    sandbox = StripeSandbox(webhook_url="https://hooks.test/stripe", webhook_secret="whsec_x")
    with httpx.Client(base_url="https://api.stripe.test", headers=AUTH,
                      transport=mock_transport(sandbox)) as api:
        invoice = draft(api, 1000)
        post(api, f"/v1/invoices/{invoice['id']}/finalize", key="fin-1")
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as hooks:
        assert sandbox.deliver_webhooks(hooks) == 0  # the endpoint failed: kept for later
        assert sandbox.deliver_webhooks(hooks) == 1
    event = stripe_sdk.Webhook.construct_event(
        received[-1].content, received[-1].headers["Stripe-Signature"], "whsec_x")
    assert event["type"] == "invoice.finalized"
    assert event["data"]["object"]["id"] == invoice["id"]
    assert event["request"]["idempotency_key"] == "fin-1"


def test_background_delivery_posts_events_as_they_happen() -> None:
    delivered = threading.Event()
    types: list[str] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        types.append(json.loads(request.content)["type"])
        delivered.set()
        return httpx.Response(204)

    sandbox = StripeSandbox(webhook_url="https://hooks.test/stripe", webhook_secret="whsec_x")
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as hooks:
        sandbox.start_webhook_delivery(interval=0.01, client=hooks)
        try:
            with httpx.Client(base_url="https://api.stripe.test", headers=AUTH,
                              transport=mock_transport(sandbox)) as api:
                post(api, f"/v1/invoices/{draft(api, 1000)['id']}/finalize")
            assert delivered.wait(5)
        finally:
            sandbox.stop_webhook_delivery()
    assert types == ["invoice.finalized"]


def test_signature_format() -> None:
    assert stripe_signature(b"{}", "whsec_x", 1700000000).startswith("t=1700000000,v1=")


# ---------------------------------------------------------------------------------------------
# Served by uvicorn


@pytest.fixture(params=["httptools", "h11"])
def served(request: pytest.FixtureRequest, sandbox: StripeSandbox) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(asgi_app(sandbox), http=request.param, ws="none",
                            log_level="critical", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"uvicorn with http={request.param} did not start")
        thread.join(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(5)
    sock.close()


def test_asgi_app_serves_and_drops_a_lost_response_without_answering(served, sandbox) -> None:
    with httpx.Client(base_url=served, headers=AUTH) as client:
        assert client.get("/v1/balance").json()["object"] == "balance"
        sandbox.faults.lose_response("/v1/customers")
        with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
            client.post("/v1/customers", data={"name": "Acme"})
        assert sandbox.count("customer") == 1
        assert client.post("/v1/customers", data={"name": "B"}).status_code == 200
