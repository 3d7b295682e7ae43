"""``autoinvoice connect`` and ``autoinvoice connections`` from the command line: the code
flow through the local callback, the health table, and never a token in the output."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from autoinvoice.cli import main
from autoinvoice.connections.crypto import ENV_KEY, new_key
from tests.integration.oauth_helpers import CLIENT_ENV, XERO_TENANT, oauth_world


@pytest.fixture(autouse=True)
def oauth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KEY, new_key())
    for name, value in CLIENT_ENV.items():
        monkeypatch.setenv(name, value)


def _browser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``webbrowser.open`` replaced by a person who consents at once."""
    opened: list[str] = []

    def open_(url: str) -> bool:
        opened.append(url)
        threading.Thread(target=lambda: httpx.get(url, follow_redirects=True, timeout=10),
                         daemon=True).start()
        return True

    monkeypatch.setattr("webbrowser.open", open_)
    return opened


def test_connect_then_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    opened = _browser(monkeypatch)
    with oauth_world(tmp_path) as world:
        config = str(world.config_path)
        assert main(["connect", "xero", "--tenant", "acme", "--port", "0",
                     "--config", config]) == 0
        out = capsys.readouterr().out
        assert "connected tenant acme to xero" in out
        assert XERO_TENANT in out
        assert opened
        assert opened[0] in out  # the URL to open is printed too
        assert main(["connections", "--json", "--config", config]) == 0
        listing = capsys.readouterr().out
        [entry] = json.loads(listing)
        assert entry["state"] == "ok"
        assert entry["values"] == {"tenant_id": XERO_TENANT}
        assert main(["connections", "--config", config]) == 0
        table = capsys.readouterr().out
        assert "acme" in table
        assert "ok" in table
        for secret in [*world.issued(), "demo-secret"]:
            assert secret not in out + listing + table


def test_connections_lists_a_tenant_not_yet_connected(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with oauth_world(tmp_path) as world:
        assert main(["connections", "--config", str(world.config_path)]) == 1
        out = capsys.readouterr().out
        assert "not_connected" in out
        assert "autoinvoice connect xero --tenant acme" in out


def test_connect_without_the_key_names_the_variable(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(ENV_KEY)
    with oauth_world(tmp_path) as world:
        code = main(["connect", "xero", "--tenant", "acme", "--no-browser", "--port", "0",
                     "--config", str(world.config_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert ENV_KEY in err
    assert "Traceback" not in err


def test_connect_refuses_a_platform_the_tenant_is_not_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with oauth_world(tmp_path) as world:
        code = main(["connect", "quickbooks", "--tenant", "acme", "--no-browser",
                     "--config", str(world.config_path)])
    assert code == 2
    assert "not 'quickbooks'" in capsys.readouterr().err


def test_new_key_prints_a_usable_key(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from autoinvoice.connections.crypto import TokenCipher

    assert main(["connections", "--new-key"]) == 0
    key = capsys.readouterr().out.strip()
    cipher = TokenCipher.from_env({ENV_KEY: key})
    sealed = cipher.encrypt("t", "xero", {"access_token": "abc"})
    assert cipher.decrypt("t", "xero", sealed) == {"access_token": "abc"}


