"""The floor under bench/pipeline.py: what one HTTP round trip to the Stripe stand-in costs in
CPU, client and server apart, before any invoicing logic. Times the number of requests an
invoice needs, this bounds the throughput any pipeline can reach on this machine.

    .venv/bin/python bench/http_floor.py [--requests 3000] [--requests-per-invoice 10]

Two clients: httpx (what the connectors use) and the standard library's http.client (the
cheapest Python client, as a lower bound). The request is the stand-in's cheapest: a list of
tax rates with ``limit=1``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import KEY, start_standin  # noqa: E402

PATH = "/v1/tax_rates?limit=1"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, call: Callable[[], None], n: int, server_pid: int) -> float:
    """Prints wall and CPU per request; returns client + server CPU ms per request."""
    call()  # connect and warm up
    server0, client0, wall0 = process_cpu(server_pid), own_cpu(), time.perf_counter()
    for _ in range(n):
        call()
    wall = (time.perf_counter() - wall0) / n * 1000
    client = (own_cpu() - client0) / n * 1000
    server = (process_cpu(server_pid) - server0) / n * 1000
    print(f"{name:12} wall {wall:.3f} ms/request, client CPU {client:.3f} ms, "
          f"stand-in CPU {server:.3f} ms")
    return client + server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--requests-per-invoice", type=int, default=10,
                        help="invoice + 7 items + finalize + send for the 7-line bench invoice")
    args = parser.parse_args()
    proc, url = start_standin()
    try:
        client = httpx.Client(base_url=url, headers=HEADERS)
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port)

        def stdlib() -> None:
            conn.request("GET", PATH, headers=HEADERS)
            conn.getresponse().read()

        cores = os.cpu_count() or 1
        for name, call in [("httpx", lambda: client.get(PATH).read() and None),
                           ("http.client", stdlib)]:
            per_request = measure(name, call, args.requests, proc.pid)
            per_invoice = per_request * args.requests_per_invoice
            print(f"{'':12} => {per_invoice:.1f} ms CPU per invoice for HTTP alone: at most "
                  f"{cores * 1000 / per_invoice:.0f} invoices/s on {cores} cores, with no "
                  f"invoicing work at all")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
