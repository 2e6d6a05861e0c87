from decimal import Decimal

import pytest

from migrate.kernel import money
from monolith.billing.domain import Invoice, InvoiceLine, PaymentRejected


def test_a_line_is_rounded_half_even_to_the_cent() -> None:
    # 0.125 and 0.135 sit exactly between two cents: half-even goes to 0.12, 0.14.
    assert money.line_amount(Decimal("0.25"), 1, Decimal("0.5")) == Decimal("0.12")
    assert money.line_amount(Decimal("0.27"), 1, Decimal("0.5")) == Decimal("0.14")


def test_a_price_read_as_a_real_is_quantized_from_its_decimal_text() -> None:
    assert money.from_float(14.399999618530273) == Decimal("14.40")


def test_an_invoice_is_the_sum_of_its_rounded_lines_plus_freight() -> None:
    invoice = Invoice(
        invoice_id=10248,
        customer_id="VINET",
        issued_at="2026-01-01",
        freight=Decimal("32.38"),
        lines=[
            InvoiceLine(11, Decimal("14.00"), 12, Decimal("0")),
            InvoiceLine(42, Decimal("9.80"), 10, Decimal("0")),
            InvoiceLine(72, Decimal("34.80"), 5, Decimal("0")),
        ],
    )

    assert invoice.total == Decimal("472.38")


def test_a_client_amount_must_be_a_decimal_string_not_a_float() -> None:
    with pytest.raises(money.MoneyError, match="12.5"):
        money.parse(12.5)
    with pytest.raises(money.MoneyError, match="two decimal places"):
        money.parse("1.005")
    assert money.parse("12.50") == Decimal("12.50")


@pytest.mark.parametrize("written", ["1e3", "NaN", "Infinity", " 12.50", "12,50",
                                     "0x10", "", "12.", ".5"])
def test_a_client_amount_is_plain_digits_with_an_optional_fraction(
    written: str,
) -> None:
    with pytest.raises(money.MoneyError, match="is not a plain decimal number"):
        money.parse(written, "freight")


def test_an_amount_s_error_names_the_field_it_came_from() -> None:
    with pytest.raises(money.MoneyError, match="^freight 'abc' is not"):
        money.parse("abc", "freight")


def test_a_payment_above_the_balance_is_rejected_with_both_amounts() -> None:
    invoice = Invoice(
        1,
        "ALFKI",
        "2026-01-01",
        Decimal("0.00"),
        [InvoiceLine(1, Decimal("10.00"), 1, Decimal("0"))],
    )

    with pytest.raises(PaymentRejected, match="10.01.*10.00"):
        invoice.pay("p1", Decimal("10.01"), "now")
