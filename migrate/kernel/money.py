"""Money is decimal; amounts are stored as integer cents.

A line's amount is unit price x quantity x (1 - discount), rounded half-even
to the cent once per line. Nothing here ever touches a float except
`from_float`, which exists for input that arrives as one (the Northwind dump
stores prices as `real`) and goes through its shortest decimal repr first.
"""

import re
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
# Digits with an optional fraction: no exponent ('1e3' is not 1000.00 to
# everyone who reads it), no NaN or Infinity, no spaces.
_PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class MoneyError(ValueError):
    """An amount that is not a valid sum of money."""


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def from_float(value: float) -> Decimal:
    # repr gives the shortest decimal that round-trips: 14.399999618530273
    # stored as real comes back as 14.4 rather than its binary expansion.
    return quantize(Decimal(repr(float(value))))


def parse(text: object, what: str = "amount") -> Decimal:
    """An amount written by a client: a plain decimal string or an integer,
    never a float, an exponent or NaN; `what` names it in the error."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise MoneyError(f"{what} {text!r} must be a decimal string such as '12.50'")

    if isinstance(text, str) and not _PLAIN.fullmatch(text):
        raise MoneyError(
            f"{what} {text!r} is not a plain decimal number such as '12.50'"
        )

    amount = Decimal(text)
    if amount != quantize(amount):
        raise MoneyError(f"{what} {text!r} must have at most two decimal places")

    return amount


def to_cents(amount: Decimal) -> int:
    return int(quantize(amount) * 100)


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def line_amount(unit_price: Decimal, quantity: int, discount: Decimal) -> Decimal:
    return quantize(unit_price * quantity * (1 - discount))


def text(amount: Decimal) -> str:
    """How amounts travel in JSON: a string, so no client parses a float."""
    return str(quantize(amount))
