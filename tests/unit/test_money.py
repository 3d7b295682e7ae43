from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoinvoice.domain.money import CurrencyError, Money, money_sum

amounts = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=4,
                      allow_nan=False, allow_infinity=False)


def test_amounts_are_quantized_half_up_to_the_minor_unit():
    assert Money(Decimal("36.575"), "USD").amount == Decimal("36.58")
    assert Money(Decimal("0.5"), "JPY").amount == Decimal("1")
    assert Money(Decimal("1.0005"), "KWD").amount == Decimal("1.001")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        Money(0.1, "USD")  # type: ignore[arg-type]


def test_currencies_do_not_mix():
    with pytest.raises(CurrencyError):
        Money.of("1", "USD") + Money.of("1", "EUR")


def test_unknown_currency_is_an_error():
    with pytest.raises(CurrencyError):
        Money.of("1", "XXX")


@given(st.lists(amounts, max_size=30))
def test_sum_of_money_equals_sum_of_minor_units(values):
    monies = [Money(v, "USD") for v in values]
    assert money_sum(monies, "USD").minor == sum(m.minor for m in monies)


@given(amounts)
def test_minor_units_round_trip(value):
    money = Money(value, "EUR")
    assert Money.from_minor(money.minor, "EUR") == money
    assert isinstance(money.minor, int)


@given(amounts, st.decimals(min_value=0, max_value=3, places=4))
def test_times_rounds_once_and_stays_within_half_a_cent(value, factor):
    money = Money(value, "USD")
    exact = money.amount * factor
    assert abs(money.times(factor).amount - exact) <= Decimal("0.005")
