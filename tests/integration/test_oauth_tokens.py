"""OAuth2 connections end to end against an ``OAuthServer`` on loopback: the code flow with
the local callback, tokens encrypted at rest, refresh before expiry, a batch across an expiry,
rotation, two workers (threads and processes) refreshing at once, and invalid_grant."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from autoinvoice.connections.connect import connect, connect_headless, oauth_client
from autoinvoice.connections.crypto import ENV_KEY, new_key
from autoinvoice.connections.status import connections
from autoinvoice.connections.tokens import DbTokenSource
from autoinvoice.connectors.errors import AuthError, ConnectorError
from autoinvoice.connectors.http import HttpClient, bearer_request
from autoinvoice.connectors.oauth_client import ReconnectRequired
from tests.helpers import VirtualTimer
from tests.integration.oauth_helpers import CLIENT_ENV, XERO_TENANT, OAuthWorld, oauth_world

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def oauth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KEY, new_key())
    for name, value in CLIENT_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def world(tmp_path: Path) -> Any:
    with oauth_world(tmp_path) as w:
        yield w


@pytest.fixture
def connected(world: OAuthWorld) -> OAuthWorld:
    connect_headless(world.app, "acme")
    return world


def _xero_api(world: OAuthWorld) -> HttpClient:
    def mapper(response: httpx.Response) -> ConnectorError:
        if response.status_code == 401:
            return AuthError("unauthorized", status=401)
        return ConnectorError(f"HTTP {response.status_code}")

    return HttpClient(platform="xero", base_url=world.base_url, error_mapper=mapper,
                      timer=VirtualTimer())


def test_code_flow_through_the_local_callback_stores_the_connection(world: OAuthWorld) -> None:
    # given a person who consents in a "browser" (the URL printed is followed)
    def browser(text: str) -> None:
        url = text.split("\n")[1].strip()
        threading.Thread(target=lambda: httpx.get(url, follow_redirects=True, timeout=10),
                         daemon=True).start()

    # when
    done = connect(world.app, "acme", port=0, open_browser=False, timeout=10, say=browser)
    # then: the tenant id was learned from GET /connections, and the token works
    assert done.values == {"tenant_id": XERO_TENANT}
    tokens = DbTokenSource(world.app, "acme")
    assert world.server.check(f"Bearer {tokens.access_token()}")
    assert tokens.value("tenant_id") == XERO_TENANT
    assert XERO_TENANT in done.describe()


def test_the_authorize_request_carries_state_pkce_and_offline_access(world: OAuthWorld) -> None:
    auth = oauth_client(world.app, "acme").authorization("http://127.0.0.1:1/callback")
    query = dict(httpx.URL(auth.url).params)
    assert query["state"] == auth.state
    assert query["code_challenge_method"] == "S256"
    assert "offline_access" in query["scope"].split(" ")
    assert query["redirect_uri"] == "http://127.0.0.1:1/callback"


def test_a_redirect_with_another_state_is_refused(world: OAuthWorld) -> None:
    client = oauth_client(world.app, "acme")
    auth = client.authorization("http://127.0.0.1:8765/callback")
    _, location = world.server.authorize({"response_type": "code", "client_id": "demo-client",
                                          "redirect_uri": auth.redirect_uri, "state": "forged"})
    code = dict(httpx.URL(location).params)["code"]
    with pytest.raises(AuthError, match="state does not match"):
        client.exchange(auth, {"code": code, "state": "forged"})
    assert world.server.refresh_count == 0


def test_tokens_are_encrypted_at_rest(connected: OAuthWorld, tmp_path: Path) -> None:
    connected.app.engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("oauth.db*"))
    assert b"oauth_connections" in raw or len(raw) > 0
    for token in connected.issued():
        assert token.encode() not in raw
    assert XERO_TENANT.encode() in raw  # connection values are not secret


def test_the_token_is_refreshed_before_it_expires(connected: OAuthWorld) -> None:
    tokens = DbTokenSource(connected.app, "acme")
    first = tokens.access_token()
    connected.clock.advance(minutes=54)
    assert tokens.access_token() == first  # still 6 minutes left
    connected.clock.advance(minutes=2)  # inside the 5-minute margin
    second = tokens.access_token()
    assert second != first
    assert connected.server.refresh_count == 1
    assert connected.server.check(f"Bearer {second}")


def test_an_expiry_in_the_middle_of_a_batch_refreshes_exactly_once(
        connected: OAuthWorld) -> None:
    tokens, http = DbTokenSource(connected.app, "acme"), _xero_api(connected)
    for n in range(30):
        if n == 12:
            connected.server.expire_all()  # the platform drops every access token
        assert bearer_request(http, tokens, "GET", "/connections").status_code == 200
    assert connected.server.refresh_count == 1


def test_a_rotated_refresh_token_is_stored_and_the_old_one_is_dead(
        connected: OAuthWorld) -> None:
    old = connected.secrets()["refresh_token"]
    tokens = DbTokenSource(connected.app, "acme")
    tokens.refreshed(tokens.access_token())
    new = connected.secrets()["refresh_token"]
    assert new != old
    status, body = connected.server.token({"grant_type": "refresh_token",
                                           "refresh_token": old}, connected.basic())
    assert (status, body["error"]) == (400, "invalid_grant")
    with connected.app.sessions() as session:
        from autoinvoice.store.models import OAuthConnectionRow
        row = session.query(OAuthConnectionRow).one()
        assert row.version == 2
        assert row.last_refresh_at == connected.clock.now


def test_two_threads_refreshing_at_once_make_one_refresh(tmp_path: Path) -> None:
    with oauth_world(tmp_path, delay=0.3) as world:
        connect_headless(world.app, "acme")
        rejected = DbTokenSource(world.app, "acme").access_token()
        world.server.expire_all()
        # two workers: separate engines (separate connections and sessions) on one file
        from tests.integration.oauth_helpers import make_app
        apps = [make_app(world.config_path, world.clock) for _ in range(2)]
        barrier, results = threading.Barrier(2), [None, None]

        def work(i: int) -> None:
            source = DbTokenSource(apps[i], "acme")
            barrier.wait()
            results[i] = source.refreshed(rejected)  # type: ignore[call-overload]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert world.server.refresh_count == 1
        assert results[0] == results[1]
        assert world.server.check(f"Bearer {results[0]}")


def test_two_processes_refreshing_at_once_make_one_refresh(tmp_path: Path) -> None:
    with oauth_world(tmp_path, delay=0.3) as world:
        connect_headless(world.app, "acme")
        rejected = DbTokenSource(world.app, "acme").access_token()
        world.server.expire_all()
        go = tmp_path / "go"
        env = {**os.environ, "OAUTH_CONFIG": str(world.config_path), "OAUTH_REJECTED": rejected,
               "OAUTH_GO": str(go), "PYTHONPATH": str(REPO)}
        procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.oauth_worker"],
                                  cwd=REPO, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(1.0)  # both are up and polling
        go.touch()
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
        got = [out.strip() for out, _ in outs]
        assert world.server.refresh_count == 1
        assert got[0] == got[1]
        assert world.server.check(f"Bearer {got[0]}")


def test_invalid_grant_asks_for_a_new_connection(connected: OAuthWorld) -> None:
    connected.server.revoke(connected.secrets()["refresh_token"])
    tokens = DbTokenSource(connected.app, "acme")
    token = tokens.access_token()
    with pytest.raises(ReconnectRequired, match="autoinvoice connect xero --tenant acme"):
        tokens.refreshed(token)
    [entry] = connections(connected.app)
    assert entry["state"] == "needs_reconnect"
    assert "invalid_grant" in entry["last_error"]
    with pytest.raises(AuthError, match="autoinvoice connect"):  # no second try at the server
        DbTokenSource(connected.app, "acme").access_token()


def test_reconnecting_clears_the_error(connected: OAuthWorld) -> None:
    connected.server.revoke(connected.secrets()["refresh_token"])
    tokens = DbTokenSource(connected.app, "acme")
    with pytest.raises(ReconnectRequired):
        tokens.refreshed(tokens.access_token())
    connect_headless(connected.app, "acme")
    assert connections(connected.app)[0]["state"] == "ok"
    assert connected.server.check(f"Bearer {DbTokenSource(connected.app, 'acme').access_token()}")


def test_a_tenant_never_connected_is_told_how(world: OAuthWorld) -> None:
    with pytest.raises(AuthError, match=r"not connected to Xero: run `autoinvoice connect xero "
                                        r"--tenant acme`"):
        DbTokenSource(world.app, "acme").access_token()
    assert connections(world.app)[0]["state"] == "not_connected"


def test_the_connector_settings_carry_a_db_token_source(world: OAuthWorld) -> None:
    settings = world.app.connector_settings("acme")
    assert isinstance(settings.tokens, DbTokenSource)
    assert "acme" in repr(settings.tokens)


def test_without_the_key_the_error_names_the_variable(connected: OAuthWorld,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY)
    with pytest.raises(AuthError, match=ENV_KEY):
        DbTokenSource(connected.app, "acme").access_token()


def test_another_key_cannot_read_the_tokens(connected: OAuthWorld,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KEY, new_key())
    with pytest.raises(AuthError, match="cannot be decrypted"):
        DbTokenSource(connected.app, "acme").access_token()


def test_a_new_key_in_front_keeps_the_old_tokens_readable(
        connected: OAuthWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KEY, f"{new_key()},{os.environ[ENV_KEY]}")
    assert connected.server.check(f"Bearer {DbTokenSource(connected.app, 'acme').access_token()}")


def test_no_token_in_any_log_line(world: OAuthWorld, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connect_headless(world.app, "acme")
    tokens = DbTokenSource(world.app, "acme")
    world.server.expire_all()
    bearer_request(_xero_api(world), tokens, "GET", "/connections")
    world.clock.advance(hours=2)
    tokens.access_token()
    world.server.revoke(world.secrets()["refresh_token"])
    with pytest.raises(ReconnectRequired) as caught:
        tokens.refreshed(tokens.access_token())
    assert world.server.refresh_count == 2
    text = caplog.text + str(caught.value) + repr(tokens)
    assert "refreshed" in caplog.text
    for secret in [*world.issued(), "demo-secret"]:
        assert secret not in text


def test_access_expiry_is_recorded(connected: OAuthWorld) -> None:
    [entry] = connections(connected.app)
    assert entry["state"] == "ok"
    assert entry["access_expires_at"] == (connected.clock.now + timedelta(hours=1)).isoformat(
        timespec="seconds")
    assert entry["values"] == {"tenant_id": XERO_TENANT}


def test_a_headless_connect_can_choose_the_organisation(world: OAuthWorld) -> None:
    done = connect_headless(world.app, "acme", choose={"tenant_id": "the-other-org"})
    assert done.values == {"tenant_id": "the-other-org"}
    assert DbTokenSource(world.app, "acme").value("tenant_id") == "the-other-org"
