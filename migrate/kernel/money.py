"""Money is decimal; amounts are stored as integer cents.

A line's amount is unit price x quantity x (1 - discount), rounded half-even
to the cent once per line. Nothing here ever touches a float except
`from_float`, which exists for input that arrives as one (the Northwind dump
stores prices as `real`) and goes through its shortest decimal repr first.
"""

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")


class MoneyError(ValueError):
    """An amount that is not a valid sum of money."""


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def from_float(value: float) -> Decimal:
    # repr gives the shortest decimal that round-trips: 14.399999618530273
    # stored as real comes back as 14.4 rather than its binary expansion.
    return quantize(Decimal(repr(float(value))))


def parse(text: object) -> Decimal:
    """An amount written by a client: a string or integer, never a float."""
    if isinstance(text, bool) or isinstance(text, float):
        raise MoneyError(f"amount {text!r} must be a decimal string such as '12.50'")

    try:
        amount = Decimal(str(text))
    except ArithmeticError:
        raise MoneyError(f"amount {text!r} is not a number") from None

    if not amount.is_finite() or amount != quantize(amount):
        raise MoneyError(f"amount {text!r} must have at most two decimal places")

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
