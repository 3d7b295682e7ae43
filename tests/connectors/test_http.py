"""The shared HTTP layer: retries, Retry-After, errors, masking, rate limit, form encoding."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest

from autoinvoice.connectors.base import RecordedRequest
from autoinvoice.connectors.errors import (
    AuthError,
    ConnectorError,
    PermanentError,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from autoinvoice.connectors.http import (
    HttpClient,
    RateLimiter,
    RetryPolicy,
    clear_limiters,
    form_encode,
    limiter_for,
    retry_after_seconds,
)
from tests.helpers import VirtualTimer

SECRET = "sk_test_supersecret_123"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def map_error(response: httpx.Response) -> ConnectorError:
    status = response.status_code
    kind: type[ConnectorError] = {401: AuthError, 400: ValidationRejected, 429: RateLimited}.get(
        status, TransientError if status >= 409 else PermanentError)
    return kind(f"failed with {response.text}", code="x")


class Server:
    """A scripted platform: each request pops the next response (or raises the next error)."""

    def __init__(self, *script: httpx.Response | Exception) -> None:
        self.script = list(script)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


def reply(status: int, body: str = "{}", **headers: str) -> httpx.Response:
    return httpx.Response(status, text=body,
                          headers={"Request-Id": "req_1", **{k.replace("_", "-"): v
                                                              for k, v in headers.items()}})


@pytest.fixture
def sleeps() -> VirtualTimer:
    return VirtualTimer()


@pytest.fixture
def make_client(sleeps: VirtualTimer) -> Iterator[Callable[..., HttpClient]]:
    clients: list[HttpClient] = []

    def make(server: Server, **kw: object) -> HttpClient:
        options: dict[str, object] = dict(
            platform="acme", base_url="https://api.acme.test", error_mapper=map_error,
            default_headers={"Authorization": f"Bearer {SECRET}"}, secrets=[SECRET],
            transport=httpx.MockTransport(server), timer=sleeps, request_id_header="Request-Id",
            uniform=lambda low, high: high, now=lambda: NOW)
        options.update(kw)
        client = HttpClient(**options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_5xx_is_retried_with_backoff_then_succeeds(make_client, sleeps) -> None:
    server = Server(reply(500), reply(503), reply(200, '{"ok":true}'))
    response = make_client(server).request("POST", "/v1/things", form={"a": "1"},
                                           idempotency_key="k1")
    assert response.json() == {"ok": True}
    assert len(server.seen) == 3
    assert sleeps == [0.25, 0.5]  # base * 2**n, jitter pinned to its cap


def test_429_retry_after_is_slept_exactly_and_the_key_reused(make_client, sleeps) -> None:
    server = Server(reply(429, Retry_After="7"), reply(200))
    make_client(server).request("POST", "/v1/things", form=[("a", "1")], idempotency_key="key-9")
    assert sleeps == [7.0]
    assert [r.headers["Idempotency-Key"] for r in server.seen] == ["key-9", "key-9"]
    assert server.seen[0].content == server.seen[1].content == b"a=1"


def test_retry_after_as_http_date(make_client, sleeps) -> None:
    later = format_datetime(NOW + timedelta(seconds=12), usegmt=True)
    make_client(Server(reply(503, Retry_After=later), reply(200))).request("GET", "/v1/x")
    assert sleeps == [12.0]


def test_attempts_are_bounded_then_the_mapped_error_is_raised(make_client, sleeps) -> None:
    server = Server(reply(500, '{"boom":1}'))
    with pytest.raises(TransientError) as caught:
        make_client(server, retry=RetryPolicy(attempts=4)).request("GET", "/v1/x")
    assert len(server.seen) == 4
    assert len(sleeps) == 3
    assert caught.value.status == 500
    assert caught.value.platform == "acme"
    assert caught.value.request_id == "req_1"


def test_persistent_429_raises_rate_limited_with_retry_after(make_client) -> None:
    with pytest.raises(RateLimited) as caught:
        make_client(Server(reply(429, Retry_After="2"))).request("GET", "/v1/x")
    assert caught.value.retry_after == 2.0


def test_a_long_retry_after_is_handed_back_not_slept(make_client, sleeps) -> None:
    server = Server(reply(429, Retry_After="3600"))
    with pytest.raises(RateLimited) as caught:
        make_client(server).request("GET", "/v1/x")
    assert caught.value.retry_after == 3600.0
    assert sleeps == []
    assert len(server.seen) == 1


def test_4xx_is_not_retried(make_client, sleeps) -> None:
    server = Server(reply(400, '{"bad":"param"}'))
    with pytest.raises(ValidationRejected):
        make_client(server).request("POST", "/v1/x", idempotency_key="k")
    assert len(server.seen) == 1
    assert sleeps == []


def test_401_maps_to_auth_error(make_client) -> None:
    with pytest.raises(AuthError):
        make_client(Server(reply(401))).request("GET", "/v1/x")


def test_network_error_becomes_transient_after_retries(make_client, sleeps) -> None:
    server = Server(httpx.ConnectError("refused"))
    with pytest.raises(TransientError, match="ConnectError"):
        make_client(server).request("POST", "/v1/x")  # never sent: retried even without a key
    assert len(server.seen) == 3


def test_lost_response_is_retried_only_when_replay_safe(make_client) -> None:
    lost = httpx.RemoteProtocolError("peer closed connection")
    keyed = Server(lost, reply(200))
    assert make_client(keyed).request("POST", "/v1/x", idempotency_key="k").status_code == 200
    unkeyed = Server(lost, reply(200))
    with pytest.raises(TransientError):
        make_client(unkeyed).request("POST", "/v1/x")
    assert len(unkeyed.seen) == 1  # a POST without a key might have been processed: not repeated


def test_a_5xx_on_an_unkeyed_post_is_not_repeated(make_client) -> None:
    server = Server(reply(502), reply(200))
    with pytest.raises(TransientError):
        make_client(server).request("POST", "/v1/x")
    assert len(server.seen) == 1


def test_secrets_are_masked_in_records_and_logs(make_client, caplog) -> None:
    records: list[RecordedRequest] = []
    server = Server(reply(400, f'{{"error":"bad key {SECRET}"}}'))
    client = make_client(server, recorder=records.append)
    caplog.set_level(logging.DEBUG, logger="autoinvoice.http")
    with pytest.raises(ValidationRejected) as caught:
        client.request("POST", f"/v1/echo/{SECRET}", params={"q": SECRET},
                       form={"note": f"key={SECRET}"}, headers={"X-Api-Key": "other-secret"})
    recorded = records[0]
    assert recorded.headers["authorization"] == "***"
    assert recorded.headers["x-api-key"] == "***"
    assert SECRET not in recorded.url + recorded.body + str(recorded.headers)
    assert SECRET not in str(caught.value)
    assert caplog.records
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_one_log_line_per_attempt_with_request_id(make_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="autoinvoice.http")
    make_client(Server(reply(500), reply(200))).request("GET", "/v1/things", params={"a": "b"})
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("acme GET /v1/things -> 500 in ")
    assert "request_id=req_1 attempt=1" in lines[0]
    assert "-> 200" in lines[1]
    assert "attempt=2" in lines[1]


def test_rate_limiter_spaces_requests_on_a_fake_clock() -> None:
    timer = VirtualTimer()
    limiter = RateLimiter(rate=10, burst=2, timer=timer)
    starts = []
    for _ in range(5):
        limiter.acquire()
        starts.append(round(timer.now, 6))
    assert starts == [0.0, 0.0, 0.1, 0.2, 0.3]  # the burst, then one every 1/rate seconds
    timer.advance(10)
    assert limiter.acquire() == 0  # the bucket refilled, but only up to the burst
    assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(0.1)


def test_client_applies_the_limiter_before_sending(make_client) -> None:
    timer = VirtualTimer()
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(timer.now)
        return reply(200)

    limiter = RateLimiter(rate=4, burst=1, timer=timer)
    client = make_client(handler, limiter=limiter)  # type: ignore[arg-type]
    for _ in range(3):
        client.request("GET", "/v1/x")
    assert sent_at == [0.0, 0.25, 0.5]


def test_limiter_registry_shares_one_bucket_per_key() -> None:
    clear_limiters()
    first = limiter_for("northwind:stripe", 25, 25)
    assert limiter_for("northwind:stripe", 99, 99) is first
    assert limiter_for("other:stripe", 25, 25) is not first


def test_a_limiter_is_shared_only_with_connectors_on_the_same_timer() -> None:
    # given two tests' timers (or a test's and the system's) and one tenant key
    one, other = VirtualTimer(), VirtualTimer()
    # then each timer gets its own bucket, measured on its own clock
    assert limiter_for("northwind:stripe", 1, 1, timer=one) is not limiter_for(
        "northwind:stripe", 1, 1, timer=other)
    assert limiter_for("northwind:stripe", 1, 1, timer=one) is limiter_for(
        "northwind:stripe", 1, 1, timer=one)


def test_limiter_waits_are_measured_on_the_injected_timer_not_the_wall_clock(
        monkeypatch) -> None:
    # given a drained bucket on a virtual timer, and a wall clock that races ahead
    timer = VirtualTimer()
    limiter = RateLimiter(rate=1, burst=1, timer=timer)
    limiter.acquire()
    wall = iter(range(0, 10_000, 1000))
    monkeypatch.setattr("time.monotonic", lambda: float(next(wall)))
    # then the next token costs exactly one virtual second, however busy the machine was
    assert limiter.acquire() == 1.0
    assert timer == [1.0]
    clear_limiters()


def test_form_encode_nested_stripe_style() -> None:
    pairs = form_encode({
        "customer": "cus_1",
        "metadata": {"job_id": "WO-1", "revision": 2},
        "custom_fields": [{"name": "Invoice no.", "value": "INV-1"}, {"name": "PO", "value": "7"}],
        "tax_rates": ["txr_a"],
        "auto_advance": False,
        "percentage": Decimal("8.50"),
        "skipped": None,
    })
    assert pairs == [
        ("customer", "cus_1"),
        ("metadata[job_id]", "WO-1"), ("metadata[revision]", "2"),
        ("custom_fields[0][name]", "Invoice no."), ("custom_fields[0][value]", "INV-1"),
        ("custom_fields[1][name]", "PO"), ("custom_fields[1][value]", "7"),
        ("tax_rates[0]", "txr_a"),
        ("auto_advance", "false"),
        ("percentage", "8.5"),
    ]


def test_form_body_is_urlencoded_with_readable_brackets(make_client) -> None:
    server = Server(reply(200))
    make_client(server).request("POST", "/v1/x", form={"metadata": {"a b": "c&d"}},
                                idempotency_key="k")
    assert server.seen[0].content == b"metadata[a+b]=c%26d"
    assert server.seen[0].headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_retry_after_parsing_edge_cases() -> None:
    assert retry_after_seconds(httpx.Response(429)) is None
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "1.5"})) == 1.5
    past = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": past}), NOW) == 0.0


def test_bearer_request_refreshes_once_after_a_401_and_then_gives_up() -> None:
    import threading

    from autoinvoice.connectors.errors import AuthError
    from autoinvoice.connectors.http import HttpClient, bearer_request

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        ok = request.headers["Authorization"] == "Bearer new"
        return httpx.Response(200 if ok else 401, json={})

    class Tokens:
        def __init__(self) -> None:
            self.current, self.refreshes = "old", 0

        def access_token(self) -> str:
            return self.current

        def refreshed(self, rejected: str) -> str:
            self.refreshes += 1
            self.current = "new" if self.refreshes == 1 else "newer"
            return self.current

        def value(self, name: str) -> str | None:
            return None

    def mapper(response: httpx.Response) -> AuthError:
        return AuthError("refused", status=response.status_code)

    tokens = Tokens()
    slots = threading.BoundedSemaphore(1)
    http = HttpClient(platform="p", base_url="https://p.test", error_mapper=mapper,
                      transport=httpx.MockTransport(handler), slots=slots)
    assert bearer_request(http, tokens, "GET", "/x").status_code == 200
    assert seen == ["Bearer old", "Bearer new"]
    tokens.current = "stale"
    with pytest.raises(AuthError):
        bearer_request(http, tokens, "GET", "/x")
    assert tokens.refreshes == 2
    assert slots.acquire(blocking=False)  # every slot was given back


def test_exact_decimals_go_out_as_json_numbers_with_their_digits() -> None:
    from autoinvoice.connectors.http import HttpClient, exact_json

    assert exact_json({"a": Decimal("18.40"), "b": [Decimal("0.655"), "x", 1]}) == (
        '{"a":18.40,"b":[0.655,"x",1]}')
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(200, json={})

    for exact in (True, False):
        http = HttpClient(platform="p", base_url="https://p.test", error_mapper=lambda r: None,
                          transport=httpx.MockTransport(handler), exact_decimals=exact)
        http.request("POST", "/x", json={"amount": Decimal("145.00")})
    assert seen == [b'{"amount":145.00}', b'{"amount":"145.00"}']
