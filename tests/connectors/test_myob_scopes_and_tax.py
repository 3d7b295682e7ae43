"""MYOB as a key made since March 2025 meets it, on an Australian company file: the
``sme-*`` scope of every endpoint family we call (``sme-general-ledger`` for accounts and tax
codes), the file learned from the consent redirect, and each tax outcome on its Australian
code -- or refused, naming the line, when GST has no code for it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pytest

from autoinvoice.connectors.base import StaticTokens
from autoinvoice.connectors.errors import AuthError, PermanentError
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.domain.invoice import TaxCategory
from autoinvoice.sandbox.myob import CLIENT_ID, MyobSandbox
from tests.connectors.consent import client_for, consent
from tests.connectors.test_myob import cf_values, connector, create, make_invoice, make_line

#: what ``connect myob`` asked for before: no general ledger (accounts, tax codes)
WITHOUT_LEDGER = ("sme-company-file", "sme-contacts-customer", "sme-sales")


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


def test_connect_asks_for_sme_general_ledger_and_learns_the_file_from_the_redirect() -> None:
    core = MyobSandbox()
    tokens, values = consent(client_for("myob", core, api_origin="https://api.myob.com",
                                        client=(CLIENT_ID, "myob-demo-secret")))
    assert set(str(tokens.scope).split()) == {"sme-company-file", "sme-contacts-customer",
                                             "sme-sales", "sme-general-ledger"}
    assert "company_file_uri" not in tokens.extra
    assert values == {"company_file_uri": f"https://api.myob.com{core.file.uri}"}
    create(connector(core, StaticTokens(tokens.access_token, values)), make_invoice())
    assert len(core.invoices()) == 1


def test_an_invoice_needs_sme_general_ledger_for_its_tax_codes() -> None:
    core = MyobSandbox()
    old = core.oauth.issue(WITHOUT_LEDGER)["access_token"]
    with pytest.raises(AuthError) as refused:
        create(connector(core, StaticTokens(old, cf_values(core))), make_invoice())
    assert refused.value.status == 403
    assert "sme-general-ledger" in str(refused.value)
    assert core.invoices() == []


def _with(category: TaxCategory, rate: str, description: str) -> object:
    return dataclasses.replace(make_line(description, "1", "100.00", rate),
                               tax_category=category)


def test_each_tax_outcome_goes_on_its_australian_code() -> None:
    # given one line per outcome an Australian invoice can carry
    core = MyobSandbox()
    lines = [_with(TaxCategory.STANDARD, "0.1", "standard"),
             _with(TaxCategory.STANDARD, "0", "untaxed labour"),
             _with(TaxCategory.ZERO, "0", "zero-rated"),
             _with(TaxCategory.EXPORT, "0", "export"),
             _with(TaxCategory.EXEMPT, "0", "exempt"),
             _with(TaxCategory.NOT_SUBJECT, "0", "out of scope")]
    # when
    remote = create(connector(core), make_invoice(*lines))  # type: ignore[arg-type]
    # then
    codes = {uid: c["Code"] for uid, c in core.file.tax_codes.items()}
    stored = core.get_invoice(remote.id)
    assert [(line["Description"].split(" (")[0], codes[line["TaxCode"]["UID"]])
            for line in stored["Lines"]] == [
        ("standard", "GST"), ("untaxed labour", "FRE"), ("zero-rated", "FRE"),
        ("export", "EXP"), ("exempt", "ITS"), ("out of scope", "N-T")]
    assert remote.total.amount == Decimal("610.00")


@pytest.mark.parametrize(("category", "rate", "why"), [
    (TaxCategory.REVERSE_CHARGE, "0", "Australian GST has no sales tax code for it"),
    (TaxCategory.INTRA_COMMUNITY, "0", "Australian GST has no sales tax code for it"),
    (TaxCategory.STANDARD, "0.085", "the file's GST code is 10%"),
    (TaxCategory.STANDARD, "0.19", "the file's GST code is 10%"),
    (TaxCategory.STANDARD, "0.20", "outcome S at 20% (the file's GST code is 10%"),
])
def test_an_outcome_without_an_australian_code_is_refused_before_anything_is_created(
        category: TaxCategory, rate: str, why: str) -> None:
    core = MyobSandbox()
    invoice = make_invoice(_with(category, rate, "Compressor service"))  # type: ignore[arg-type]
    with pytest.raises(PermanentError) as refused:
        create(connector(core), invoice)
    assert refused.value.code == "no_tax_code"
    assert "'Compressor service'" in str(refused.value)
    assert why in str(refused.value)
    assert core.invoices() == []
