"""Reading the Northwind PostgreSQL dump: the real file, and small damaged copies.

Tests on the real dump skip when it is absent, except under CI=true, where
its absence fails them. Damaged dumps are written into tmp_path so each test
knows the exact line it broke.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from migrate.seed.dataset import Dataset, OrderLine, Product
from migrate.seed.errors import DumpError, SeedError
from migrate.seed.northwind import read_dump

REPO = Path(__file__).resolve().parents[2]
REAL_DUMP = REPO.parent / "shared" / "data" / "northwind" / "northwind.sql"

SMALL_DUMP = (
    "--",
    "-- PostgreSQL database dump",
    "--",
    "",
    "SET client_encoding = 'UTF8';",
    "SET standard_conforming_strings = on;",
    "",
    "CREATE TABLE order_details (",
    "    order_id smallint NOT NULL,",
    "    product_id smallint NOT NULL,",
    "    unit_price real NOT NULL,",
    "    quantity smallint NOT NULL,",
    "    discount real NOT NULL",
    ");",
    "",
    (
        "INSERT INTO orders VALUES (10248, 'VINET', 5, '1996-07-04', '1996-08-01', "
        "'1996-07-16', 3, 32.3800011, 'Vins et alcools Chevalier', "
        "'59 rue de l''Abbaye', 'Reims', NULL, '51100', 'France');"
    ),
    (
        "INSERT INTO orders VALUES (10249, 'TOMSP', 6, '1996-07-05', '1996-08-16', "
        "NULL, 1, 11.6099997, 'Toms Spezialitäten', 'Luisenstr. 48', 'Münster', "
        "NULL, '44087', 'Germany');"
    ),
    "INSERT INTO order_details VALUES (10248, 11, 14, 12, 0);",
    "INSERT INTO order_details VALUES (10248, 42, 9.80000019, 10, 0);",
    "INSERT INTO order_details VALUES (10249, 14, 18.6000004, 9, 0.150000006);",
    "INSERT INTO employees VALUES (1, 'Davolio', 'Nancy');",
    "",
    "ALTER TABLE ONLY orders",
    "    ADD CONSTRAINT pk_orders PRIMARY KEY (order_id);",
)


@pytest.fixture(scope="module")
def northwind() -> Dataset:
    if not REAL_DUMP.is_file():
        reason = f"the Northwind dump is not at {REAL_DUMP}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must provide it")
        pytest.skip(reason)

    return read_dump(REAL_DUMP)


def write_dump(tmp_path: Path, lines: list[str] | tuple[str, ...]) -> Path:
    dump = tmp_path / "northwind.sql"
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dump


def index_of(lines: list[str], start: str) -> int:
    found = [n for n, line in enumerate(lines) if line.startswith(start)]
    assert len(found) == 1, f"{start!r} starts {len(found)} lines"
    return found[0]


def refusal(dump: Path) -> DumpError:
    with pytest.raises(DumpError) as caught:
        read_dump(dump)
    return caught.value


# The real dump


def test_the_real_dump_gives_every_row_the_kit_loads(northwind: Dataset) -> None:
    assert northwind.counts() == {
        "categories": 8,
        "suppliers": 29,
        "products": 77,
        "customers": 91,
        "shippers": 6,
        "orders": 830,
        "order_lines": 2155,
    }


def test_order_10248_keeps_its_freight_and_lines_to_the_cent(
    northwind: Dataset,
) -> None:
    order = next(o for o in northwind.orders if o.order_id == 10248)
    lines = [line for line in northwind.order_lines if line.order_id == 10248]

    assert order.freight == Decimal("32.38")
    assert lines == [
        OrderLine(10248, 11, Decimal("14.00"), 12, Decimal("0.00")),
        OrderLine(10248, 42, Decimal("9.80"), 10, Decimal("0.00")),
        OrderLine(10248, 72, Decimal("34.80"), 5, Decimal("0.00")),
    ]


def test_a_discount_stored_as_0_150000006_reads_as_0_15(northwind: Dataset) -> None:
    line = next(
        line
        for line in northwind.order_lines
        if (line.order_id, line.product_id) == (10250, 51)
    )

    assert line.discount == Decimal("0.15")
    assert line.unit_price == Decimal("42.40")


def test_a_product_reads_with_its_quote_price_and_flag(northwind: Dataset) -> None:
    product = next(p for p in northwind.products if p.product_id == 5)

    assert product == Product(
        product_id=5,
        name="Chef Anton's Gumbo Mix",
        supplier_id=2,
        category_id=2,
        quantity_per_unit="36 boxes",
        unit_price=Decimal("21.35"),
        units_in_stock=0,
        discontinued=True,
    )


def test_customer_ids_are_five_letters_without_padding(northwind: Dataset) -> None:
    ids = {customer.customer_id for customer in northwind.customers}

    assert all(len(i) == 5 and i.isalpha() and i.isupper() for i in ids)
    assert {order.customer_id for order in northwind.orders} <= ids


def test_accented_names_survive_the_read(northwind: Dataset) -> None:
    anton = next(c for c in northwind.customers if c.customer_id == "ANTON")

    assert anton.company_name == "Antonio Moreno Taquería"
    assert anton.city == "México D.F."


def test_null_values_stay_none(northwind: Dataset) -> None:
    by_id = {customer.customer_id: customer for customer in northwind.customers}

    assert by_id["ALFKI"].region is None
    assert by_id["HUNGO"].postal_code is None
    assert by_id["HUNGO"].region == "Co. Cork"


def test_an_order_not_yet_shipped_has_no_shipped_date(northwind: Dataset) -> None:
    order = next(o for o in northwind.orders if o.order_id == 11039)

    assert order.shipped_at is None
    assert order.ordered_at == "1998-04-21"


def test_tables_the_kit_does_not_load_are_counted(northwind: Dataset) -> None:
    assert dict(northwind.skipped) == {
        "customer_customer_demo": 0,
        "customer_demographics": 0,
        "employee_territories": 49,
        "employees": 9,
        "region": 4,
        "territories": 53,
        "us_states": 51,
    }


# Small dumps written for each test


def test_the_small_dump_reads_cleanly(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, SMALL_DUMP)

    dataset = read_dump(dump)

    assert len(dataset.orders) == 2
    assert dataset.orders[0].ship_address == "59 rue de l'Abbaye"
    assert dataset.order_lines[2].discount == Decimal("0.15")
    assert dict(dataset.skipped) == {"employees": 1}


def test_prices_round_half_even_from_their_text(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, [
        "INSERT INTO order_details VALUES (1, 1, 2.675, 1, 0.125);",
        "INSERT INTO order_details VALUES (1, 2, 2.665, 1, 0.135);",
    ])

    dataset = read_dump(dump)

    # Through a float, 2.675 would become 2.67 and 2.665 would become 2.67.
    assert [line.unit_price for line in dataset.order_lines] == [
        Decimal("2.68"), Decimal("2.66"),
    ]
    assert [line.discount for line in dataset.order_lines] == [
        Decimal("0.12"), Decimal("0.14"),
    ]


def test_a_statement_cut_short_names_the_line_it_starts_on(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP)
    cut = index_of(lines, "INSERT INTO order_details VALUES (10248, 42")
    lines[cut] = "INSERT INTO order_details VALUES (10248, 42, 9.800"
    dump = write_dump(tmp_path, lines)

    error = refusal(dump)

    assert str(error).startswith(f"{dump} line {cut + 1}: statement does not parse")


def test_a_statement_cut_inside_a_string_names_the_line_it_starts_on(
    tmp_path: Path,
) -> None:
    lines = list(SMALL_DUMP)
    cut = index_of(lines, "INSERT INTO orders VALUES (10249")
    lines[cut] = "INSERT INTO orders VALUES (10249, 'TOM"
    dump = write_dump(tmp_path, lines)

    error = refusal(dump)

    assert (error.path, error.line) == (str(dump), cut + 1)
    assert str(error).startswith(f"{dump} line {cut + 1}: ")


def test_a_dump_cut_off_mid_statement_names_that_statement(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP[: index_of(list(SMALL_DUMP), "INSERT INTO employees")])
    lines.append("INSERT INTO employees VALUES (1, 'Davo")
    dump = write_dump(tmp_path, lines)

    error = refusal(dump)

    assert error.line == len(lines)
    assert "never closed" in error.reason


def test_a_row_with_a_missing_value_names_its_line_and_count(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP)
    target = index_of(lines, "INSERT INTO orders VALUES (10249")
    lines[target] = lines[target].replace("'TOMSP', ", "")
    dump = write_dump(tmp_path, lines)

    error = refusal(dump)

    assert str(error) == (
        f"{dump} line {target + 1}: orders row has 13 values; expected 14"
    )


def test_a_non_numeric_quantity_names_its_line_and_column(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP)
    target = index_of(lines, "INSERT INTO order_details VALUES (10249")
    lines[target] = lines[target].replace(", 9, ", ", 'nine', ")
    dump = write_dump(tmp_path, lines)

    error = refusal(dump)

    assert str(error) == (
        f"{dump} line {target + 1}: order_details column quantity is 'nine'; "
        "expected an integer"
    )


def test_a_missing_order_date_is_refused(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP)
    target = index_of(lines, "INSERT INTO orders VALUES (10248")
    lines[target] = lines[target].replace("'1996-07-04'", "NULL")
    dump = write_dump(tmp_path, lines)

    error = refusal(dump)

    assert error.line == target + 1
    assert error.reason == "orders column order_date is NULL; expected a date"


def test_a_repeated_order_names_both_lines(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP)
    first = index_of(lines, "INSERT INTO orders VALUES (10248")
    lines.insert(first + 2, lines[first])
    dump = write_dump(tmp_path, lines)

    error = refusal(dump)

    assert error.line == first + 3
    assert error.reason == (
        f"orders row repeats order_id 10248, first seen on line {first + 1}"
    )


def test_a_missing_file_names_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "northwind.sql"

    error = refusal(missing)

    assert str(error) == f"{missing}: no such file"
    assert isinstance(error, SeedError)


def test_a_directory_is_not_read_as_a_dump(tmp_path: Path) -> None:
    error = refusal(tmp_path)

    assert str(error) == f"{tmp_path}: is a directory, not a dump file"


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP)
    target = index_of(lines, "INSERT INTO employees")
    dump = tmp_path / "latin1.sql"
    text = "\n".join(lines).encode("utf-8")
    dump.write_bytes(text.replace(b"Davolio", "Dávolio".encode("latin-1")))

    error = refusal(dump)

    assert error.line == target + 1
    assert "0xe1 is not UTF-8" in error.reason


def test_a_string_spanning_lines_is_one_value(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP)
    target = index_of(lines, "INSERT INTO orders VALUES (10248")
    lines[target] = lines[target].replace("59 rue de l''Abbaye", "59 rue;\nAbbaye")
    dump = write_dump(tmp_path, lines)

    dataset = read_dump(dump)

    assert dataset.orders[0].ship_address == "59 rue;\nAbbaye"


def test_lines_are_counted_through_a_string_spanning_lines(tmp_path: Path) -> None:
    lines = list(SMALL_DUMP)
    spanning = index_of(lines, "INSERT INTO orders VALUES (10248")
    lines[spanning] = lines[spanning].replace("Reims", "Re\nims")
    broken = index_of(lines, "INSERT INTO order_details VALUES (10249")
    lines[broken] = lines[broken].replace(", 9, ", ", 9.5, ")
    dump = write_dump(tmp_path, lines)

    error = refusal(dump)

    # The string's own newline pushes every later statement down one line.
    assert error.line == broken + 2


def test_rows_follow_the_column_order_of_the_dumps_create_table(
    tmp_path: Path,
) -> None:
    lines = list(SMALL_DUMP)
    lines[index_of(lines, "    order_id smallint")] = "    quantity smallint,"
    lines[index_of(lines, "    quantity smallint NOT")] = "    order_id smallint,"
    dump = write_dump(tmp_path, lines)

    dataset = read_dump(dump)

    assert dataset.order_lines[0] == OrderLine(
        12, 11, Decimal("14.00"), 10248, Decimal("0.00")
    )


def test_an_insert_that_lists_its_columns_is_read_by_name(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, [
        (
            "INSERT INTO public.order_details (discount, quantity, unit_price, "
            "product_id, order_id) VALUES (0.0500000007, 3, 7.69999981, 41, 10250);"
        ),
    ])

    dataset = read_dump(dump)

    assert dataset.order_lines == (
        OrderLine(10250, 41, Decimal("7.70"), 3, Decimal("0.05")),
    )


def test_an_insert_of_several_rows_gives_each_row(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, [
        "INSERT INTO shippers VALUES (1, 'Speedy Express', '(503) 555-9831'),",
        "    (2, 'United Package', NULL);",
        "INSERT INTO region VALUES (1, 'Eastern'), (2, 'Western');",
    ])

    dataset = read_dump(dump)

    assert [s.company_name for s in dataset.shippers] == [
        "Speedy Express", "United Package",
    ]
    assert dataset.shippers[1].phone is None
    assert dict(dataset.skipped) == {"region": 2}


def test_padding_of_a_fixed_width_customer_id_is_stripped(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, [
        (
            "INSERT INTO customers VALUES ('WOLZ ', 'Wolski  Zajazd', NULL, NULL, "
            "NULL, 'Warszawa', NULL, '01-012', 'Poland', NULL, NULL);"
        ),
        (
            "INSERT INTO orders VALUES (10374, 'WOLZ ', 1, '1996-12-05', "
            "'1997-01-02', NULL, 3, 3.94000006, NULL, NULL, NULL, NULL, NULL, NULL);"
        ),
    ])

    dataset = read_dump(dump)

    assert dataset.customers[0].customer_id == "WOLZ"
    assert dataset.orders[0].customer_id == "WOLZ"


def test_a_function_body_with_semicolons_is_passed_over(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, [
        "CREATE FUNCTION touch() RETURNS trigger AS $body$",
        "BEGIN NEW.seen := now(); RETURN NEW; END;",
        "$body$ LANGUAGE plpgsql;",
        "-- Shippers' rows: a quote in a comment opens nothing",
        "INSERT INTO shippers VALUES (3, 'Federal Shipping', E'(503) 555-9931');",
        "INSERT INTO shippers VALUES (4, 'Alliance', 4);",
    ])

    error = refusal(dump)

    assert error.line == 6
    assert error.reason == "shippers column phone is 4; expected a quoted string"


def test_a_copy_block_is_refused_with_advice(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, [
        "COPY public.shippers (shipper_id, company_name, phone) FROM stdin;",
        "1\tSpeedy Express\t(503) 555-9831",
        "\\.",
    ])

    error = refusal(dump)

    assert error.line == 1
    assert "pg_dump --inserts" in error.reason
