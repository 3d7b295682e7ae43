"""The shared HTTP layer every connector uses (connectors never call httpx directly).

``HttpClient.request`` is the one road to a platform. In order, for each attempt it

1. waits for the tenant's ``RateLimiter`` (a token bucket: limits are respected before sending,
   not discovered by 429 storms);
2. sends the request (same ``Idempotency-Key`` on every attempt), records it for
   ``preview``/tests with secrets masked, and logs one line: platform, method, path, status,
   elapsed ms and the platform's request id, never a secret;
3. asks ``_next_delay`` -- the only place that decides whether to retry -- and either returns
   the 2xx response, sleeps and tries again, or raises the connector's mapped error.

Retried: network failures (connect/read/write errors, timeouts, a lost response), 409, 429 and
5xx, with exponential backoff and full jitter, or exactly ``Retry-After`` when the platform
says so. A request that may have reached the platform (read error, lost response, 409, 5xx) is
only repeated when it is *replay-safe*: an idempotent method, or a POST carrying an idempotency
key, or ``replay_safe=True``. Otherwise a duplicate could be created, and the pipeline's
``find_by_reference`` must decide instead. A ``Retry-After`` longer than
``RetryPolicy.max_retry_after`` is not slept through: ``RateLimited`` is raised at once with
``retry_after`` so the pipeline reschedules the row instead of blocking a worker.

Final failures: a network failure raises ``TransientError``; an HTTP error status raises what
the connector's ``error_mapper`` returns (``RateLimited`` gets ``retry_after`` filled from the
response when the mapper left it empty; platform and request id are always filled in).
"""

from __future__ import annotations

import json as jsonlib
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, TypeAlias
from urllib.parse import urlencode

import httpx

from autoinvoice.connectors import journal
from autoinvoice.connectors.base import RecordedRequest, TokenSource
from autoinvoice.connectors.errors import (
    AuthError,
    ConnectorError,
    PermanentError,
    RateLimited,
    TransientError,
)
from autoinvoice.connectors.timer import SYSTEM_TIMER, Timer

log = logging.getLogger("autoinvoice.http")

FormPairs: TypeAlias = Sequence[tuple[str, str]]
Form: TypeAlias = FormPairs | Mapping[str, Any]
ErrorMapper: TypeAlias = Callable[[httpx.Response], ConnectorError]

MASK = "***"
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-api-token",
     "api-key", "x-auth-token", "x-myobapi-cftoken", "x-myobapi-key"}
)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({409, 429})
#: Failures after which the request certainly never reached the platform.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Failures where it may have been processed (the response was lost on the way back).
_MAYBE_SENT = (httpx.ReadError, httpx.WriteError, httpx.ReadTimeout, httpx.WriteTimeout,
               httpx.RemoteProtocolError, httpx.CloseError, httpx.ProxyError)
Outcome: TypeAlias = httpx.Response | httpx.TransportError
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


# ---------------------------------------------------------------------------------------------
# Retry policy and rate limiting


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` in total (first try included); backoff ``base_delay * 2**n`` capped at
    ``max_delay`` with full jitter; a ``Retry-After`` up to ``max_retry_after`` is slept
    exactly, a longer one is handed back to the caller as ``RateLimited.retry_after``."""

    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    jitter: bool = True
    max_retry_after: float = 60.0

    def backoff(self, failures: int, uniform: Callable[[float, float], float]) -> float:
        """The delay before the next attempt after ``failures`` failed ones (1-based)."""
        cap = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
        return uniform(0.0, cap) if self.jitter else cap


class RateLimiter:
    """A thread-safe token bucket: ``rate`` tokens per second, at most ``burst`` banked.

    ``acquire`` reserves a token under the lock and sleeps outside it, so concurrent callers
    queue up fairly, each waiting for its own slot (the bucket may go negative meanwhile).
    Time is read from and waited on the same ``timer``.
    """

    def __init__(self, rate: float, burst: int, *, timer: Timer = SYSTEM_TIMER) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = rate, burst  # requests per second (not money)
        self._timer = timer
        self._tokens = float(burst)
        self._stamp = timer.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping as long as needed; returns the seconds waited."""
        wait = self._reserve()
        if wait > 0:
            self._timer.sleep(wait)
        return wait

    def _reserve(self) -> float:
        with self._lock:
            now = self._timer.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


# Keyed by (key, timer): connectors share a bucket only when they also share the clock it is
# measured on (in production every one uses SYSTEM_TIMER; a test's own timer gets its own).
_limiters: dict[tuple[Hashable, Timer], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(key: Hashable, rate: float, burst: int, *,
                timer: Timer = SYSTEM_TIMER) -> RateLimiter:
    """The process-wide limiter for ``key`` (e.g. ``"tenant:platform"``), created on first use.

    Every connector instance of one tenant and platform shares it, so their sum stays under
    the platform's limit. (Per process: several worker processes each get their own bucket.)
    """
    with _limiters_lock:
        limiter = _limiters.get((key, timer))
        if limiter is None:
            limiter = _limiters[(key, timer)] = RateLimiter(rate, burst, timer=timer)
        return limiter


_slots: dict[Hashable, threading.BoundedSemaphore] = {}


def slots_for(key: Hashable, concurrent: int) -> threading.BoundedSemaphore:
    """The process-wide cap on requests in flight for ``key`` (e.g. Xero's 5 concurrent calls
    per organisation), shared by every connector instance of that tenant and platform."""
    with _limiters_lock:
        slots = _slots.get(key)
        if slots is None:
            slots = _slots[key] = threading.BoundedSemaphore(concurrent)
        return slots


def clear_limiters() -> None:
    """Forget every registered limiter and in-flight cap (tests)."""
    with _limiters_lock:
        _limiters.clear()
        _slots.clear()


# ---------------------------------------------------------------------------------------------
# Encoding helpers


def form_encode(nested: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten nested dicts and lists the way Stripe (and Rails/PHP) read form bodies.

    ``{"metadata": {"job_id": "J1"}, "tax_rates": ["txr_1"], "custom_fields": [{"name": "PO"}],
    "auto_advance": False}`` becomes ``metadata[job_id]=J1``, ``tax_rates[0]=txr_1``,
    ``custom_fields[0][name]=PO``, ``auto_advance=false``. ``None`` values are left out (send
    ``""`` explicitly to clear a field); ``Decimal`` is written without exponent or trailing
    zeros.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in nested.items():
        _flatten(str(key), value, pairs)
    return pairs


def _flatten(key: str, value: Any, out: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for sub, item in value.items():
            _flatten(f"{key}[{sub}]", item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _flatten(f"{key}[{index}]", item, out)
    else:
        out.append((key, _scalar(value)))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "") else text
    return str(value)


def encode_form(form: Form) -> str:
    """The urlencoded body, brackets kept readable (``metadata[job_id]=…``) as Stripe's SDKs do."""
    pairs = form_encode(form) if isinstance(form, Mapping) else list(form)
    return urlencode(pairs).replace("%5B", "[").replace("%5D", "]")


def exact_json(value: Any) -> str:
    """Compact JSON with every ``Decimal`` written as a number with its exact digits
    (``145.00``, ``0.655``), never through a float: for platforms whose APIs type amounts as
    JSON numbers (Xero, Business Central, Sage, MYOB, Zoho Books)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite amount: {value}")
        text = format(value, "f")
        return "0" if text in ("-0", "") else text
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{jsonlib.dumps(str(k), ensure_ascii=False)}:{exact_json(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(exact_json(v) for v in value) + "]"
    return jsonlib.dumps(value, default=str, ensure_ascii=False)


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None when absent/invalid."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# ---------------------------------------------------------------------------------------------
# Masking


class Masker:
    """Replaces every secret (raw and urlencoded) in text with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if secret:
                variants.update({secret, urlencode({"": secret})[1:]})
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {name: MASK if name.lower() in SENSITIVE_HEADERS else self.text(value)
                for name, value in headers.items()}


def _credential_of(header_value: str) -> str:
    """The credential part of ``Bearer sk_…`` / ``Basic …`` (or the whole value)."""
    scheme, _, credential = header_value.partition(" ")
    return credential.strip() if credential else scheme


# ---------------------------------------------------------------------------------------------
# The client


class HttpClient:
    """One platform's HTTP connection pool, with retries, rate limit, recording and logging."""

    def __init__(
        self,
        *,
        platform: str,
        base_url: str,
        error_mapper: ErrorMapper,
        default_headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        recorder: Callable[[RecordedRequest], None] | None = None,
        secrets: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        timer: Timer = SYSTEM_TIMER,
        request_id_header: str = "X-Request-Id",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        uniform: Callable[[float, float], float] = random.uniform,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        slots: threading.BoundedSemaphore | None = None,
        exact_decimals: bool = False,
    ) -> None:
        self.platform = platform
        self._slots = slots
        #: JSON bodies carry Decimals as exact numbers (``exact_json``) instead of strings
        self._exact_decimals = exact_decimals
        self._map_error = error_mapper
        self._recorder, self._limiter, self._timer = recorder, limiter, timer
        self._retry = retry or RetryPolicy()
        self._request_id_header = request_id_header
        self._uniform, self._now = uniform, now
        headers = {"User-Agent": "autoinvoice/0.1", **(default_headers or {})}
        self._masker = Masker(secrets)
        for name, value in headers.items():
            if name.lower() in SENSITIVE_HEADERS:
                self._masker.add(_credential_of(value))
        self._client = httpx.Client(
            base_url=base_url, headers=headers, transport=transport, timeout=timeout,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mask(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        return self._masker.text(text)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Form | None = None,
        form: Form | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        idempotency_header: str = "Idempotency-Key",
        replay_safe: bool | None = None,
    ) -> httpx.Response:
        """Send one logical request (retried as the module docstring says); a 2xx response, or
        the mapped ``ConnectorError``."""
        method = method.upper()
        request = self._build(method, path, params, form, json, headers,
                              idempotency_key, idempotency_header)
        safe = replay_safe if replay_safe is not None else (
            method in IDEMPOTENT_METHODS or idempotency_key is not None)
        failures = 0
        while True:
            outcome = self._attempt(request, failures + 1)
            failures += 1
            delay = self._next_delay(outcome, failures, safe)
            if delay is None:
                return self._finish(outcome)
            self._timer.sleep(delay)

    # -- one attempt ------------------------------------------------------------------------

    def _build(self, method: str, path: str, params: Form | None, form: Form | None, json: Any,
               headers: Mapping[str, str] | None, idempotency_key: str | None,
               idempotency_header: str) -> httpx.Request:
        extra = dict(headers or {})
        content: bytes | None = None
        if form is not None:
            content = encode_form(form).encode()
            extra["Content-Type"] = "application/x-www-form-urlencoded"
        elif json is not None:
            content = (exact_json(json) if self._exact_decimals else
                       jsonlib.dumps(json, default=str, separators=(",", ":"))).encode()
            extra["Content-Type"] = "application/json"
        if idempotency_key is not None:
            extra[idempotency_header] = idempotency_key
        pairs = form_encode(params) if isinstance(params, Mapping) else list(params or ())
        query = urlencode(pairs) if pairs else None
        return self._client.build_request(method, path, params=query, content=content,
                                          headers=extra)

    def _attempt(self, request: httpx.Request, attempt: int) -> Outcome:
        if self._limiter is not None:
            self._limiter.acquire()
        self._record(request)
        started = time.perf_counter()
        if self._slots is not None:
            self._slots.acquire()
        try:
            outcome: Outcome = self._client.send(request)
        except httpx.TransportError as exc:
            outcome = exc
        finally:
            if self._slots is not None:
                self._slots.release()
        elapsed = (time.perf_counter() - started) * 1000
        self._log(request, outcome, attempt, elapsed)
        if journal.active():
            self._journal(request, outcome, elapsed)
        return outcome

    def _journal(self, request: httpx.Request, outcome: Outcome, ms: float) -> None:
        response = outcome if isinstance(outcome, httpx.Response) else None
        journal.note(
            platform=self.platform, method=request.method, url=self.mask(str(request.url)),
            request_headers=self._masker.headers(request.headers),
            request_body=self.mask(request.content.decode("utf-8", "replace")),
            status=response.status_code if response is not None else type(outcome).__name__,
            request_id=response.headers.get(self._request_id_header) if response else None,
            response_body=self.mask(response.text) if response is not None else str(outcome),
            elapsed_ms=ms)

    def _record(self, request: httpx.Request) -> None:
        if self._recorder is None:
            return
        self._recorder(RecordedRequest(
            method=request.method,
            url=self.mask(str(request.url)),
            headers=self._masker.headers(request.headers),
            body=self.mask(request.content.decode("utf-8", "replace")),
        ))

    def _log(self, request: httpx.Request, outcome: Outcome, attempt: int, ms: float) -> None:
        if isinstance(outcome, httpx.Response):
            status: object = outcome.status_code
            request_id = outcome.headers.get(self._request_id_header, "-")
            level = logging.INFO if outcome.is_success else logging.WARNING
        else:
            status, request_id, level = type(outcome).__name__, "-", logging.WARNING
        if not log.isEnabledFor(level):
            return
        log.log(level, self.mask(
            f"{self.platform} {request.method} {request.url.path} -> {status} "
            f"in {ms:.0f} ms request_id={request_id} attempt={attempt}"))

    # -- the one retry decision -------------------------------------------------------------

    def _next_delay(self, outcome: Outcome, failures: int, replay_safe: bool) -> float | None:
        """Seconds to sleep before trying again, or None to stop (success or give up)."""
        if isinstance(outcome, httpx.Response):
            if outcome.is_success or not self._retryable_status(outcome.status_code, replay_safe):
                return None
            retry_after = retry_after_seconds(outcome, self._now())
        else:
            if not isinstance(outcome, _NOT_SENT) and not (
                    replay_safe and isinstance(outcome, _MAYBE_SENT)):
                return None
            retry_after = None
        if failures >= self._retry.attempts:
            return None
        if retry_after is None:
            return self._retry.backoff(failures, self._uniform)
        return retry_after if retry_after <= self._retry.max_retry_after else None

    @staticmethod
    def _retryable_status(status: int, replay_safe: bool) -> bool:
        if status == 429:
            return True  # rejected before processing: always safe to repeat
        return replay_safe and (status in RETRYABLE_STATUSES or 500 <= status <= 599)

    # -- final outcome ----------------------------------------------------------------------

    def _finish(self, outcome: Outcome) -> httpx.Response:
        if isinstance(outcome, httpx.Response):
            if outcome.is_success:
                return outcome
            raise self._mapped(outcome)
        kind = TransientError if isinstance(outcome, _NOT_SENT + _MAYBE_SENT) else PermanentError
        raise kind(self.mask(f"network error: {type(outcome).__name__}: {outcome}"),
                   platform=self.platform) from outcome

    def _mapped(self, response: httpx.Response) -> ConnectorError:
        error = self._map_error(response)
        error.platform = error.platform or self.platform
        error.status = error.status if error.status is not None else response.status_code
        error.request_id = error.request_id or response.headers.get(self._request_id_header)
        error.message = self.mask(error.message)
        error.args = (error.message,)
        if isinstance(error, RateLimited) and error.retry_after is None:
            error.retry_after = retry_after_seconds(response, self._now())
        return error


def bearer_request(http: HttpClient, tokens: TokenSource, method: str, path: str,
                   **kwargs: Any) -> httpx.Response:
    """``http.request`` with an OAuth2 bearer token from ``tokens``. A 401 means the token
    was refused (expired early, revoked, rotated by another worker): refresh once and repeat;
    a second refusal is the platform's answer (``AuthError``)."""
    headers = dict(kwargs.pop("headers", None) or {})
    token = tokens.access_token()
    try:
        return http.request(method, path, headers={**headers, "Authorization": f"Bearer {token}"},
                            **kwargs)
    except AuthError as exc:
        if exc.status != 401:
            raise
    token = tokens.refreshed(token)
    return http.request(method, path, headers={**headers, "Authorization": f"Bearer {token}"},
                        **kwargs)
