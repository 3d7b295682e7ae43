"""``connect quickbooks`` against the QuickBooks stand-in over real HTTP: the company (realm)
is learned from the consent redirect's ``realmId`` (the token answer carries none), and the
token it stores holds the accounting scope the connector's every call needs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoinvoice.connections.connect import connect_headless
from autoinvoice.connections.crypto import ENV_KEY, new_key
from autoinvoice.connectors.errors import AuthError
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.quickbooks import QuickBooksConnector
from autoinvoice.sandbox.quickbooks import AUTHORIZE_PATH, TOKEN_PATH, QuickBooksSandbox
from autoinvoice.sandbox.registry import standin_app
from autoinvoice.sandbox.server import serve_in_thread
from autoinvoice.store.models import OAuthConnectionRow
from tests.integration.conftest import tenant_toml
from tests.integration.oauth_helpers import CLIENT_ENV, make_app

CREDENTIALS = ('{ client_id = "env:TEST_OAUTH_CLIENT_ID", '
               'client_secret = "env:TEST_OAUTH_CLIENT_SECRET" }')


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[tuple[QuickBooksSandbox, Path]]:
    monkeypatch.setenv(ENV_KEY, new_key())
    for name, value in CLIENT_ENV.items():
        monkeypatch.setenv(name, value)
    clear_limiters()
    core = QuickBooksSandbox(realm_id="4620816365214748000")
    with serve_in_thread(standin_app("quickbooks", core)) as served:
        base = served.base_url
        path = tmp_path / "autoinvoice.toml"
        path.write_text(f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'qb.db'}"
""" + tenant_toml("acme", "quickbooks", f"""base_url = "{base}"
authorize_url = "{base}{AUTHORIZE_PATH}"
token_url = "{base}{TOKEN_PATH}"
credentials = {CREDENTIALS}"""))
        yield core, path


def test_connect_learns_the_realm_from_the_redirect_and_the_token_reaches_the_api(world):
    # given
    core, path = world
    app = make_app(path)
    # when
    connected = connect_headless(app, "acme")
    # then: the realm came on the redirect, and the consented scope opens the accounting API
    assert connected.values == {"realm_id": "4620816365214748000"}
    connector = app.connector("acme")
    assert isinstance(connector, QuickBooksConnector)
    connector.check_auth()
    assert any(path.startswith("/v3/company/4620816365214748000/companyinfo")
               for _, path in core.requests)


def test_without_realm_id_on_the_redirect_connect_fails_and_stores_nothing(world):
    core, path = world
    core.oauth.redirect_values = {}
    app = make_app(path)
    with pytest.raises(AuthError, match="realmId"):
        connect_headless(app, "acme")
    with app.sessions() as session:
        assert session.query(OAuthConnectionRow).count() == 0
