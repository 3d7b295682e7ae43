"""How numbers, money and dates are written: ``Formats``, for a seller country and a language.

English documents (the default) follow the seller's country, as invoices always have: the
decimal mark, digit grouping, currency symbol placement and date order of the country where the
seller writes them (``1.234,56 €`` from Germany, ``$1,234.56`` from the US). A tenant that chose
German gets German conventions whatever its country (``1.234,56 €``, ``27.11.2026``), except the
Swiss and Liechtenstein digit grouping (``CHF 1'234.50``), which is what German readers there
expect. Labels are not here: the PDF takes them from its label catalogue (``templates``); the
e-mail still uses the English ``tax_label``. Used by the PDF and the email.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.money import Money, exponent

__all__ = ["Formats", "file_stem"]

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
    """How numbers, money and dates are written for one seller ``country`` (which also picks
    the paper and the kind of tax) in one document ``language`` ("en" or "de")."""

    country: str
    language: str = "en"

    @classmethod
    def for_invoice(cls, invoice: Invoice, language: str = "en") -> Formats:
        return cls(invoice.seller.address.country.upper(), language)

    @property
    def style(self) -> str:
        """The country whose number and date conventions apply."""
        if self.language == "de" and self.country not in ("CH", "LI"):
            return "DE"
        return self.country

    def number(self, value: Decimal, places: int | None = None) -> str:
        """``value`` grouped by thousands; ``places`` fixed, else as many as it has."""
        if places is None:
            whole = value == value.to_integral()
            text = f"{value.quantize(Decimal(1)) if whole else value.normalize():,f}"
        else:
            text = f"{value:,.{places}f}"
        if self.style in _DECIMAL_COMMA:
            return text.replace(",", "_").replace(".", ",").replace("_", ".")
        if self.style in _SPACE_GROUPED:
            return text.replace(",", " ").replace(".", ",")
        if self.style in ("CH", "LI"):
            return text.replace(",", "'")
        return text

    def amount(self, money: Money) -> str:
        """The number alone, at the currency's precision: ``1,234.56``."""
        return self.number(money.amount, exponent(money.currency))

    def money(self, money: Money) -> str:
        """With the currency: ``$1,234.56``, ``1.234,56 €``, ``CHF 1'234.50``."""
        sign, digits = ("-", self.amount(-money)) if money.amount < 0 else ("", self.amount(money))
        symbol = _SYMBOLS.get(money.currency)
        if self.style in _DECIMAL_COMMA or self.style in _SPACE_GROUPED:
            return f"{sign}{digits} {symbol or money.currency}"
        return f"{sign}{symbol}{digits}" if symbol else f"{sign}{money.currency} {digits}"

    def price(self, value: Decimal, currency: str) -> str:
        """A unit price: at least the currency's precision, more when it has more."""
        digits = value.normalize().as_tuple().exponent
        extra = -digits if isinstance(digits, int) else 0
        return self.number(value, max(exponent(currency), extra))

    def rate(self, rate: Decimal) -> str:
        text = self.number(rate * 100)
        return f"{text} %" if self.style in _DECIMAL_COMMA | _SPACE_GROUPED else f"{text}%"

    def date(self, day: date) -> str:
        if self.language == "de":
            return f"{day.day:02d}.{day.month:02d}.{day.year}"
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

    def tax_kind(self) -> str:
        """Which tax the seller charges: "vat", "sales" (US) or "other"."""
        if self.country in _EU or self.country in ("GB", "CH", "NO"):
            return "vat"
        return "sales" if self.country == "US" else "other"

    def tax_label(self) -> str:
        """The tax's English name (the PDF takes the name from its label catalogue)."""
        return {"vat": "VAT", "sales": "Sales tax"}.get(self.tax_kind(), "Tax")

    def tax_id_kind(self) -> str:
        """Which tax number the seller shows: "vat" (EU, GB) or "other"."""
        return "vat" if self.country in _EU or self.country == "GB" else "other"

    def tax_id_label(self) -> str:
        return "VAT ID" if self.tax_id_kind() == "vat" else "Tax ID"

    @staticmethod
    def iban(iban: str) -> str:
        """An IBAN as printed: in groups of four (``DE89 3704 0044 0532 0130 00``)."""
        compact = "".join(iban.split()).upper()
        return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


def file_stem(number: str) -> str:
    """A document number as a safe file name stem: ``RE 2026/0001`` -> ``RE-2026-0001``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", number).strip(".-") or "document"
