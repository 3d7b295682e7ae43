"""Money: a Decimal amount quantized to its currency's minor unit.

Every amount the project handles is a ``Money``. The amount is always quantized to the
currency's ISO 4217 exponent with ``ROUNDING`` (half-up, "commercial rounding", the rule
invoices are read with). Arithmetic between two ``Money`` values of the same currency is
exact; multiplying by a ``Decimal`` rounds once, at the end. Amounts cross the edges of the
system (database, JSON, vendor APIs) as integer minor units or as strings, never as float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

ROUNDING = ROUND_HALF_UP

# ISO 4217 exponents that differ from 2, plus the common 2-digit ones we accept.
_EXPONENTS: dict[str, int] = {
    "BHD": 3, "CLP": 0, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "OMR": 3,
    "TND": 3, "UGX": 0, "VND": 0, "XAF": 0, "XOF": 0, "HUF": 2,
}
_TWO_DIGIT = frozenset(
    "AED AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD ILS INR MXN MYR NOK NZD PLN RON SAR SEK "
    "SGD THB TRY USD ZAR".split()
)
KNOWN_CURRENCIES = frozenset(_EXPONENTS) | _TWO_DIGIT


class CurrencyError(ValueError):
    """An unknown currency code, or arithmetic across two currencies."""


def exponent(currency: str) -> int:
    """The number of minor-unit digits of ``currency`` (2 for USD, 0 for JPY)."""
    if currency in _EXPONENTS:
        return _EXPONENTS[currency]
    if currency in _TWO_DIGIT:
        return 2
    raise CurrencyError(f"unknown currency {currency!r}")


_QUANTA: dict[str, Decimal] = {}


def _quantum(currency: str) -> Decimal:
    """The minor unit of ``currency`` as a Decimal exponent (0.01 for USD), cached: this is on
    every line of every invoice."""
    quantum = _QUANTA.get(currency)
    if quantum is None:
        quantum = _QUANTA[currency] = Decimal(1).scaleb(-exponent(currency))
    return quantum


def quantize(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to the minor unit of ``currency``."""
    return amount.quantize(_quantum(currency), rounding=ROUNDING)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money amount must be Decimal, got {type(self.amount).__name__}")
        object.__setattr__(self, "amount", quantize(self.amount, self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        return cls(Decimal(amount), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        return cls(Decimal(minor).scaleb(-exponent(currency)), currency)

    @property
    def minor(self) -> int:
        """The amount in integer minor units (cents)."""
        return int(self.amount.scaleb(exponent(self.currency)))

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def times(self, factor: Decimal) -> Money:
        """``self * factor``, rounded once to the minor unit."""
        return Money(self.amount * factor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def money_sum(items: list[Money] | tuple[Money, ...], currency: str) -> Money:
    """The exact sum (every item is already in minor units, so no rounding happens)."""
    total = Decimal(0)
    for item in items:
        if item.currency != currency:
            raise CurrencyError(f"cannot combine {currency} and {item.currency}")
        total += item.amount
    return Money(total, currency)
