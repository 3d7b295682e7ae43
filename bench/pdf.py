"""Milliseconds per PDF invoice: the US and the German example invoices (one page each) and
a long one (80 lines, several pages), rendered N times each in one process.

The one-off font preparation (first render in a process) is reported separately. Wall-clock
median and p95 are what was asked for; the CPU-time median shows how much of it is this
process's own work on a shared, busy machine.

    .venv/bin/python bench/pdf.py [-n 200] [--lines 80]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pypdf import PdfReader

from autoinvoice.documents.pdf import preload_fonts, render_invoice_pdf
from autoinvoice.domain.invoice import Invoice

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.unit.test_pdf import german_invoice, long_invoice, us_invoice  # noqa: E402


def measure(invoice: Invoice, runs: int) -> tuple[list[float], list[float], bytes]:
    wall, cpu, pdf = [], [], b""
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        pdf = render_invoice_pdf(invoice, pay_url="https://pay.example/i/1")
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu, pdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=200)
    parser.add_argument("--lines", type=int, default=80)
    args = parser.parse_args()

    start = time.perf_counter()
    preload_fonts()
    print(f"font preparation (once per process): {(time.perf_counter() - start) * 1000:.0f} ms")
    cases: list[tuple[str, Callable[[], Invoice]]] = [
        ("US example (USD, Letter)", us_invoice), ("German example (EUR, A4)", german_invoice),
        (f"{args.lines}-line invoice", lambda: long_invoice(args.lines))]
    print(f"{'invoice':<28}{'pages':>6}{'KiB':>7}{'median ms':>11}{'p95 ms':>9}{'cpu ms':>8}")
    for name, build in cases:
        invoice = build()
        render_invoice_pdf(invoice)  # warm-up
        wall, cpu, pdf = measure(invoice, args.runs)
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
        p95 = statistics.quantiles(wall, n=20)[-1]
        print(f"{name:<28}{pages:>6}{len(pdf) / 1024:>7.1f}"
              f"{statistics.median(wall):>11.1f}{p95:>9.1f}{statistics.median(cpu):>8.1f}")


if __name__ == "__main__":
    main()
