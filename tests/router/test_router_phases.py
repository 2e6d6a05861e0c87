"""A context's phase: derived by the state store, moved in the ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from migrate.router.errors import PhaseRefused
from migrate.router.proxy import describe_change
from migrate.router.state import (
    EXTRACTED,
    FINISHED,
    SHADOW,
    SHIFTING_READS,
    SYNCING,
    WRITES_MOVED,
    StateStore,
)

ROUTES = [
    ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
    ("POST", "/invoices/<int:invoice_id>/payments", "invoice_id"),
]


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "router.db")
    store.set_backend("monolith", "http://127.0.0.1:5000")
    store.set_backend("billing", "http://127.0.0.1:5001")
    store.register_routes("billing", "billing", ROUTES, actor="migrate extract",
                          reason="billing extracted")
    return store


def _phases(store: StateStore) -> list[tuple[str | None, str | None, str, str]]:
    return [(e.before, e.after, e.actor, e.reason)
            for e in store.history("billing") if e.what == "phase"]


def test_registering_a_context_makes_it_extracted_in_the_ledger(
    state: StateStore,
) -> None:
    assert state.phase("billing") == EXTRACTED
    assert state.status()["billing"].phase == EXTRACTED
    assert _phases(state) == [
        (None, EXTRACTED, "migrate extract", "billing extracted"),
    ]


def test_a_synced_copy_moves_the_context_to_syncing(state: StateStore) -> None:
    state.mark_synced("billing", "migrate extract", "copy in parity")

    assert state.phase("billing") == SYNCING
    assert _phases(state)[-1] == (EXTRACTED, SYNCING, "migrate extract",
                                  "copy in parity")


def test_marking_synced_twice_changes_nothing(state: StateStore) -> None:
    state.mark_synced("billing", "migrate extract", "copy in parity")
    revision, rows = state.revision(), len(state.history())

    state.mark_synced("billing", "migrate backfill", "again")

    assert (state.revision(), len(state.history())) == (revision, rows)


def test_the_phase_walks_forward_with_each_step_of_the_migration(
    state: StateStore,
) -> None:
    seen = [state.phase("billing")]
    state.mark_synced("billing", "migrate extract", "copy in parity")
    seen.append(state.phase("billing"))
    state.set_shadow("billing", 10, "ana", "compare first")
    seen.append(state.phase("billing"))
    state.set_weight("billing", 25, "ana", "canary")
    seen.append(state.phase("billing"))
    state.set_writer("billing", "billing", "ana", "flip")
    seen.append(state.phase("billing"))
    state.set_finished("billing", "migrate finish", "monolith stops hosting it")
    seen.append(state.phase("billing"))

    assert seen == [EXTRACTED, SYNCING, SHADOW, SHIFTING_READS, WRITES_MOVED,
                    FINISHED]
    assert [(before, after) for before, after, _, _ in _phases(state)] == [
        (None, EXTRACTED), (EXTRACTED, SYNCING), (SYNCING, SHADOW),
        (SHADOW, SHIFTING_READS), (SHIFTING_READS, WRITES_MOVED),
        (WRITES_MOVED, FINISHED),
    ]


def test_a_phase_row_shares_the_revision_actor_and_reason_of_its_cause(
    state: StateStore,
) -> None:
    revision = state.set_weight("billing", 25, "ana", "canary")

    weight, phase = state.history("billing")[-2:]

    assert (weight.what, phase.what) == ("read_weight", "phase")
    assert phase.revision == weight.revision == revision == state.revision()
    assert (phase.actor, phase.reason) == ("ana", "canary")


def test_a_route_weight_alone_is_shifting_reads(state: StateStore) -> None:
    state.mark_synced("billing", "migrate extract", "copy in parity")

    state.set_weight("billing", 5, "ana", "one route first",
                     route="GET /invoices/<int:invoice_id>")

    assert state.phase("billing") == SHIFTING_READS


def test_moving_a_route_weight_within_the_phase_writes_one_phase_row(
    state: StateStore,
) -> None:
    state.set_weight("billing", 10, "ana", "one route",
                     route="GET /invoices/<int:invoice_id>")

    state.set_weight("billing", 30, "ana", "the whole context")

    assert [(b, a) for b, a, _, _ in _phases(state)] == [
        (None, EXTRACTED), (EXTRACTED, SHIFTING_READS),
    ]


def test_a_rollback_of_the_reads_moves_the_phase_back_down(
    state: StateStore,
) -> None:
    state.mark_synced("billing", "migrate extract", "copy in parity")
    state.set_shadow("billing", 10, "ana", "compare first")
    state.set_weight("billing", 25, "ana", "canary")

    state.roll_back("billing", "router", "SLO breach: error rate 9 %")

    assert state.phase("billing") == SHADOW
    assert _phases(state)[-1] == (SHIFTING_READS, SHADOW, "router",
                                  "SLO breach: error rate 9 %")


def test_turning_shadow_off_falls_back_to_syncing(state: StateStore) -> None:
    state.mark_synced("billing", "migrate extract", "copy in parity")
    state.set_shadow("billing", 10, "ana", "compare first")

    state.set_shadow("billing", 0, "ana", "enough")

    assert state.phase("billing") == SYNCING


def test_writes_moved_back_return_to_shifting_reads(state: StateStore) -> None:
    state.set_weight("billing", 100, "ana", "all reads")
    state.set_writer("billing", "billing", "ana", "flip")

    state.set_writer("billing", "monolith", "migrate rollback", "flip back")

    assert state.phase("billing") == SHIFTING_READS


def test_finishing_before_the_writes_moved_is_refused_and_changes_nothing(
    state: StateStore,
) -> None:
    state.set_weight("billing", 100, "ana", "all reads")
    revision = state.revision()

    with pytest.raises(PhaseRefused) as refused:
        state.set_finished("billing", "migrate finish", "too early")

    assert str(refused.value) == (
        "billing is in phase 'shifting reads', so not finished: a context is "
        "finished only once its writes have moved to its service"
    )
    assert state.phase("billing") == SHIFTING_READS
    assert state.revision() == revision


def test_finishing_while_writes_are_held_is_refused(state: StateStore) -> None:
    state.set_writer("billing", "billing", "ana", "flip")
    state.hold_writes("billing", True, "ana", "flipping back")

    with pytest.raises(PhaseRefused, match="writes are held"):
        state.set_finished("billing", "migrate finish", "now")

    assert state.phase("billing") == WRITES_MOVED


def test_a_finished_context_keeps_its_writes_on_the_service(
    state: StateStore,
) -> None:
    state.set_writer("billing", "billing", "ana", "flip")
    state.set_finished("billing", "migrate finish", "done")

    with pytest.raises(PhaseRefused, match="no longer hosted by the monolith"):
        state.set_writer("billing", "monolith", "bob", "oops")

    assert state.status()["billing"].writer == "billing"
    assert state.phase("billing") == FINISHED


def test_a_store_from_before_phases_derives_the_phase_of_its_contexts(
    state: StateStore,
) -> None:
    state.set_weight("billing", 40, "ana", "canary")
    with sqlite3.connect(state.path) as db:
        db.execute("DELETE FROM phases")

    assert state.phase("billing") == SHIFTING_READS
    state.set_weight("billing", 0, "ana", "back")
    assert _phases(state)[-1][:2] == (None, EXTRACTED)


def test_the_routing_table_carries_the_phase(state: StateStore) -> None:
    state.mark_synced("billing", "migrate extract", "copy in parity")

    assert state.snapshot().contexts["billing"].phase == SYNCING


def test_a_router_s_log_line_names_the_phase_it_moved_to(state: StateStore) -> None:
    before = state.snapshot()
    state.set_weight("billing", 10, "ana", "canary")

    line = describe_change(before, state.snapshot())

    assert line == (
        "billing reads 0 % -> 10 %; billing phase extracted -> shifting reads"
    )
