"""The state store: one SQLite file, a revision, and a ledger of every change."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from migrate.router.errors import (
    InvalidBackendUrl,
    InvalidService,
    InvalidWeight,
    InvalidWriter,
    RouteTaken,
    ServiceStillWrites,
    UnknownBackend,
    UnknownContext,
)
from migrate.router.state import StateStore

REPOSITORY = Path(__file__).resolve().parents[2]
ROUTES = [
    ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
    ("POST", "/invoices/<int:invoice_id>/payments", "invoice_id"),
]


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "router.db")
    store.set_backend("monolith", "http://127.0.0.1:5000")
    store.set_backend("billing", "http://127.0.0.1:5001")
    store.register_routes("billing", "billing", ROUTES)
    return store


def test_a_new_context_reads_from_and_writes_to_the_monolith(
    state: StateStore,
) -> None:
    status = state.status()["billing"]

    assert (status.read_weight, status.writer, status.writes_held) == (
        0, "monolith", False,
    )
    assert status.salt == "billing"
    assert [(r.method, r.rule, r.bucket_key) for r in status.routes] == [
        ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
        ("POST", "/invoices/<int:invoice_id>/payments", "invoice_id"),
    ]


def test_registering_again_keeps_the_weight_and_the_writer(
    state: StateStore,
) -> None:
    state.set_weight("billing", 30, "ana", "canary")
    state.set_writer("billing", "billing", "ana", "flip")

    state.register_routes("billing", "billing", ROUTES[:1])

    status = state.status()["billing"]
    assert (status.read_weight, status.writer) == (30, "billing")
    assert len(status.routes) == 1


def test_a_weight_over_100_is_refused_with_the_rule(state: StateStore) -> None:
    with pytest.raises(InvalidWeight) as refused:
        state.set_weight("billing", 140, "ana", "typo")

    assert str(refused.value) == "weight 140 for billing: weights run 0-100"
    assert refused.value.weight == 140
    assert state.status()["billing"].read_weight == 0


@pytest.mark.parametrize("weight", [-1, 12.5, "50", True])
def test_a_weight_that_is_not_a_whole_percent_is_refused(
    state: StateStore, weight: object
) -> None:
    with pytest.raises(InvalidWeight, match="weights run 0-100"):
        state.set_weight("billing", weight, "ana", "typo")  # type: ignore[arg-type]


def test_an_unknown_context_is_refused_listing_the_known_ones(
    state: StateStore,
) -> None:
    with pytest.raises(UnknownContext) as refused:
        state.set_weight("biling", 10, "ana", "typo")

    assert refused.value.known == ("billing",)
    assert "'biling'" in str(refused.value)
    assert "known contexts: billing" in str(refused.value)


def test_a_writer_other_than_monolith_or_service_is_refused(
    state: StateStore,
) -> None:
    with pytest.raises(InvalidWriter) as refused:
        state.set_writer("billing", "shipping", "ana", "typo")

    assert str(refused.value) == (
        "writer 'shipping' for billing: the writer is 'monolith' or 'billing'"
    )


def test_a_service_needs_a_backend_url_first(state: StateStore) -> None:
    with pytest.raises(UnknownBackend) as refused:
        state.register_routes("shipping", "shipping", [])

    assert refused.value.known == ("billing", "monolith")


def test_a_backend_url_without_a_scheme_is_refused(state: StateStore) -> None:
    with pytest.raises(InvalidBackendUrl) as refused:
        state.set_backend("shipping", "127.0.0.1:5002")

    assert str(refused.value) == (
        "backend 'shipping' URL '127.0.0.1:5002': a backend URL starts with "
        "http:// or https://"
    )


def test_the_monolith_cannot_be_a_context_service(state: StateStore) -> None:
    with pytest.raises(InvalidService):
        state.register_routes("shipping", "monolith", [])


def test_a_route_owned_by_another_context_is_refused(state: StateStore) -> None:
    state.set_backend("shipping", "http://127.0.0.1:5002")

    with pytest.raises(RouteTaken) as refused:
        state.register_routes(
            "shipping", "shipping", [("GET", "/invoices/<int:invoice_id>", None)]
        )

    assert refused.value.owner == "billing"
    assert "shipping" not in state.status()


def test_a_service_that_holds_the_writes_cannot_be_swapped(
    state: StateStore,
) -> None:
    state.set_backend("billing-v2", "http://127.0.0.1:5003")
    state.set_writer("billing", "billing", "ana", "flip")

    with pytest.raises(ServiceStillWrites):
        state.register_routes("billing", "billing-v2", ROUTES)


def test_every_change_bumps_the_revision_once(state: StateStore) -> None:
    start = state.revision()

    state.set_weight("billing", 10, "ana", "canary")
    state.hold_writes("billing", True, "ana", "fence")
    state.set_writer("billing", "billing", "ana", "flip")
    state.hold_writes("billing", False, "ana", "flipped")

    assert state.revision() == start + 4


def test_a_call_that_changes_nothing_writes_nothing(state: StateStore) -> None:
    state.set_weight("billing", 10, "ana", "canary")
    revision, entries = state.revision(), len(state.history())

    state.set_weight("billing", 10, "bob", "again")
    state.register_routes("billing", "billing", ROUTES)
    state.set_backend("billing", "http://127.0.0.1:5001/")

    assert (state.revision(), len(state.history())) == (revision, entries)


def test_the_ledger_records_every_change_with_who_and_why(
    state: StateStore,
) -> None:
    state.set_weight("billing", 10, "ana", "canary")
    state.hold_writes("billing", True, "bob", "fence for the flip")
    state.set_writer("billing", "billing", "bob", "lag is zero")
    state.hold_writes("billing", False, "bob", "flip done")
    state.register_routes("billing", "billing", ROUTES[:1], actor="cli",
                          reason="payments moved")

    rows = [
        (e.actor, e.what, e.before, e.after, e.reason)
        for e in state.history("billing")
    ]

    both = (
        "GET /invoices/<int:invoice_id> [invoice_id]; "
        "POST /invoices/<int:invoice_id>/payments [invoice_id]"
    )
    one = "GET /invoices/<int:invoice_id> [invoice_id]"
    assert rows == [
        ("system", "service", None, "billing", ""),
        ("system", "routes", None, both, ""),
        ("system", "phase", None, "extracted", ""),
        ("ana", "read_weight", "0", "10", "canary"),
        ("ana", "phase", "extracted", "shifting reads", "canary"),
        ("bob", "writes_held", "False", "True", "fence for the flip"),
        ("bob", "writer", "monolith", "billing", "lag is zero"),
        ("bob", "phase", "shifting reads", "writes moved", "lag is zero"),
        ("bob", "writes_held", "True", "False", "flip done"),
        ("cli", "routes", both, one, "payments moved"),
    ]


def test_ledger_rows_carry_the_revision_and_time_they_made(
    state: StateStore,
) -> None:
    state.set_weight("billing", 10, "ana", "canary")

    entry = state.history("billing")[-1]

    assert entry.revision == state.revision()
    assert entry.at.endswith("+00:00")


def test_backend_changes_are_in_the_whole_ledger(state: StateStore) -> None:
    state.set_backend("billing", "http://10.0.0.5:8000", actor="ops",
                      reason="moved host")

    entry = state.history()[-1]

    assert (entry.context, entry.what, entry.before, entry.after) == (
        None, "backend billing", "http://127.0.0.1:5001", "http://10.0.0.5:8000",
    )


def test_a_snapshot_cannot_be_changed(state: StateStore) -> None:
    table = state.snapshot()

    with pytest.raises(TypeError):
        table.contexts["billing"] = table.contexts["billing"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.revision = 0  # type: ignore[misc]


def test_a_snapshot_is_the_state_as_of_its_revision(state: StateStore) -> None:
    state.set_weight("billing", 40, "ana", "canary")

    table = state.snapshot()

    assert table.revision == state.revision()
    assert table.contexts["billing"].read_weight == 40
    assert table.backends["billing"] == "http://127.0.0.1:5001"


def test_a_second_store_on_the_same_file_sees_the_changes(
    state: StateStore,
) -> None:
    state.set_weight("billing", 55, "ana", "canary")

    other = StateStore(state.path)

    assert other.status()["billing"].read_weight == 55


def test_two_processes_changing_at_once_lose_no_change(state: StateStore) -> None:
    start = state.revision()
    script = (
        "import sys\n"
        "from migrate.router.state import StateStore\n"
        "store = StateStore(sys.argv[1])\n"
        "for weight in range(int(sys.argv[2]), 100, 2):\n"
        "    store.set_weight('billing', weight, sys.argv[3], 'load')\n"
    )
    # One process sets odd weights, the other even ones: every call changes.
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, state.path, first, actor],
            cwd=REPOSITORY,
        )
        for first, actor in (("1", "odd"), ("2", "even"))
    ]
    codes = [worker.wait(timeout=60) for worker in workers]

    changes = [e for e in state.history("billing") if e.what == "read_weight"]
    assert codes == [0, 0]
    assert len(changes) == 50 + 49
    assert state.revision() == start + 99
    assert sorted(e.revision for e in changes) == list(range(start + 1, start + 100))


def test_the_last_rows_of_the_ledger_come_oldest_first(state: StateStore) -> None:
    for weight in (10, 20, 30):
        state.set_weight("billing", weight, "ana", f"to {weight}")

    weights = [e.after for e in state.history(last=3) if e.what == "read_weight"]
    billing = [e.after for e in state.history("billing", last=2)]

    assert weights == ["20", "30"]
    assert billing == ["20", "30"]
