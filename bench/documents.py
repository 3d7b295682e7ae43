"""Milliseconds per invoice for each document: the PDF, UBL, CII, XRechnung, Factur-X (the
PDF with the CII embedded as PDF/A-3), the CEN EN 16931 check of the XML, and the full check
of each e-invoice format (every rule set that applies: CEN, Peppol BIS 3, KoSIT's XRechnung),
for the US and the German example invoices (one page each), N times each in one process.

One-off costs (fonts; compiling the rules: the Schematron sources cold into an empty cache,
then again from the cache, each including Saxon's compile of the XSLT) are paid before the
timed runs and printed separately. Wall-clock median and p95 are reported.

    .venv/bin/python bench/documents.py [-n 100] [--validations 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from autoinvoice.documents import en16931, schematron
from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.facturx import to_facturx
from autoinvoice.documents.pdf import preload_fonts, render_invoice_pdf
from autoinvoice.documents.ubl import to_ubl
from autoinvoice.documents.xrechnung import to_xrechnung
from autoinvoice.domain.invoice import Invoice

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.unit.test_pdf import german_invoice, us_invoice  # noqa: E402


def timed(work: Callable[[], object], runs: int) -> list[float]:
    work()  # warm-up
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, ms: list[float]) -> None:
    p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 20 else max(ms)
    print(f"  {name:<34}{statistics.median(ms):>10.1f}{p95:>9.1f}{len(ms):>7}")


def bench(label: str, invoice: Invoice, runs: int, validations: int, language: str) -> None:
    print(f"{label}: {len(invoice.lines)} lines, PDF in {language!r}")
    print(f"  {'document':<34}{'median ms':>10}{'p95 ms':>9}{'runs':>7}")
    pdf = render_invoice_pdf(invoice, language=language)
    row("PDF (one page)", timed(lambda: render_invoice_pdf(invoice, language=language), runs))
    row("UBL 2.1 (Peppol BIS 3.0)", timed(lambda: to_ubl(invoice), runs))
    row("CII D16B (EN 16931)", timed(lambda: to_cii(invoice), runs))
    row("XRechnung 3.0 (CII)", timed(lambda: to_xrechnung(invoice), runs))
    row("Factur-X: embed CII in the PDF", timed(lambda: to_facturx(invoice, pdf), runs))
    row("Factur-X: PDF + embed", timed(
        lambda: to_facturx(invoice, render_invoice_pdf(invoice, language=language)), runs))
    if en16931.rules_available():
        ubl, cii = to_ubl(invoice), to_cii(invoice)
        row("EN 16931 check, UBL", timed(
            lambda: en16931.validate(ubl, en16931.Syntax.UBL), validations))
        row("EN 16931 check, CII", timed(
            lambda: en16931.validate(cii, en16931.Syntax.CII), validations))
        if not en16931.missing_rules(tuple(schematron.RuleSet)):
            _full_checks(invoice, validations)
    else:
        print("  (EN 16931 rules absent: checks not measured)")


def _full_checks(invoice: Invoice, validations: int) -> None:
    documents = {"ubl": to_ubl(invoice), "cii": to_cii(invoice),
                 "xrechnung": to_xrechnung(invoice),
                 "xrechnung-ubl": to_xrechnung(invoice, en16931.Syntax.UBL)}
    for fmt, xml in documents.items():
        sets = len(en16931.FORMAT_RULES[fmt])
        row(f"all rules, {fmt} ({sets} set{'s' if sets > 1 else ''})", timed(
            lambda xml=xml, fmt=fmt: en16931.validate_format(xml, fmt), validations))


def _compile_times() -> str:
    """The Schematron rule sets compiled to XSLT into an empty cache (cold: SchXslt, and
    KoSIT's build for XRechnung), then found in it (cached); and Saxon's compile of every
    rule set's XSLT, which each process pays once either way."""
    sets = tuple(schematron.RuleSet)
    if en16931.missing_rules(sets):
        return ""
    rules = en16931.resolve_rules_dir().resolve()
    sources = [r for r in sets if not r.value.startswith("cen-")]
    with tempfile.TemporaryDirectory() as cache:
        os.environ[schematron.CACHE_ENV] = cache
        times = []
        for _ in ("cold", "cached"):
            start = time.perf_counter()
            for rule_set in sources:
                schematron.compiled_path(rule_set, rules)
            times.append((time.perf_counter() - start) * 1000)
        schematron.compiled.cache_clear()
        start = time.perf_counter()
        for rule_set in sets:
            schematron.compiled(rule_set, rules)
        times.append((time.perf_counter() - start) * 1000)
        del os.environ[schematron.CACHE_ENV]
    schematron.compiled.cache_clear()
    return (f"; Schematron to XSLT ({len(sources)} rule sets) cold {times[0]:.0f} ms, "
            f"cached {times[1]:.0f} ms; Saxon compile of all {len(sets)} {times[2]:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=100)
    parser.add_argument("--validations", type=int, default=50)
    args = parser.parse_args()
    start = time.perf_counter()
    preload_fonts()
    print(f"one-off: font preparation {(time.perf_counter() - start) * 1000:.0f} ms", end="")
    if en16931.rules_available():
        start = time.perf_counter()
        en16931.validate(to_ubl(us_invoice()), en16931.Syntax.UBL)
        en16931.validate(to_cii(us_invoice()), en16931.Syntax.CII)
        print(f", compiling the EN 16931 rules {(time.perf_counter() - start) * 1000:.0f} ms"
              + _compile_times())
    else:
        print()
    bench("US example (USD, Letter)", us_invoice(), args.runs, args.validations, "en")
    bench("German example (EUR, A4)", german_invoice(), args.runs, args.validations, "de")


if __name__ == "__main__":
    main()
