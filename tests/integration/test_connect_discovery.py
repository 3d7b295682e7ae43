"""``autoinvoice connect`` over real HTTP against the Xero, FreshBooks, Zoho Books and MYOB
stand-ins: each connection's ids are learned the way the platform tells them (discovery calls,
the consent redirect, Zoho's token answer), stored, and used by the connector built from the
store -- refreshes included."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from autoinvoice.bootstrap import bootstrap
from autoinvoice.connections.connect import connect_headless
from autoinvoice.connections.crypto import ENV_KEY, new_key
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.demo import demo_config
from autoinvoice.demo_regions import localise
from autoinvoice.sandbox.registry import make_standin, standin_app
from autoinvoice.sandbox.server import serve_in_thread
from autoinvoice.store.models import OAuthConnectionRow
from tests.connectors.test_stripe import keys_for, make_invoice


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(ENV_KEY, new_key())
    clear_limiters()
    yield
    clear_limiters()


@contextmanager
def connected(tmp_path: Path, platform: str) -> Iterator[tuple[Any, Any, str]]:
    """The demo's tenant ``northwind`` on ``platform``'s stand-in, served over HTTP, after
    ``connect``; the stand-in has no pre-issued key: only what connect obtained works."""
    core = make_standin(platform)
    with serve_in_thread(standin_app(platform, core)) as served:
        app = bootstrap(localise(demo_config(tmp_path, platform, served.base_url, 25, core),
                                 platform))
        connect_headless(app, "northwind")
        yield app, core, served.base_url


def stored_values(app: Any) -> dict[str, str]:
    with app.sessions() as session:
        row = session.query(OAuthConnectionRow).filter_by(tenant="northwind").one()
        return dict(row.values)


@pytest.mark.parametrize(("platform", "discovery"), [
    ("xero", ("GET", "/connections")),
    ("freshbooks", ("GET", "/auth/api/v1/users/me")),
    ("zoho_books", ("GET", "/books/v3/organizations")),
])
def test_connect_learns_the_id_through_the_platforms_discovery_call(
        tmp_path: Path, platform: str, discovery: tuple[str, str]) -> None:
    with connected(tmp_path, platform) as (app, core, _):
        assert discovery in core.requests
        assert stored_values(app) == {**core.connection_values(), **extra(platform, app)}


def extra(platform: str, app: Any) -> dict[str, str]:
    if platform != "zoho_books":
        return {}
    base = app.config.tenant("northwind").platform.base_url
    return {"api_domain": base, "accounts_server": base}


def test_zoho_books_refreshes_at_the_stored_accounts_server_and_calls_the_api_domain(
        tmp_path: Path) -> None:
    with connected(tmp_path, "zoho_books") as (app, core, base):
        values = stored_values(app)
        assert values["api_domain"] == values["accounts_server"] == base
        core.oauth.expire_all()  # the next call refreshes first
        connector = app.connector("northwind")
        invoice = make_invoice()
        connector.ensure_customer(invoice.customer, keys_for(invoice))
        assert core.oauth.refresh_count == 1


def test_myob_learns_the_company_file_from_the_consent_redirect(tmp_path: Path) -> None:
    with connected(tmp_path, "myob") as (app, core, base):
        assert stored_values(app) == {"company_file_uri": f"{base}{core.file.uri}"}
        assert not any(path.rstrip("/") == "/accountright" for _, path in core.requests)
