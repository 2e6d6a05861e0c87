"""Bad input gets one clear line, a non-zero exit, and changes nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

MIGRATE = [sys.executable, "-m", "migrate.cli"]


def migrate(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MIGRATE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_a_weight_above_100_says_weights_run_0_to_100(
    workspace: dict[str, str],
) -> None:
    migrate(workspace, "seed", "--orders", "5")
    migrate(workspace, "extract", "billing")

    answer = migrate(workspace, "shift", "billing", "140")
    status = json.loads(migrate(workspace, "status", "--json").stdout)

    assert answer.returncode == 1
    assert answer.stderr.strip() == "error: weight 140 for billing: weights run 0-100"
    assert status["contexts"]["billing"]["read_weight"] == 0


def test_extracting_an_unknown_context_lists_the_contexts(
    workspace: dict[str, str],
) -> None:
    answer = migrate(workspace, "extract", "nosuch")

    assert answer.returncode == 1
    assert "there is no context 'nosuch'" in answer.stderr
    assert "billing, catalog, customers, ordering, shipping" in answer.stderr
    assert not (Path(workspace["MIGRATE_EXTRACTED"]) / "nosuch").exists()
    assert not (Path(workspace["MIGRATE_HOME"]) / "nosuch.db").exists()


def test_seeding_from_a_missing_dump_names_the_file(
    workspace: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.sql"

    answer = migrate(workspace, "seed", "--northwind", str(missing))

    assert answer.returncode == 1
    assert str(missing) in answer.stderr
    assert not (Path(workspace["MIGRATE_HOME"]) / "monolith.db").exists()


def test_seeding_from_a_malformed_dump_names_the_file_and_the_line(
    workspace: dict[str, str], tmp_path: Path
) -> None:
    dump = tmp_path / "broken.sql"
    dump.write_text(
        "INSERT INTO categories VALUES (1, 'Beverages', 'Soft drinks', '\\x');\n"
        "INSERT INTO shippers VALUES (1, 'Speedy Express');\n"
    )

    answer = migrate(workspace, "seed", "--northwind", str(dump))

    assert answer.returncode == 1
    assert "broken.sql line 2" in answer.stderr
    assert answer.stderr.count("\n") == 1
    assert not (Path(workspace["MIGRATE_HOME"]) / "monolith.db").exists()


def test_shift_needs_a_weight_or_writes(workspace: dict[str, str]) -> None:
    answer = migrate(workspace, "shift", "billing")

    assert answer.returncode == 2
    assert "WEIGHT" in answer.stderr


def test_extracting_before_seeding_says_to_seed_and_writes_nothing(
    workspace: dict[str, str],
) -> None:
    answer = migrate(workspace, "extract", "billing")

    assert answer.returncode == 1
    assert "run `migrate seed` first" in answer.stderr
    assert not Path(workspace["MIGRATE_EXTRACTED"]).exists()


def test_verifying_a_context_not_extracted_says_so(workspace: dict[str, str]) -> None:
    answer = migrate(workspace, "verify", "billing")

    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "error: billing is not extracted; nothing to verify yet"
    )


def test_a_bad_port_base_is_a_configuration_error(workspace: dict[str, str]) -> None:
    answer = migrate({**workspace, "MIGRATE_PORT_BASE": "abc"}, "status")

    assert answer.returncode == 2
    assert "MIGRATE_PORT_BASE='abc'" in answer.stderr


def test_seeding_over_orders_is_refused_before_generating_anything(
    workspace: dict[str, str],
) -> None:
    migrate(workspace, "seed", "--orders", "3")

    answer = migrate(workspace, "seed", "--orders", "4000000")

    assert answer.returncode == 1
    assert "already holds 8 rows of categories" in answer.stderr


def test_raising_a_weight_before_the_contracts_are_verified_is_refused(
    workspace: dict[str, str],
) -> None:
    migrate(workspace, "seed", "--orders", "5")
    migrate(workspace, "extract", "billing")

    answer = migrate(workspace, "shift", "billing", "10")
    status = json.loads(migrate(workspace, "status", "--json").stdout)

    assert answer.returncode == 1
    assert "contracts do not allow it" in answer.stderr
    assert "migrate can-i-deploy billing" in answer.stderr
    assert status["contexts"]["billing"]["read_weight"] == 0


def test_finishing_a_context_whose_writes_have_not_moved_is_refused_saying_so(
    workspace: dict[str, str],
) -> None:
    migrate(workspace, "seed", "--orders", "5")
    migrate(workspace, "extract", "shipping")

    answer = migrate(workspace, "finish", "shipping")
    status = json.loads(migrate(workspace, "status", "--json").stdout)

    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "error: shipping cannot be finished: its writes are still with the "
        "monolith (run `migrate shift shipping --writes`)"
    )
    assert status["contexts"]["shipping"]["read_weight"] == 0


def test_finishing_a_context_that_was_never_extracted_says_to_extract_it(
    workspace: dict[str, str],
) -> None:
    answer = migrate(workspace, "finish", "catalog")

    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "error: catalog is not extracted; run `migrate extract catalog` first"
    )


def test_a_northwind_dump_is_refused_for_another_monolith_naming_it(
    workspace: dict[str, str], tmp_path: Path
) -> None:
    library = Path(__file__).resolve().parents[1] / "second_monolith" / "library"
    dump = tmp_path / "northwind.sql"
    dump.write_text("-- not read: the refusal comes first\n")

    answer = migrate({**workspace, "MIGRATE_MANIFEST": str(library / "contexts.toml")},
                     "seed", "--northwind", str(dump))

    assert answer.returncode == 1
    assert "describes 'library'; seed it with --orders N" in answer.stderr


def test_the_demo_refuses_a_home_holding_a_system_it_did_not_make(
    workspace: dict[str, str],
) -> None:
    migrate(workspace, "seed", "--orders", "5")
    monolith = Path(workspace["MIGRATE_HOME"]) / "monolith.db"
    before = monolith.read_bytes()

    answer = migrate(workspace, "demo")

    assert answer.returncode == 1
    assert "holds a system the demo did not make (monolith.db)" in answer.stderr
    assert "MIGRATE_HOME" in answer.stderr
    assert monolith.read_bytes() == before


def test_an_up_that_fails_half_way_stops_what_it_started(
    workspace: dict[str, str],
) -> None:
    migrate(workspace, "seed", "--orders", "5")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        # The trace collector's address is taken: it starts after the emulator.
        taken.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{taken.getsockname()[1]}"

        answer = migrate({**workspace, "AWS_XRAY_DAEMON_ADDRESS": address}, "up")

    assert answer.returncode != 0
    assert address in answer.stderr
    run = Path(workspace["MIGRATE_HOME"]) / "run"
    pids = [int(p.read_text()) for p in run.glob("*.pid")] if run.exists() else []
    assert [pid for pid in pids if _alive(pid)] == []
    assert [p.stem for p in run.glob("*.pid")] == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_refuses_an_extraction_whose_database_was_never_built(
    workspace: dict[str, str], tmp_path: Path
) -> None:
    migrate(workspace, "seed", "--orders", "5")
    migrate(workspace, "extract", "billing")
    elsewhere = {**workspace, "MIGRATE_HOME": str(tmp_path / "another-home")}
    migrate(elsewhere, "seed", "--orders", "5")

    answer = migrate(elsewhere, "up")

    assert answer.returncode == 2
    assert "billing is extracted in" in answer.stderr
    assert "was never built" in answer.stderr
    assert answer.stderr.count("\n") == 1
    assert not (tmp_path / "another-home" / "billing.db").exists()
    run = tmp_path / "another-home" / "run"
    assert not run.exists() or list(run.glob("*.pid")) == []


def test_a_negative_weight_says_weights_run_0_to_100(
    workspace: dict[str, str],
) -> None:
    migrate(workspace, "seed", "--orders", "5")
    migrate(workspace, "extract", "billing")

    answer = migrate(workspace, "shift", "billing", "-5")

    assert answer.returncode == 1
    assert answer.stderr.strip() == "error: weight -5 for billing: weights run 0-100"


def test_a_weight_is_plain_ascii_digits(workspace: dict[str, str]) -> None:
    migrate(workspace, "seed", "--orders", "5")
    migrate(workspace, "extract", "billing")

    spaced = migrate(workspace, "shift", "billing", " 10")
    wide = migrate(workspace, "shift", "billing", "\uff10")
    status = json.loads(migrate(workspace, "status", "--json").stdout)

    assert (spaced.returncode, wide.returncode) == (1, 1)
    assert spaced.stderr.strip() == (
        "error: weight ' 10' for billing: weights run 0-100"
    )
    assert "weights run 0-100" in wide.stderr
    assert status["contexts"]["billing"]["read_weight"] == 0


def test_rolling_back_an_unknown_context_names_the_known_ones(
    workspace: dict[str, str],
) -> None:
    answer = migrate(workspace, "rollback", "nope", "--json")

    assert answer.returncode == 1
    payload = json.loads(answer.stdout)
    assert payload["error"] == "unknown_context"
    assert "billing" in payload["message"]


def test_a_refused_weight_has_the_admin_api_s_code_under_json(
    workspace: dict[str, str],
) -> None:
    answer = migrate(workspace, "shift", "billing", "abc", "--json")

    assert answer.returncode == 1
    assert answer.stderr.strip() == "error: weight 'abc' for billing: weights run 0-100"
    assert json.loads(answer.stdout) == {
        "error": "invalid_weight",
        "message": "weight 'abc' for billing: weights run 0-100",
        "exit_code": 1,
    }


def test_a_gate_s_refusal_has_the_admin_api_s_code_under_json(
    workspace: dict[str, str],
) -> None:
    from migrate.router.state import StateStore

    home = Path(workspace["MIGRATE_HOME"])
    home.mkdir(parents=True)
    state = StateStore(home / "router.db")
    state.set_backend("monolith", "http://127.0.0.1:8701")
    state.set_backend("billing", "http://127.0.0.1:8711")
    state.register_routes("billing", "billing", [
        ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
    ])

    answer = migrate(workspace, "shift", "billing", "10", "--json")

    payload = json.loads(answer.stdout)
    assert answer.returncode == 1
    assert (payload["error"], payload["exit_code"]) == ("gate_refused", 1)
    assert "billing's contracts do not allow it" in payload["message"]
    assert state.status()["billing"].read_weight == 0


def test_an_error_of_the_cli_alone_is_named_in_snake_case_under_json(
    workspace: dict[str, str],
) -> None:
    answer = migrate(workspace, "verify", "billing", "--json")

    assert answer.returncode == 1
    assert json.loads(answer.stdout)["error"] == "not_extracted"


def test_a_usage_error_click_catches_exits_2_with_its_code_under_json(
    workspace: dict[str, str],
) -> None:
    answer = migrate(workspace, "traces", "--limit", "abc", "--json")

    assert answer.returncode == 2
    assert "'abc' is not a valid integer" in answer.stderr
    assert json.loads(answer.stdout) == {
        "error": "usage_error",
        "message": "Invalid value for '--limit': 'abc' is not a valid integer range.",
        "exit_code": 2,
    }
