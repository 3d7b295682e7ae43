"""One contract suite, run against every connector that has a local stand-in (issue 4).

The platforms come from the registries (``CONNECTORS`` entries with a connector that also
have a ``STANDINS`` entry), so a new connector joins automatically; ``PLATFORMS`` below holds
only what genuinely differs per platform: the method and path of the invoice create call
(where the faults are injected), how the stand-in counts its invoices, and the status the
platform answers a rejected create with.

Every test builds a realistic invoice with the billing engine from the shared-example-shaped
event (``tests.helpers.completed``) and the demo config's tenant ``northwind``, rounded as the
platform rounds tax, numbered ``NW-2026-00001``, in USD.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, load_config
from autoinvoice.connectors.base import (
    Connector,
    ConnectorSettings,
    IdempotencyKeys,
    RecordedRequest,
    RemoteInvoice,
)
from autoinvoice.connectors.errors import (
    AuthError,
    ConnectorError,
    PermanentError,
    TransientError,
)
from autoinvoice.connectors.http import MASK, clear_limiters
from autoinvoice.connectors.registry import CONNECTORS, TAX_ROUNDING, build_connector
from autoinvoice.domain.invoice import Invoice, TaxCategory
from autoinvoice.sandbox.registry import (
    STANDINS,
    make_standin,
    standin_options,
    standin_tokens,
    standin_transport,
)
from autoinvoice.triggers.events import decode_json, parse_event
from tests.helpers import VirtualTimer, completed, dumps

API_KEY = "sk_test_contract_0123456789abcdefXYZ"
CLIENT_SECRET = "contract-client-secret-9f8e7d6c5b4a"
NUMBER = "NW-2026-00001"


# ---------------------------------------------------------------------------------------------
# What differs per platform


@dataclass(frozen=True)
class Platform:
    create_method: str
    #: the path prefix of the invoice create call (ids in the path come from the core)
    create_prefix: Callable[[Any], str]
    #: how many invoices the stand-in holds, by its own helpers
    invoices: Callable[[Any], int]
    #: the create carries an idempotency key the platform replays (Stripe, QuickBooks
    #: ``requestid``, Xero, Sage ``idempotency_id``, the sandbox): the connector itself
    #: repeats it after a lost response or a 5xx; the others leave it to the pipeline's
    #: ``find_by_reference``
    replays: bool
    #: the status the platform rejects an invalid create with (its validation status)
    reject_status: int = 400
    #: what a 409 on the create ends in: "created" (a conflict is retried, by the HTTP layer
    #: when the request is replay-safe or by the pipeline after ``find_by_reference``) or
    #: "rejected" (mapped to a ``PermanentError``: a POST without an idempotency key is not
    #: blindly repeated)
    conflict_ends: str = "created"


def _bc_invoices(core: Any) -> str:
    return (f"/v2.0/{core.tenant_id}/production/api/v2.0/companies({core.company_id})"
            "/salesInvoices")


PLATFORMS: dict[str, Platform] = {
    "sandbox": Platform("POST", lambda core: "/api/v1/invoices",
                        lambda core: core.invoice_count, replays=True),
    "stripe": Platform("POST", lambda core: "/v1/invoices",
                       lambda core: core.count("invoice"), replays=True),
    "quickbooks": Platform("POST", lambda core: f"/v3/company/{core.realm_id}/invoice",
                           lambda core: core.count("Invoice"), replays=True),
    "xero": Platform("PUT", lambda core: "/api.xro/2.0/Invoices",
                     lambda core: len(core.find_invoices()), replays=True),
    "freshbooks": Platform(
        "POST", lambda core: f"/accounting/account/{core.account_id}/invoices/invoices",
        lambda core: core.count("invoice"), replays=False, reject_status=422,
        conflict_ends="rejected"),
    "zoho_books": Platform("POST", lambda core: "/books/v3/invoices",
                           lambda core: core.count("invoices"), replays=False,
                           conflict_ends="rejected"),
    "business_central": Platform("POST", _bc_invoices,
                                 lambda core: core.count("salesInvoices"), replays=False),
    "sage": Platform("POST", lambda core: "/v3.1/sales_invoices",
                     lambda core: len(core.invoices()), replays=True, reject_status=422),
    "myob": Platform(
        "POST", lambda core: f"/accountright/{core.company_file_id}/Sale/Invoice/Service",
        lambda core: len(core.invoices()), replays=False,
        conflict_ends="rejected"),
}

COVERED = sorted(p for p, target in CONNECTORS.items() if target is not None and p in STANDINS)


def test_every_platform_with_a_connector_and_a_stand_in_is_described() -> None:
    assert set(COVERED) <= set(PLATFORMS), "add the new platform to PLATFORMS"


# ---------------------------------------------------------------------------------------------
# Builders


class Plain:
    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value


class RecordingTokens:
    """A TokenSource over the stand-in's own authorization server: ``refreshed`` is recorded
    and hands out a freshly issued token."""

    def __init__(self, core: Any) -> None:
        learned = standin_tokens(core, "US")  # northwind's business / company
        assert learned is not None
        self.core, self.values = core, dict(learned.values)
        self.issued: list[str] = [learned.token]
        self.refreshes: list[str] = []

    def access_token(self) -> str:
        return self.issued[-1]

    def refreshed(self, rejected: str) -> str:
        self.refreshes.append(rejected)
        if rejected == self.issued[-1]:
            self.issued.append(self.core.oauth.issue()["access_token"])
        return self.issued[-1]

    def value(self, name: str) -> str | None:
        return self.values.get(name)


@dataclass
class Rig:
    """One platform's connector wired to a fresh stand-in core."""

    platform: str
    spec: Platform
    core: Any
    connector: Connector
    tokens: RecordingTokens | None
    credentials: dict[str, str]
    sleeps: VirtualTimer = field(default_factory=VirtualTimer)
    records: list[RecordedRequest] = field(default_factory=list)
    #: creates that failed transiently and were taken over by the pipeline's path
    pipeline_recoveries: int = 0

    @property
    def oauth(self) -> bool:
        return self.tokens is not None

    @property
    def prefix(self) -> str:
        return self.spec.create_prefix(self.core)

    def inject(self, status: int, retry_after: float | None = None) -> None:
        self.core.faults.inject(self.prefix, status, retry_after=retry_after,
                                method=self.spec.create_method)

    def invoices(self) -> int:
        return self.spec.invoices(self.core)

    def create_calls(self) -> list[RecordedRequest]:
        return [r for r in self.records if r.method == self.spec.create_method
                and urlsplit(r.url).path.startswith(self.prefix)]

    def secrets(self) -> list[str]:
        return [*self.credentials.values(), *(self.tokens.issued if self.tokens else [])]


def realistic_invoice(platform: str) -> Invoice:
    """The shared example's emergency repair, billed by the demo tenant ``northwind``."""
    config = load_config(None)
    rules = billing_rules(config.tenant("northwind"))
    event = parse_event(decode_json(dumps(completed()), "contract"), "contract")
    built = build_invoice(event.job.domain(), rules, tenant="northwind", revision=1,
                          issue_date=date(2026, 11, 21))
    invoice = built.invoice.with_number(NUMBER)
    rounding = TAX_ROUNDING.get(platform, invoice.tax_rounding)
    if platform == "myob":  # its stand-in is an Australian company file: GST codes only
        invoice = with_australian_gst(invoice)
    return dataclasses.replace(invoice, tax_rounding=rounding)


def with_australian_gst(invoice: Invoice) -> Invoice:
    """The same job as an Australian service company bills it: every line at GST 10 %."""
    gst = Decimal("0.1")
    return dataclasses.replace(invoice, lines=tuple(
        dataclasses.replace(line, tax_rate=gst, tax=line.amount.times(gst),
                            tax_category=TaxCategory.STANDARD) for line in invoice.lines))


def keys_for(invoice: Invoice) -> IdempotencyKeys:
    return IdempotencyKeys.derive(invoice.tenant, invoice.job_id, invoice.revision)


def create(rig: Rig, invoice: Invoice) -> RemoteInvoice:
    keys = keys_for(invoice)
    customer = rig.connector.ensure_customer(invoice.customer, keys)
    return rig.connector.create_invoice(invoice, customer, keys)


def pipeline_create(rig: Rig, invoice: Invoice) -> RemoteInvoice:
    """What the pipeline does: a create that failed transiently is looked up by reference
    before it is tried again."""
    keys = keys_for(invoice)
    customer = rig.connector.ensure_customer(invoice.customer, keys)
    try:
        return rig.connector.create_invoice(invoice, customer, keys)
    except TransientError:
        rig.pipeline_recoveries += 1
        found = rig.connector.find_by_reference(invoice)
        return found or rig.connector.create_invoice(invoice, customer, keys)


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture(params=COVERED)
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    platform: str = request.param
    if platform not in PLATFORMS:
        pytest.fail(f"{platform}: add its create method, path and invoice count to PLATFORMS")
    probe = make_standin(platform)
    if getattr(probe, "oauth", None) is None:  # API-key platform
        core, tokens = make_standin(platform, api_key=API_KEY), None
        credentials = {"api_key": API_KEY}
    else:  # OAuth2: the app's client id (MYOB sends it as its API key) and secret
        core, tokens = probe, RecordingTokens(probe)
        credentials = {"client_id": probe.oauth.client_id, "client_secret": CLIENT_SECRET}
    sleeps, records = VirtualTimer(), list[RecordedRequest]()
    settings = ConnectorSettings(
        tenant="northwind", currency="USD",
        credentials={k: Plain(v) for k, v in credentials.items()},
        transport=standin_transport(platform, core), recorder=records.append,
        timer=sleeps, rate_limit_per_second=1000.0, tokens=tokens,
        options=standin_options(core, "US"))
    connector = build_connector(platform, settings)
    yield Rig(platform, PLATFORMS[platform], core, connector, tokens, credentials, sleeps,
              records)
    close = getattr(connector, "close", None)
    if close is not None:
        close()


@pytest.fixture
def invoice(rig: Rig) -> Invoice:
    return realistic_invoice(rig.platform)


# ---------------------------------------------------------------------------------------------
# The contract


def test_find_by_reference_finds_what_create_made(rig: Rig, invoice: Invoice) -> None:
    # when
    remote = create(rig, invoice)
    found = rig.connector.find_by_reference(invoice)
    # then
    assert found is not None
    assert found.id == remote.id
    assert remote.total == invoice.total
    assert found.total == invoice.total


def test_a_repeated_create_with_the_same_keys_leaves_one_invoice(rig: Rig,
                                                                 invoice: Invoice) -> None:
    # when
    first = create(rig, invoice)
    second = create(rig, invoice)
    # then
    assert second.id == first.id
    assert rig.invoices() == 1


def test_a_lost_create_response_ends_with_one_invoice(rig: Rig, invoice: Invoice) -> None:
    # given: the platform creates the invoice, its answer never arrives
    rig.core.faults.lose_response(rig.prefix, method=rig.spec.create_method)
    # when
    remote = pipeline_create(rig, invoice)
    # then
    assert rig.invoices() == 1
    assert rig.pipeline_recoveries == (0 if rig.spec.replays else 1)
    found = rig.connector.find_by_reference(invoice)
    assert found is not None
    assert found.id == remote.id
    assert remote.total == invoice.total


def test_401_refreshes_once_on_oauth_platforms_and_is_an_auth_error_otherwise(
        rig: Rig, invoice: Invoice) -> None:
    # given
    rig.inject(401)
    if rig.tokens is None:
        # when / then: an API key cannot be refreshed
        with pytest.raises(AuthError) as caught:
            create(rig, invoice)
        assert caught.value.status == 401
        assert rig.invoices() == 0
        return
    refused = rig.tokens.access_token()
    # when
    remote = create(rig, invoice)
    # then
    assert rig.tokens.refreshes == [refused]
    assert rig.invoices() == 1
    assert remote.total == invoice.total
    assert len(rig.create_calls()) == 2  # refused, then sent again with the fresh token


def test_a_rejected_create_is_a_permanent_error_not_retried_without_secrets(
        rig: Rig, invoice: Invoice) -> None:
    # given
    rig.inject(rig.spec.reject_status)
    # when
    with pytest.raises(ConnectorError) as caught:
        create(rig, invoice)
    # then: not retried, the platform's message kept, nothing secret in it
    error = caught.value
    assert isinstance(error, PermanentError)
    assert not isinstance(error, TransientError | AuthError)
    assert error.status == rig.spec.reject_status
    assert error.message.strip()
    assert len(rig.create_calls()) == 1
    assert rig.invoices() == 0
    for secret in rig.secrets():
        assert secret not in str(error)
        assert secret not in repr(error.args)


def test_a_409_once_is_retried_or_rejected_as_the_platform_allows(rig: Rig,
                                                                   invoice: Invoice) -> None:
    # given
    rig.inject(409)
    if rig.spec.conflict_ends == "rejected":
        # when / then
        with pytest.raises(PermanentError) as caught:
            pipeline_create(rig, invoice)
        assert caught.value.status == 409
        assert caught.value.message.strip()
        assert len(rig.create_calls()) == 1
        assert rig.invoices() == 0
        return
    # when
    remote = pipeline_create(rig, invoice)
    # then
    assert remote.total == invoice.total
    assert rig.invoices() == 1
    assert len(rig.create_calls()) == 2


def test_429_waits_retry_after_and_succeeds(rig: Rig, invoice: Invoice) -> None:
    # given
    rig.inject(429, retry_after=1)
    # when
    remote = create(rig, invoice)
    # then
    assert 1.0 in rig.sleeps
    assert remote.total == invoice.total
    assert rig.invoices() == 1
    assert len(rig.create_calls()) == 2


def test_a_5xx_once_is_retried_and_succeeds(rig: Rig, invoice: Invoice) -> None:
    # given
    rig.inject(503)
    # when: retried by the connector when the create is replay-safe (an idempotency key),
    # else by the pipeline once ``find_by_reference`` found nothing
    remote = pipeline_create(rig, invoice)
    # then
    assert remote.total == invoice.total
    assert rig.invoices() == 1
    assert len(rig.create_calls()) == 2
    assert rig.pipeline_recoveries == (0 if rig.spec.replays else 1)


def test_no_secret_in_any_log_line_or_recorded_request(rig: Rig, invoice: Invoice,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    # given: logging at its most verbose, one refused token (OAuth) and one retry
    caplog.set_level(logging.DEBUG)
    if rig.oauth:
        rig.inject(401)
    rig.core.faults.inject(rig.prefix, 503, method=rig.spec.create_method)
    # when: the whole flow
    try:
        remote = pipeline_create(rig, invoice)
        rig.connector.find_by_reference(invoice)
        rig.connector.send_invoice(remote, keys_for(invoice))
        rig.connector.fetch_status(remote.id)
    finally:
        # then
        assert rig.records
        assert {r.headers.get("authorization") for r in rig.records} == {MASK}  # sent, masked
        secrets = rig.secrets()
        assert len(secrets) >= (2 if rig.oauth else 1)
        for secret in secrets:
            assert secret not in caplog.text
            for r in rig.records:
                assert secret not in r.url
                assert secret not in r.body
                assert all(secret not in v for v in r.headers.values())
