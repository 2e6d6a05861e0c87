"""The copy gate: raising a weight needs the last check of the copy to
have found no difference; a record of that check it cannot read refuses,
as contracts that cannot be checked do."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.router import steering
from migrate.router.errors import GateRefused
from migrate.router.state import StateStore
from migrate.settings import Settings
from migrate.sync.backfill import Parity
from migrate.sync.parity_records import parity_path, record_parity


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"MIGRATE_HOME": str(tmp_path)})


@pytest.fixture
def record(settings: Settings) -> Path:
    path = parity_path(settings, "billing")
    record_parity(settings, "billing", Parity({"invoices": (3, 3)}, {}),
                  "migrate verify")
    return path


def test_a_copy_last_found_in_parity_lets_a_raise_through(
    settings: Settings, record: Path
) -> None:
    assert steering.copy_gate(settings)("billing") is None


def test_a_corrupted_record_refuses_naming_the_file_and_the_command(
    settings: Settings, record: Path
) -> None:
    record.write_text('{"context": "billing", "checked')

    refusal = steering.copy_gate(settings)("billing")

    assert refusal == (
        f"billing's copy cannot be judged: billing's parity record {record} "
        "cannot be read (not JSON: Unterminated string starting at: line 1 "
        "column 24 (char 23)); run `migrate verify billing` to check the copy "
        "again and keep a new one"
    )


def test_a_record_of_another_shape_refuses_saying_what_it_lacks(
    settings: Settings, record: Path
) -> None:
    record.write_text('{"context": "billing"}')

    refusal = steering.copy_gate(settings)("billing")

    assert refusal is not None
    assert f"{record} cannot be read (not a parity record (KeyError: " \
        "'checked_at'))" in refusal


def test_a_shift_is_refused_while_the_record_is_unreadable_and_changes_nothing(
    settings: Settings, record: Path, tmp_path: Path
) -> None:
    store = StateStore(tmp_path / "router.db")
    store.set_backend("monolith", "http://127.0.0.1:8701")
    store.set_backend("billing", "http://127.0.0.1:8711")
    store.register_routes("billing", "billing", [
        ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
    ])
    record.write_bytes(b"\x00\xff")
    before = store.history("billing")

    with pytest.raises(GateRefused, match="run `migrate verify billing`"):
        steering.shift_reads(store, "billing", 10, "ana", "canary",
                             gate=steering.copy_gate(settings))

    assert store.status()["billing"].read_weight == 0
    assert store.history("billing") == before
