"""POST /v1/events: per-tenant bearer keys, duplicates, and bad input named field by field."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from autoinvoice.store.models import EventRow, InvoiceRow
from tests.helpers import completed, dumps, read_example


@pytest.fixture
def client(api):
    return api


AUTH = {"Authorization": "Bearer nw-key-123"}


def _count(harness, model) -> int:
    with harness.app.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_event_is_accepted_then_a_repeat_is_answered_duplicate(client, harness):
    first = client.post("/v1/events", content=dumps(completed("WO-A1")), headers=AUTH)
    again = client.post("/v1/events", content=dumps(completed("WO-A1")), headers=AUTH)
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert _count(harness, EventRow) == 1


def test_invalid_event_is_422_naming_every_bad_field_and_stores_nothing(client, harness):
    event = completed("WO-A2")
    event["job"]["customer"]["email"] = "nope"
    event["job"]["parts"][0]["quantity"] = 0
    del event["occurred_at"]
    response = client.post("/v1/events", content=dumps(event), headers=AUTH)
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert any(p.startswith("job.customer.email:") for p in problems)
    assert any(p.startswith("job.parts[0].quantity:") for p in problems)
    assert any(p.startswith("occurred_at:") for p in problems)
    assert "Traceback" not in response.text
    assert _count(harness, EventRow) == 0
    assert _count(harness, InvoiceRow) == 0


def test_body_that_is_not_json_is_422(client):
    response = client.post("/v1/events", content=b"{not json", headers=AUTH)
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["problems"][0]


def test_missing_or_wrong_api_key_is_401(client):
    assert client.post("/v1/events", content=dumps(completed())).status_code == 401
    wrong = {"Authorization": "Bearer guess"}
    assert client.post("/v1/events", content=dumps(completed()), headers=wrong).status_code == 401


def test_a_key_only_posts_for_its_own_tenant(client, harness):
    other = {"Authorization": "Bearer mail-key-456"}
    response = client.post("/v1/events", content=dumps(completed()), headers=other)
    assert response.status_code == 403
    assert _count(harness, EventRow) == 0


def test_shared_signed_example_is_accepted_as_it_is(client, harness, shared_dir, monkeypatch):
    text = read_example(shared_dir, "job-signed.json").replace(
        '"kompressor-service-de"', '"northwind"')
    response = client.post("/v1/events", content=text, headers=AUTH)
    assert response.status_code == 202


def test_invoice_views_are_per_tenant(client, harness):
    client.post("/v1/events", content=dumps(completed("WO-A3")), headers=AUTH)
    listed = client.get("/v1/invoices", headers=AUTH).json()
    assert [r["job_id"] for r in listed] == ["WO-A3"]
    assert client.get("/v1/invoices/WO-A3", headers=AUTH).json()["state"] == "pending_triggers"
    other = {"Authorization": "Bearer mail-key-456"}
    assert client.get("/v1/invoices/WO-A3", headers=other).status_code == 404
