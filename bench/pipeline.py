"""Invoices per second through the whole pipeline, and latency from "event accepted" to
"invoice sent", against the local Stripe stand-in over real HTTP, on SQLite.

The stand-in runs in its own process (uvicorn), so client and server each have a core.
PDF rendering is not part of this path (Stripe delivers the invoice itself); see bench/pdf.py.

    .venv/bin/python bench/pipeline.py [--invoices 2000] [--concurrency 8] [--rate 150]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from autoinvoice.bootstrap import bootstrap
from autoinvoice.config import parse_config
from autoinvoice.netutil import free_port
from autoinvoice.pipeline.intake import accept
from autoinvoice.pipeline.worker import Worker
from autoinvoice.store.models import InvoiceRow
from autoinvoice.triggers.events import decode_json, parse_event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import completed, dumps  # noqa: E402

KEY = "sk_test_bench"
CONFIG_TEXT: list[str] = [""]


def start_standin() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoinvoice.cli", "sandbox", "serve", "--platform", "stripe",
         "--port", str(port), "--api-key", KEY],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/v1/customers?limit=1", headers={"Authorization": f"Bearer {KEY}"})
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("stand-in did not start")


def config(folder: str, base_url: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.integration.conftest import tenant_toml

    text = f"""
[database]
url = "sqlite:///{folder}/bench.db"
[worker]
payment_poll_minutes = "100000"
""" + tenant_toml("northwind", "stripe", f'base_url = "{base_url}"\n'
                  'credentials = { api_key = "env:BENCH_STRIPE_KEY" }\n'
                  'rate_limit_per_second = 100000').replace(  # the stand-in has no limit
        'require = ["job.completed", "job.signed"]', 'require = ["job.completed"]')
    CONFIG_TEXT[:] = [text]
    return parse_config(text, "bench")


def events(n: int, prefix: str) -> list[str]:
    """``n`` jobs with ids unique to this run (the stand-in outlives each phase's database)."""
    out = []
    for i in range(n):
        event = completed(f"WO-{prefix}{i:06d}")
        event["job"]["customer"]["id"] = f"CUST-{i % 50:04d}"  # 50 customers, found once each
        out.append(dumps(event))
    return out


def latencies(app) -> list[float]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        rows = session.query(InvoiceRow.accepted_at, InvoiceRow.sent_at).all()
    return sorted((s - a).total_seconds() for a, s in rows if s is not None)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))]


def drain(n: int, concurrency: int, base_url: str, processes: int = 1) -> None:
    """All events queued first, then drained by ``processes`` worker processes."""
    with tempfile.TemporaryDirectory() as folder:
        cfg = config(folder, base_url)
        app = bootstrap(cfg)
        texts = events(n, f"D{time.time_ns()}-")
        for text in texts:
            accept(app, parse_event(decode_json(text)), text)
        start = time.perf_counter()
        if processes == 1:
            Worker(app, concurrency=concurrency, batch=200).run_until_idle()
        else:
            _worker_processes(folder, base_url, processes, concurrency)
        seconds = time.perf_counter() - start
        sent = len(latencies(app))
        print(f"throughput: {sent} invoices sent in {seconds:.2f} s = {sent / seconds:.0f} "
              f"invoices/s ({processes} worker process(es) x {concurrency} thread(s))")


def _worker_processes(folder: str, base_url: str, processes: int, concurrency: int) -> None:
    path = Path(folder) / "bench.toml"
    path.write_text(CONFIG_TEXT[0], encoding="utf-8")
    procs = [subprocess.Popen([sys.executable, "-m", "autoinvoice.cli", "worker", "--until-idle",
                               "--concurrency", str(concurrency), "--config", str(path)],
                              stdout=subprocess.DEVNULL) for _ in range(processes)]
    for proc in procs:
        proc.wait()


def steady(n: int, concurrency: int, rate: float, base_url: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = bootstrap(config(folder, base_url))
        stop = threading.Event()
        worker = Worker(app, concurrency=concurrency)
        thread = threading.Thread(target=worker.run_forever, args=(stop, 0.005))
        thread.start()
        start = time.perf_counter()
        for i, text in enumerate(events(n, f"S{time.time_ns()}-")):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            accept(app, parse_event(decode_json(text)), text)
        while len(latencies(app)) < n and time.perf_counter() - start < 120:
            time.sleep(0.05)
        stop.set()
        thread.join()
        lat = latencies(app)
        print(f"latency at {rate:.0f} events/s offered ({len(lat)}/{n} sent): "
              f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms, "
              f"max {lat[-1] * 1000:.0f} ms")


def main() -> None:
    if os.environ.get("BENCH_TRACE"):
        import faulthandler

        faulthandler.dump_traceback_later(float(os.environ["BENCH_TRACE"]), exit=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    os.environ["BENCH_STRIPE_KEY"] = KEY
    proc, url = start_standin()
    try:
        print(f"machine: {os.cpu_count()} cores; Stripe stand-in in its own process at {url}")
        drain(args.invoices, args.concurrency, url)
        if args.processes > 1:
            drain(args.invoices, args.concurrency, url, args.processes)
        steady(args.invoices // 2, args.concurrency, args.rate, url)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
