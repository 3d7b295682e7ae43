"""The contract every platform connector implements.

A connector knows one platform and nothing of the database or the pipeline. It speaks the
platform's documented API through ``connectors.http.HttpClient`` (never httpx directly), maps
the vendor's errors into ``connectors.errors`` in one function, and takes frozen dataclasses in
and out. Only the pipeline calls connectors.

Idempotency: the pipeline hands every mutating call an ``IdempotencyKeys`` derived from
(tenant, job, revision). ``keys.for_step("create")`` is deterministic, so a retry after a crash
or a lost response sends the same key and the platform replays instead of creating twice.
Platforms without keys rely on ``find_by_reference``, which the pipeline calls before any
retried create.

Corrections: a sent invoice is never edited. ``credit_invoice`` issues a credit note for its
full amount (our credit note document carries its own number from the credit-note series);
an invoice created but not yet delivered is cancelled with ``void_invoice``. Both are safe to
repeat: a credit note already issued for the same document is found and returned, and voiding
an invoice that is already void (or a deleted draft) is not an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from autoinvoice.connectors.errors import AuthError, PermanentError
from autoinvoice.connectors.timer import SYSTEM_TIMER, Timer
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.job import Customer
from autoinvoice.domain.money import Money


@dataclass(frozen=True, slots=True)
class IdempotencyKeys:
    """Deterministic per-step keys for one invoice revision."""

    base: str

    @classmethod
    def derive(cls, tenant: str, job_id: str, revision: int, kind: str = "invoice"
               ) -> IdempotencyKeys:
        """Keys of one document: an invoice revision, or the credit note that credits it."""
        seed = f"{tenant}\x1f{job_id}\x1f{revision}"
        if kind != "invoice":  # invoices keep the keys they always had
            seed += f"\x1f{kind}"
        digest = hashlib.sha256(seed.encode()).hexdigest()
        return cls(f"ai-{digest[:32]}")

    def for_step(self, step: str) -> str:
        return f"{self.base}-{step}"


@dataclass(frozen=True, slots=True)
class RemoteCustomer:
    id: str


@dataclass(frozen=True, slots=True)
class RemoteInvoice:
    id: str
    total: Money
    status: str
    number: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteCreditNote:
    """A credit note as the platform issued it; ``number`` is the platform's own, if any."""

    id: str
    total: Money
    number: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    status: str
    total: Money
    amount_paid: Money
    balance: Money
    paid_at: datetime | None = None


class Connector(Protocol):
    platform: str
    #: True when the platform e-mails the invoice itself; otherwise the pipeline delivers
    #: our own PDF by SMTP after ``send_invoice`` has done any platform-side step.
    delivers_itself: bool

    def check_auth(self) -> None: ...

    def ensure_customer(self, customer: Customer, keys: IdempotencyKeys) -> RemoteCustomer:
        """Find the customer by our id (or e-mail) on the platform, creating it if missing."""
        ...

    def create_invoice(
        self, invoice: Invoice, customer: RemoteCustomer, keys: IdempotencyKeys
    ) -> RemoteInvoice:
        """Create the invoice with all its lines; return the platform's view of its total."""
        ...

    def send_invoice(self, remote: RemoteInvoice, keys: IdempotencyKeys) -> RemoteInvoice:
        """Any prerequisite (finalize, authorise, post) and the platform's own send."""
        ...

    def fetch_status(self, remote_id: str) -> RemoteStatus: ...

    def find_by_reference(self, invoice: Invoice) -> RemoteInvoice | None:
        """The invoice we created earlier for this job and revision, if the platform has it."""
        ...

    def void_invoice(self, remote_id: str, keys: IdempotencyKeys) -> str:
        """Cancel an invoice that was created but must not be delivered (a draft is deleted
        where the platform deletes drafts, a finalized one voided). Returns what was done:
        ``"voided"``, ``"deleted"`` or ``"already_void"``. Raises ``PermanentError`` when the
        invoice can no longer be voided (it was paid): it must be credited instead."""
        ...

    def credit_invoice(self, remote_id: str, credit: Invoice, keys: IdempotencyKeys
                       ) -> RemoteCreditNote:
        """Issue a credit note for the full amount of the delivered invoice ``remote_id``.
        ``credit`` is our credit note (kind CREDIT_NOTE, its own number, ``corrects`` = the
        credited invoice's number, the credited lines). A credit note already issued for this
        document is found and returned instead of a second one."""
        ...


class Secret(Protocol):
    def reveal(self) -> str: ...


class TokenSource(Protocol):
    """OAuth2 access for one tenant on one platform (``connectors.oauth`` keeps the tokens,
    encrypted, refreshes them before expiry and one refresh at a time; tests may use
    ``StaticTokens``). A connector asks for a token per request and, when the platform
    answers 401, calls ``refreshed`` once with the token that was refused before it retries."""

    def access_token(self) -> str:
        """A token valid for at least the next minute (refreshed first when it is not)."""
        ...

    def refreshed(self, rejected: str) -> str:
        """A new token after ``rejected`` was refused (another worker may already have
        refreshed: then its token is returned). Raises ``AuthError`` when the connection must
        be made again (``autoinvoice connect``)."""
        ...

    def value(self, name: str) -> str | None:
        """A value learned when the tenant connected: ``realm_id`` (QuickBooks),
        ``tenant_id`` (Xero), ``organization_id`` (Zoho), ``account_id`` (FreshBooks),
        ``company_id`` (Business Central), ``business_id`` (Sage), ``company_file_uri``
        (MYOB)."""
        ...


@dataclass
class StaticTokens:
    """A fixed token (tests, stand-ins, ``preview``): a refusal cannot be repaired."""

    token: str
    values: Mapping[str, str] = field(default_factory=dict)

    def access_token(self) -> str:
        return self.token

    def refreshed(self, rejected: str) -> str:
        raise AuthError("the access token was refused and there is no refresh token")

    def value(self, name: str) -> str | None:
        return self.values.get(name)


@dataclass(frozen=True)
class ConnectorSettings:
    """What a connector is built from: the tenant's platform section of the config.

    ``transport`` (an ``httpx.BaseTransport``) and ``recorder`` exist for tests and for
    ``autoinvoice preview``; in production both are None and real HTTP is used.
    """

    tenant: str
    currency: str
    base_url: str | None = None
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    transport: Any = None
    recorder: Callable[[RecordedRequest], None] | None = None
    #: where rate limits read the time and every wait sleeps (tests: a virtual timer)
    timer: Timer = SYSTEM_TIMER
    #: overrides the platform's documented limit (e.g. a stand-in, or a plan with a higher one)
    rate_limit_per_second: float | None = None
    #: OAuth2 platforms: where the access token comes from (None: API-key platforms)
    tokens: TokenSource | None = None
    #: the platform section's other keys a connector reads (Business Central's
    #: ``entra_tenant``, ``environment``, ``tax_groups``, ``tax_areas``; Sage's ``tax_rates``;
    #: Xero's ``tax_types``)
    options: Mapping[str, Any] = field(default_factory=dict)

    def secret(self, name: str) -> str:
        try:
            return self.credentials[name].reveal()
        except KeyError:
            raise AuthError(f"credential {name!r} is not configured") from None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One outgoing request as ``preview`` shows it: secrets already masked."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: str


def paid_on(value: Any, *, platform: str, field: str) -> datetime | None:
    """A platform's payment date (``YYYY-MM-DD``, perhaps with a time) as midnight UTC of that
    day; None when absent; a ``PermanentError`` naming the field when it is not a date."""
    if not value:
        return None
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        raise PermanentError(f"{platform} sent an invalid {field}: {value!r}",
                             platform=platform) from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
