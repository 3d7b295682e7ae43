"""``autoinvoice connect`` and ``autoinvoice connections`` (registered by ``cli.py``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from autoinvoice.connectors.oauth import PLATFORMS

EXIT_OK, EXIT_FAIL = 0, 1
COLUMNS = ["tenant", "platform", "state", "connected_at", "access_expires_at",
           "refresh_expires_at", "consent_expires_at", "last_refresh_at", "last_error", "note"]


def cmd_connect(args: argparse.Namespace) -> int:
    from autoinvoice.cli import _app
    from autoinvoice.connections.connect import connect
    from autoinvoice.validation import InputError

    app = _app(args)
    platform = app.config.tenant(args.tenant).platform.name
    if platform != args.platform:
        raise InputError([f"tenant {args.tenant} is on {platform!r}, not {args.platform!r}"],
                         source="connect")
    done = connect(app, args.tenant, port=args.port, open_browser=not args.no_browser,
                   timeout=args.timeout)
    print(done.describe())
    return EXIT_OK


def cmd_connections(args: argparse.Namespace) -> int:
    from autoinvoice.cli import _app, _print_json, format_table
    from autoinvoice.connections.crypto import new_key
    from autoinvoice.connections.status import connections

    if args.new_key:
        print(new_key())
        return EXIT_OK
    rows = connections(_app(args), args.tenant)
    if args.json:
        _print_json(rows)
    elif not rows:
        print("no tenant is on an OAuth2 platform")
    else:
        print(format_table(rows, COLUMNS))
    bad = {"expired", "needs_reconnect", "not_connected"}
    return EXIT_FAIL if any(r["state"] in bad for r in rows) else EXIT_OK


def register(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("connect", cmd_connect, "connect a tenant to its OAuth2 ledger (consent in a browser)")
    p.add_argument("platform", choices=sorted(PLATFORMS))
    p.add_argument("--tenant", required=True)
    p.add_argument("--port", type=int, default=8765,
                   help="local callback port; the redirect URI registered with the platform "
                        "must be http://127.0.0.1:PORT/callback (default 8765)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for consent")
    p = add("connections", cmd_connections,
            "OAuth2 connections: state, expiry of tokens and consent, last error")
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p.add_argument("--new-key", action="store_true",
                   help="print a fresh AUTOINVOICE_SECRET_KEY and exit")
