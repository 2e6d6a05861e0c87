"""The converters a `copy` block may name, and nothing else.

A service that stores a value otherwise than the monolith names one of
these in the manifest (`{from = "total_cents", convert =
"cents_to_decimal_text"}`); no context brings code of its own to a copy.
Each converter turns a monolith value into the value the service's column
holds, exactly as the database gives it back (verify compares the two), and
most can turn it back, which is how totals are summed in the monolith's
unit whatever the service stores. None stays None.

    cents_to_decimal_text   1234 -> "12.34"   (back: "12.34" -> 1234)
    decimal_text_to_cents   "12.34" -> 1234   (back: 1234 -> "12.34")
    cents_to_decimal        1234 -> Decimal("12.34")   (a Numeric column)
    decimal_to_cents        Decimal("12.34") -> 1234
    to_text                 any value -> str(value)   (no way back)
    to_integer              "42" -> 42                (back: 42 -> "42")

What it does not do: round. A value that a converter cannot represent
exactly (a decimal text with three places, say) raises `ValueError` naming
the value, so a copy never loses a fraction of a cent silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from migrate.kernel import money


@dataclasses.dataclass(frozen=True)
class Converter:
    name: str
    forward: Callable[[Any], Any]
    back: Callable[[Any], Any] | None

    def __call__(self, value: Any) -> Any:
        return None if value is None else self.forward(value)

    def restore(self, value: Any) -> Any:
        """The monolith's value back from the service's."""
        if self.back is None:
            raise ValueError(f"converter {self.name} has no way back")

        return None if value is None else self.back(value)


def _decimal(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount") from None

    if amount != money.quantize(amount):
        raise ValueError(f"{value!r} has more than two decimal places")

    return amount


def _cents(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number of cents")

    return value


def cents_to_decimal_text(value: Any) -> str:
    return money.text(money.from_cents(_cents(value)))


def decimal_text_to_cents(value: Any) -> int:
    return money.to_cents(_decimal(value))


def cents_to_decimal(value: Any) -> Decimal:
    return money.from_cents(_cents(value))


def decimal_to_cents(value: Any) -> int:
    return money.to_cents(_decimal(value))


def to_integer(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


CONVERTERS: dict[str, Converter] = {
    c.name: c
    for c in (
        Converter(
            "cents_to_decimal_text", cents_to_decimal_text, decimal_text_to_cents
        ),
        Converter(
            "decimal_text_to_cents", decimal_text_to_cents, cents_to_decimal_text
        ),
        Converter("cents_to_decimal", cents_to_decimal, decimal_to_cents),
        Converter("decimal_to_cents", decimal_to_cents, cents_to_decimal),
        Converter("to_text", str, None),
        Converter("to_integer", to_integer, str),
    )
}
