"""Invoices built per second by the billing engine, on one core: a realistic day of jobs
(the demo's generated jobs for both demo tenants: labor windows, parts, mileage, contracts,
VAT) priced over and over. Parsing the event is measured separately.

    .venv/bin/python bench/billing.py [--seconds 3]

Target (issue 3): over 5,000 invoices/s on one core, engine only. The best round is the
figure to compare (as timeit advises: slower rounds are other load on the host, and this VM's
speed varies by +-40 % from second to second); the median is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import date
from decimal import Decimal

from autoinvoice.billing.engine import build_invoice
from autoinvoice.config import billing_rules, load_config
from autoinvoice.demo_jobs import day_of_jobs
from autoinvoice.triggers.events import JobCompleted, decode_json, parse_event


def jobs() -> list[tuple[str, str]]:
    """(tenant, event JSON) of every completion event of the demo's day."""
    out = []
    for event in day_of_jobs():
        if event["type"] == "job.completed":
            out.append((event["tenant"], json.dumps(event, default=str)))
    return out


def rate(seconds: float, work: list[object], run: object) -> tuple[float, float]:
    """Invoices per second over repeated rounds: (median round, best round)."""
    rounds = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.process_time()
        for item in work:
            run(item)  # type: ignore[operator]
        rounds.append(len(work) / (time.process_time() - start))
    return statistics.median(rounds), max(rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds
    config = load_config(None)
    rules = {name: billing_rules(t) for name, t in config.tenants.items()}
    texts = jobs()
    parsed = []
    for tenant, text in texts:
        event = parse_event(decode_json(text))
        assert isinstance(event, JobCompleted)
        parsed.append((tenant, event.job.domain()))
    lines = 0
    for tenant, job in parsed:
        lines += len(build_invoice(job, rules[tenant], tenant=tenant, revision=1,
                                   issue_date=date(2026, 11, 23)).invoice.lines)

    def build(item: object) -> None:
        tenant, job = item  # type: ignore[misc]
        build_invoice(job, rules[tenant], tenant=tenant, revision=1, issue_date=date(2026, 11, 23))

    def parse(item: object) -> None:
        _, text = item  # type: ignore[misc]
        parse_event(decode_json(text)).job.domain()  # type: ignore[union-attr]

    # Rounds of ~500 invoices, so a round is long enough to time (one day is only 22 jobs).
    median, best = rate(seconds, parsed * 25, build)  # type: ignore[arg-type]
    print(f"{len(parsed)} jobs, {Decimal(lines) / len(parsed):.1f} lines per invoice on average")
    print(f"billing engine: {median:,.0f} invoices/s median, {best:,.0f} best (CPU time, one core)")
    median, best = rate(seconds, texts * 25, parse)  # type: ignore[arg-type]
    print(f"event parse + validate: {median:,.0f} events/s median, {best:,.0f} best")


if __name__ == "__main__":
    main()
