"""A separate worker process: waits for the go file, then refreshes the rejected token and
prints the token it ends with (test_two_processes_refreshing_at_once_make_one_refresh)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from autoinvoice.connections.tokens import DbTokenSource
from tests.integration.oauth_helpers import make_app


def main() -> None:
    app = make_app(Path(os.environ["OAUTH_CONFIG"]))
    source = DbTokenSource(app, "acme")
    go = Path(os.environ["OAUTH_GO"])
    while not go.exists():
        time.sleep(0.005)
    print(source.refreshed(os.environ["OAUTH_REJECTED"]))


if __name__ == "__main__":
    main()
