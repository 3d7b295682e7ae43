"""QuickBooks Online as a real US company runs it: automated sales tax (AST) on, numbers typed as
Finance.xsd types them, the accounting scope checked on every call. The stand-in is first shown
doing to a request what QuickBooks does (the old connector's request: our tax code, no explicit
tax, amounts as strings), then the connector is held to it."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from autoinvoice.connectors.base import IdempotencyKeys, StaticTokens
from autoinvoice.connectors.errors import AuthError, PermanentError
from autoinvoice.connectors.quickbooks import QuickBooksConnector
from autoinvoice.domain.invoice import DocumentKind
from autoinvoice.domain.job import Address, Site
from autoinvoice.sandbox.quickbooks import AUTHORIZE_PATH, TOKEN_PATH, QuickBooksSandbox
from autoinvoice.sandbox.quickbooks.query import dumps, loads
from tests.connectors.test_quickbooks import (
    LINES,
    create,
    make_line,
    qb_invoice,
    settings_for,
)
from tests.helpers import VirtualTimer

ACCOUNTING = "com.intuit.quickbooks.accounting"
PAYMENT = "com.intuit.quickbooks.payment"
OKC_SITE = Site(id="S-9", name="OKC plant", address=Address(
    line1="3100 S Meridian Ave", city="Oklahoma City", region="OK", postal_code="73119",
    country="US"))


def call(core: QuickBooksSandbox, method: str, path: str, body: Any = None,
         token: str | None = None, raw: bytes | None = None) -> tuple[int, Any]:
    token = token or core.issue()["access_token"]
    payload = raw if raw is not None else (dumps(body) if body is not None else b"")
    status, _, answer = core.handle(method, f"/v3/company/{core.realm_id}{path}",
                                    "minorversion=75", {"Authorization": f"Bearer {token}"},
                                    payload)
    return status, loads(answer) if answer else None


def seeded(core: QuickBooksSandbox) -> tuple[str, str]:
    """A customer in Tulsa and a Parts item, as ids."""
    _, customer = call(core, "POST", "/customer", {"DisplayName": "Acme Plastics Inc.",
                                                   "BillAddr": {"City": "Tulsa",
                                                                "CountrySubDivisionCode": "OK"}})
    _, item = call(core, "POST", "/item", {"Name": "Parts", "Type": "NonInventory",
                                           "IncomeAccountRef": {"value": "1"}})
    return customer["Customer"]["Id"], item["Item"]["Id"]


def invoice_body(customer: str, item: str, **extra: Any) -> dict[str, Any]:
    return {"CustomerRef": {"value": customer}, "Line": [{
        "DetailType": "SalesItemLineDetail", "Amount": Decimal("100.00"),
        "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": Decimal(1),
                                "UnitPrice": Decimal(100), "TaxCodeRef": {"value": "TAX"}}}],
            **extra}


def placeholder(core: QuickBooksSandbox) -> str:
    return next(c["Id"] for c in core.find("TaxCode") if c.get("Name") == "Tulsa, OK")


@pytest.fixture
def core() -> QuickBooksSandbox:
    return QuickBooksSandbox()


@pytest.fixture
def recorded() -> list[Any]:
    return []


@pytest.fixture
def connector(core, recorded) -> QuickBooksConnector:
    tokens = StaticTokens(core.issue()["access_token"], core.token_values())
    return QuickBooksConnector(settings_for(core, tokens, recorded, VirtualTimer()))


# ---------------------------------------------------------------------------------------------
# The stand-in does what QuickBooks does


def test_the_standin_company_is_on_automated_sales_tax(core):
    status, answer = call(core, "GET", "/preferences")
    assert status == 200
    assert answer["Preferences"]["TaxPrefs"] == {"UsingSalesTax": True,
                                                 "PartnerTaxEnabled": True}


def test_ast_replaces_our_tax_code_and_taxes_by_its_own_rates_without_an_explicit_amount(core):
    # given: what the old connector sent, a tax code with our 8.5 % and no TotalTax
    customer, item = seeded(core)
    _, made = call(core, "POST", "/taxservice/taxcode", {"TaxCode": "autoinvoice 8.5%",
                   "TaxRateDetails": [{"TaxRateName": "ours", "RateValue": Decimal("8.5"),
                                       "TaxAgencyId": "3", "TaxApplicableOn": "Sales"}]})
    body = invoice_body(customer, item, TxnTaxDetail={"TxnTaxCodeRef": {
        "value": made["TaxCodeId"]}})
    # when
    status, answer = call(core, "POST", "/invoice", body)
    # then: AST's Tulsa rates (4.5 + 0.367 + 3.65 %), not ours: 8.52 instead of 8.50
    assert status == 200
    detail = answer["Invoice"]["TxnTaxDetail"]
    assert detail["TxnTaxCodeRef"]["value"] == placeholder(core)
    assert detail["TotalTax"] == Decimal("8.52")
    assert answer["Invoice"]["TotalAmt"] == Decimal("108.52")


def test_ast_taxes_the_ship_to_address(core):
    customer, item = seeded(core)
    okc = {"City": "Oklahoma City", "CountrySubDivisionCode": "OK", "Country": "US"}
    body = invoice_body(customer, item, ShipAddr=okc, TxnTaxDetail={"TxnTaxCodeRef": {
        "value": placeholder(core)}})
    _, answer = call(core, "POST", "/invoice", body)
    assert answer["Invoice"]["TxnTaxDetail"]["TotalTax"] == Decimal("8.63")  # 4.5 + 4.125 %


def test_ast_honours_an_explicit_total_tax_and_prorates_it_over_its_rates(core):
    customer, item = seeded(core)
    body = invoice_body(customer, item, TxnTaxDetail={
        "TxnTaxCodeRef": {"value": placeholder(core)}, "TotalTax": Decimal("8.50"),
        "UseAutomatedSalesTax": False})
    _, answer = call(core, "POST", "/invoice", body)
    detail = answer["Invoice"]["TxnTaxDetail"]
    assert detail["TotalTax"] == Decimal("8.50")
    assert sum(line["Amount"] for line in detail["TaxLine"]) == Decimal("8.50")
    assert len(detail["TaxLine"]) == 3
    assert answer["Invoice"]["TotalAmt"] == Decimal("108.50")


def test_ast_keeps_its_own_amount_when_the_company_allows_no_partner_override(core):
    core.company.ast.allow_partner_tax_override = False
    customer, item = seeded(core)
    body = invoice_body(customer, item, TxnTaxDetail={
        "TxnTaxCodeRef": {"value": placeholder(core)}, "TotalTax": Decimal("8.50")})
    _, answer = call(core, "POST", "/invoice", body)
    assert answer["Invoice"]["TxnTaxDetail"]["TotalTax"] == Decimal("8.52")


@pytest.mark.parametrize(("where", "value"), [
    ("Amount", "100.00"), ("Qty", "1"), ("UnitPrice", "100")])
def test_a_string_where_finance_xsd_has_a_decimal_is_a_validation_fault(core, where, value):
    customer, item = seeded(core)
    body = invoice_body(customer, item)
    line = body["Line"][0]
    (line if where == "Amount" else line["SalesItemLineDetail"])[where] = value
    status, answer = call(core, "POST", "/invoice", body)
    assert status == 400
    error = answer["Fault"]["Error"][0]
    assert (answer["Fault"]["type"], error["code"], error["element"]) == (
        "ValidationFault", "2010", where if where != "Amount" else "Line.Amount")
    assert "String value" in error["Detail"]


def test_a_token_without_the_accounting_scope_is_refused_with_403_3100(core):
    token = core.issue(scopes=(PAYMENT,))["access_token"]
    status, answer = call(core, "GET", "/preferences", token=token)
    assert status == 403
    assert answer["fault"]["error"][0]["code"] == "3100"
    assert answer["fault"]["error"][0]["detail"] == \
        "The access token does not have sufficient scope"


def test_the_code_flow_grants_the_scopes_consented_to_and_refresh_keeps_them(core):
    def connect(scope: str) -> dict[str, Any]:
        query = urlencode({"client_id": "demo-client", "response_type": "code", "scope": scope,
                           "redirect_uri": "http://127.0.0.1:8765/callback", "state": "s"})
        _, headers, _ = core.handle("GET", AUTHORIZE_PATH, query, {}, b"")
        redirect = dict(parse_qsl(urlsplit(headers["Location"]).query))
        assert redirect["realmId"] == core.realm_id  # the company comes on the redirect
        form = urlencode({"grant_type": "authorization_code", "code": redirect["code"],
                          "redirect_uri": "http://127.0.0.1:8765/callback",
                          "client_id": "demo-client", "client_secret": "demo-secret"})
        _, _, body = core.handle("POST", TOKEN_PATH, "", {}, form.encode())
        pair: dict[str, Any] = json.loads(body)
        assert "realm_id" not in pair
        assert "realmId" not in pair
        return pair

    openid = connect("openid email")
    assert call(core, "GET", "/preferences", token=openid["access_token"])[0] == 403
    pair = connect(ACCOUNTING)
    assert call(core, "GET", "/preferences", token=pair["access_token"])[0] == 200
    form = urlencode({"grant_type": "refresh_token", "refresh_token": pair["refresh_token"],
                      "client_id": "demo-client", "client_secret": "demo-secret"})
    _, _, body = core.handle("POST", TOKEN_PATH, "", {}, form.encode())
    assert call(core, "GET", "/preferences", token=json.loads(body)["access_token"])[0] == 200


# ---------------------------------------------------------------------------------------------
# The connector on an AST company


def test_our_tax_and_total_survive_automated_sales_tax(connector, core):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    stored = core.get_invoice(remote.id)
    assert remote.total == invoice.total
    assert stored["TxnTaxDetail"]["TotalTax"] == invoice.tax_total.amount
    assert core.count("TaxCode") == 3  # TAX, NON and AST's own: we create none


def test_the_explicit_tax_goes_with_a_placeholder_code_and_ast_rates_off(connector, recorded):
    create(connector, qb_invoice())
    sent = posted(recorded, "/invoice")
    assert sent["TxnTaxDetail"] == {"TxnTaxCodeRef": {"value": sent["TxnTaxDetail"][
        "TxnTaxCodeRef"]["value"]}, "TotalTax": Decimal("31.30"), "UseAutomatedSalesTax": False}


def test_ship_to_is_the_job_site_and_ship_from_the_seller(connector, core, recorded):
    invoice = qb_invoice()
    invoice = dataclasses.replace(invoice, job=dataclasses.replace(invoice.job, site=OKC_SITE))
    remote = create(connector, invoice)
    sent = posted(recorded, "/invoice")
    assert sent["ShipAddr"] == {"Line1": "3100 S Meridian Ave", "City": "Oklahoma City",
                                "CountrySubDivisionCode": "OK", "PostalCode": "73119",
                                "Country": "US"}
    assert sent["ShipFromAddr"]["City"] == "Tulsa"
    assert remote.total == invoice.total


def test_without_a_site_ship_to_is_the_billing_address(connector, recorded):
    create(connector, qb_invoice())
    assert posted(recorded, "/invoice")["ShipAddr"]["PostalCode"] == "74107"


def test_two_rates_go_through_as_one_explicit_total_under_ast(connector, core):
    invoice = qb_invoice(*LINES, make_line("Motor", "1", "689.99", "0.0625"))
    remote = create(connector, invoice)
    assert remote.total == invoice.total


def test_a_credit_memo_on_an_ast_company_keeps_our_tax(connector, core):
    invoice = qb_invoice()
    remote = create(connector, invoice)
    credit = dataclasses.replace(invoice, kind=DocumentKind.CREDIT_NOTE, number="CN-1",
                                 corrects=invoice.number)
    note = connector.credit_invoice(remote.id, credit, IdempotencyKeys.derive(
        "northwind", "WO-T-1", 1, "credit_note"))
    assert note.total == invoice.total
    assert connector.fetch_status(remote.id).balance.is_zero()


def test_when_ast_overrides_our_amount_the_platform_total_differs(connector, core):
    # the company refuses partner overrides: QuickBooks' total is AST's, and the pipeline
    # (which compares totals) holds the invoice instead of sending it
    core.company.ast.allow_partner_tax_override = False
    invoice = qb_invoice()
    remote = create(connector, invoice)
    assert remote.total != invoice.total
    assert remote.total.amount - invoice.total.amount == Decimal("0.06")


def test_amounts_quantities_and_rates_are_json_numbers(connector, recorded):
    create(connector, qb_invoice())
    line = posted(recorded, "/invoice")["Line"][3]
    assert line["Amount"] == Decimal("155.85")
    assert (line["SalesItemLineDetail"]["Qty"], line["SalesItemLineDetail"]["UnitPrice"]) == (
        5, Decimal("31.17"))
    raw = next(r.body for r in recorded if r.url.split("?")[0].endswith("/invoice"))
    assert '"Amount":155.85' in raw
    assert '"Qty":5,' in raw


def test_sales_tax_switched_off_refuses_a_taxed_invoice_before_creating(connector, core):
    core.company.preferences["TaxPrefs"] = {"UsingSalesTax": False, "PartnerTaxEnabled": False}
    with pytest.raises(PermanentError, match="sales tax is switched off"):
        create(connector, qb_invoice())
    assert core.count("Invoice") == 0


def test_a_connection_without_the_accounting_scope_is_an_auth_error(core):
    tokens = StaticTokens(core.issue(scopes=(PAYMENT,))["access_token"], core.token_values())
    connector = QuickBooksConnector(settings_for(core, tokens, [], VirtualTimer()))
    with pytest.raises(AuthError) as caught:
        connector.check_auth()
    assert (caught.value.status, caught.value.code) == (403, "3100")


def posted(recorded: list[Any], tail: str) -> dict[str, Any]:
    body = next(r.body for r in recorded
                if r.method == "POST" and urlsplit(r.url).path.endswith(tail))
    found: dict[str, Any] = json.loads(body, parse_float=Decimal)
    return found


def test_the_placeholder_tax_code_is_looked_up_once_per_connector(connector, core):
    create(connector, qb_invoice())
    before = len(core.requests)
    create(connector, qb_invoice(job_id="WO-T-2", number="NW-2026-0002"))
    tax_queries = [q for _, q in core.requests[before:] if "Tax" in q]
    assert tax_queries == []


def test_a_non_us_edition_is_refused_before_any_item_or_invoice_is_created(connector, core):
    core.company.address["Country"] = "GB"  # a UK company: VAT codes per line, no TAX/NON
    with pytest.raises(PermanentError, match="GB edition") as caught:
        create(connector, qb_invoice())
    assert caught.value.code == "non_us_edition"
    assert (core.count("Invoice"), core.count("Item")) == (0, 0)
