"""`migrate logs`: every process's log, merged by time, filtered, followed.

The logs are what the supervisor writes: one file per process under
`<MIGRATE_HOME>/logs/`. Some tests write lines of known times into those
files; the follow test has real processes, started by the supervisor,
write them while `migrate logs -f` runs.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from migrate.processes import ProcessSpec, Supervisor
from migrate.settings import Settings

MIGRATE = [sys.executable, "-m", "migrate.cli"]
TRACE = "1-67a1b2c3-0123456789abcdef01234567"


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MIGRATE, *args], env=env, capture_output=True,
                          text=True, timeout=60)


def stamp(seconds_ago: float) -> str:
    moment = datetime.fromtimestamp(time.time() - seconds_ago, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def line(ago: float, service: str, message: str, level: str = "INFO",
         **fields: Any) -> str:
    return json.dumps({"time": stamp(ago), "level": level, "service": service,
                       "logger": "test", "message": message, **fields})


@pytest.fixture
def logs(workspace: dict[str, str]) -> Path:
    folder = Settings.from_env(workspace).logs_dir
    folder.mkdir(parents=True)
    (folder / "router.log").write_text("\n".join([
        line(50, "router", "router listening"),
        line(30, "router", "shifted billing to 50 %", context="billing"),
        line(10, "router", "backend billing failing", "ERROR", context="billing",
             trace_id=TRACE, route="GET /invoices/<id>", backend="billing"),
    ]) + "\n")
    (folder / "monolith.log").write_text("\n".join([
        line(40, "monolith", "monolith serving"),
        line(20, "monolith", "invoice 7 issued", context="billing", trace_id=TRACE),
    ]) + "\n")
    (folder / "emulator.log").write_text("\n".join([
        " * Running on http://127.0.0.1:8702",
        line(45, "emulator", "emulator listening"),
        line(7200, "emulator", "an old line"),
    ]) + "\n")
    return folder


def messages(answer: subprocess.CompletedProcess) -> list[str]:
    assert answer.returncode == 0, answer.stderr
    return [json.loads(row)["message"] for row in answer.stdout.splitlines()]


def test_lines_come_in_time_order_across_files(
    workspace: dict[str, str], logs: Path
) -> None:
    shown = messages(migrate(workspace, "logs", "--json", "--since", "1h"))

    assert shown == [
        "router listening",
        " * Running on http://127.0.0.1:8702",
        "emulator listening",
        "monolith serving",
        "shifted billing to 50 %",
        "invoice 7 issued",
        "backend billing failing",
    ]


def test_a_line_that_is_not_json_is_kept_under_its_file_s_process(
    workspace: dict[str, str], logs: Path
) -> None:
    answer = migrate(workspace, "logs", "--service", "emulator", "--json")
    human = migrate(workspace, "logs", "--service", "emulator")

    rows = [json.loads(r) for r in answer.stdout.splitlines()]
    raw = [r for r in rows if r.get("raw")]
    assert raw == [{"time": rows[-1]["time"], "process": "emulator",
                    "message": " * Running on http://127.0.0.1:8702", "raw": True}]
    assert re.search(r"Z emulator +- +\* Running on http://127.0.0.1:8702",
                     human.stdout)


def test_filters_by_process_level_trace_context_and_text(
    workspace: dict[str, str], logs: Path
) -> None:
    by_process = messages(migrate(workspace, "logs", "--json", "--service",
                                  "mono*", "--service", "router", "--since", "1h"))
    by_level = messages(migrate(workspace, "logs", "--json", "--level", "warning"))
    by_trace = messages(migrate(workspace, "logs", "--json", "--trace", TRACE))
    by_context = messages(migrate(workspace, "logs", "--json", "--context",
                                  "billing"))
    by_text = messages(migrate(workspace, "logs", "--json", "--grep", "SERVING"))

    assert by_process == ["router listening", "monolith serving",
                          "shifted billing to 50 %", "invoice 7 issued",
                          "backend billing failing"]
    assert by_level == ["backend billing failing"]
    assert by_trace == ["invoice 7 issued", "backend billing failing"]
    assert by_context == ["shifted billing to 50 %", "invoice 7 issued",
                          "backend billing failing"]
    assert by_text == ["monolith serving"]


def test_since_and_lines_keep_the_recent_end(
    workspace: dict[str, str], logs: Path
) -> None:
    everything = messages(migrate(workspace, "logs", "--json", "--lines", "0"))
    recent = messages(migrate(workspace, "logs", "--json", "--since", "25s"))
    last_two = messages(migrate(workspace, "logs", "--json", "-n", "2"))

    assert everything[0] == "an old line" and len(everything) == 8
    assert recent == ["invoice 7 issued", "backend billing failing"]
    assert last_two == recent


def test_an_embedded_metric_line_takes_its_time_from_its_metadata(
    workspace: dict[str, str], logs: Path
) -> None:
    emf = {"_aws": {"Timestamp": int((time.time() - 35) * 1000),
                    "CloudWatchMetrics": [{"Namespace": "migrate",
                                           "Dimensions": [["context"]],
                                           "Metrics": [{"Name": "requests"}]}]},
           "context": "billing", "requests": 3}
    with (logs / "monolith.log").open("a") as monolith:
        monolith.write(json.dumps(emf) + "\n")

    answer = migrate(workspace, "logs", "--json", "--service", "monolith")

    rows = [json.loads(r) for r in answer.stdout.splitlines()]
    assert [r.get("message", "metrics") for r in rows] == [
        "monolith serving", "metrics", "invoice 7 issued"]
    assert rows[1]["requests"] == 3


def test_a_line_for_people_shows_its_fields_after_the_message(
    workspace: dict[str, str], logs: Path
) -> None:
    answer = migrate(workspace, "logs", "--level", "ERROR")

    (shown,) = answer.stdout.splitlines()
    assert "router" in shown and "ERROR" in shown
    assert shown.endswith(
        "backend billing failing  context=billing route=GET /invoices/<id> "
        f"backend=billing trace={TRACE}"
    )


def test_an_unknown_process_is_refused_with_the_list_of_processes(
    workspace: dict[str, str], logs: Path
) -> None:
    answer = migrate(workspace, "logs", "--service", "billing-service")

    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "error: no process 'billing-service' writes logs here; the processes "
        "are emulator, monolith, router"
    )


def test_an_unknown_context_is_refused_with_the_list_of_contexts(
    workspace: dict[str, str], logs: Path
) -> None:
    answer = migrate(workspace, "logs", "--context", "nosuch")

    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "error: there is no context 'nosuch'; the contexts are billing, catalog, "
        "customers, ordering, shipping"
    )


def test_a_malformed_trace_id_is_refused_with_the_shape_of_one(
    workspace: dict[str, str], logs: Path
) -> None:
    answer = migrate(workspace, "logs", "--trace", "garbage")

    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "error: 'garbage' is not a trace id; X-Ray's look like "
        "1-5f84c7a1-0123456789abcdef01234567"
    )


def test_a_malformed_since_is_bad_usage_naming_the_value(
    workspace: dict[str, str], logs: Path
) -> None:
    answer = migrate(workspace, "logs", "--since", "ten minutes")

    assert answer.returncode == 2
    assert "'ten minutes': give a time ago such as 30s, 10m" in answer.stderr


def test_without_logs_the_answer_is_to_run_migrate_up(
    workspace: dict[str, str],
) -> None:
    answer = migrate(workspace, "logs")

    assert answer.returncode == 1
    assert "`migrate up`" in answer.stderr
    assert str(Settings.from_env(workspace).logs_dir) in answer.stderr


WRITER = """
import logging, sys, time
from migrate.observe import logs
logs.configure("writer")
log = logging.getLogger("writer")
for n in range(3):
    log.info("tick %s", n, extra={"context": "billing"})
    time.sleep(0.2)
print("a third party's plain line", file=sys.stderr, flush=True)
log.warning("done")
time.sleep(60)
"""


def test_follow_prints_new_lines_from_files_that_appear_later(
    workspace: dict[str, str], logs: Path
) -> None:
    settings = Settings.from_env(workspace)
    supervisor = Supervisor(settings.run_dir, settings.logs_dir)
    follower = subprocess.Popen(
        [*MIGRATE, "logs", "--follow", "--lines", "1"], env=workspace,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [seen.put(row) for row in follower.stdout],  # type: ignore[union-attr]
        daemon=True,
    ).start()
    try:
        first = seen.get(timeout=30)
        supervisor.start(ProcessSpec("writer", [sys.executable, "-c", WRITER]))
        rows = [seen.get(timeout=30) for _ in range(5)]
        with (logs / "router.log").open("a") as router:
            router.write(line(0, "router", "written after the writer") + "\n")
        rows.append(seen.get(timeout=30))
        follower.send_signal(signal.SIGINT)
        code = follower.wait(30)
    finally:
        supervisor.stop("writer")
        follower.kill()

    assert "backend billing failing" in first
    assert [r.split(None, 3)[1:3] for r in rows] == [
        ["writer", "INFO"], ["writer", "INFO"], ["writer", "INFO"], ["writer", "-"],
        ["writer", "WARNING"], ["router", "INFO"],
    ]
    assert "tick 0  context=billing" in rows[0]
    assert "a third party's plain line" in rows[3]
    assert "written after the writer" in rows[5]
    assert code == 0
