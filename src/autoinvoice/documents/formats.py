"""How numbers, money and dates are written for one seller country: ``Formats``.

Labels stay English; the decimal mark, digit grouping, currency symbol placement, date order
and the name of the tax follow the seller's country. Used by the PDF and the email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.money import Money, exponent

__all__ = ["Formats"]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$",
            "NZD": "NZ$", "INR": "₹", "ILS": "₪", "KRW": "₩", "VND": "₫", "TRY": "₺",
            "PLN": "zł", "BRL": "R$", "MXN": "MX$", "CNY": "CN¥"}
_DECIMAL_COMMA = frozenset("DE AT NL BE LU IT ES PT DK GR TR BR ID SI HR RO RS".split())
_SPACE_GROUPED = frozenset("FR SE NO FI PL CZ SK HU EE LV LT BG".split())
_EU = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO "
                "SE SI SK".split())
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass(frozen=True, slots=True)
class Formats:
    """How numbers, money and dates are written for one seller country (labels stay English)."""

    country: str

    @classmethod
    def for_invoice(cls, invoice: Invoice) -> Formats:
        return cls(invoice.seller.address.country.upper())

    def number(self, value: Decimal, places: int | None = None) -> str:
        """``value`` grouped by thousands; ``places`` fixed, else as many as it has."""
        if places is None:
            whole = value == value.to_integral()
            text = f"{value.quantize(Decimal(1)) if whole else value.normalize():,f}"
        else:
            text = f"{value:,.{places}f}"
        if self.country in _DECIMAL_COMMA:
            return text.replace(",", "_").replace(".", ",").replace("_", ".")
        if self.country in _SPACE_GROUPED:
            return text.replace(",", " ").replace(".", ",")
        if self.country == "CH":
            return text.replace(",", "'")
        return text

    def amount(self, money: Money) -> str:
        """The number alone, at the currency's precision: ``1,234.56``."""
        return self.number(money.amount, exponent(money.currency))

    def money(self, money: Money) -> str:
        """With the currency: ``$1,234.56``, ``1.234,56 €``, ``CHF 1'234.50``."""
        sign, digits = ("-", self.amount(-money)) if money.amount < 0 else ("", self.amount(money))
        symbol = _SYMBOLS.get(money.currency)
        if self.country in _DECIMAL_COMMA or self.country in _SPACE_GROUPED:
            return f"{sign}{digits} {symbol or money.currency}"
        return f"{sign}{symbol}{digits}" if symbol else f"{sign}{money.currency} {digits}"

    def price(self, value: Decimal, currency: str) -> str:
        """A unit price: at least the currency's precision, more when it has more."""
        digits = value.normalize().as_tuple().exponent
        extra = -digits if isinstance(digits, int) else 0
        return self.number(value, max(exponent(currency), extra))

    def rate(self, rate: Decimal) -> str:
        text = self.number(rate * 100)
        return f"{text} %" if self.country in _DECIMAL_COMMA | _SPACE_GROUPED else f"{text}%"

    def date(self, day: date) -> str:
        if self.country in ("US", "CA"):
            return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"
        if self.country in _DECIMAL_COMMA or self.country in _SPACE_GROUPED:
            return f"{day.day:02d}.{day.month:02d}.{day.year}"
        return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"

    def moment(self, when: datetime) -> str:
        """Date and time in the moment's own UTC offset: ``Nov 20, 2026 21:35 (UTC-06:00)``."""
        offset = when.strftime("%z")
        zone = f" (UTC{offset[:3]}:{offset[3:]})" if offset else ""
        return f"{self.date(when.date())} {when:%H:%M}{zone}"

    def tax_label(self) -> str:
        return "VAT" if self.country in _EU or self.country in ("GB", "CH", "NO") else (
            "Sales tax" if self.country == "US" else "Tax")

    def tax_id_label(self) -> str:
        return "VAT ID" if self.country in _EU or self.country == "GB" else "Tax ID"
