"""`migrate finish`: on a copy of the project tree, a git checkout of its own.

Shipping is extracted from the copy, its writes moved, and finished: the
monolith stops hosting it, its routes go to the service alone, the follower
stops, its package moves beside its service (staged with git) and the
ledger says finished. One story runs once for the module; each test asserts
one fact of it. The real tree is never touched.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from workspaces import system_environment

from migrate.check.run import check
from migrate.extract.finish import FinishRefused, FinishReport, finish
from migrate.extract.run import extract
from migrate.hosts.service import ServiceHost
from migrate.kernel.sql import create_engine
from migrate.manifest import load
from migrate.messaging.clients import sqs_client
from migrate.router.state import LedgerEntry
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import PROJECT_ROOT, Settings
from migrate.sync.flip import move_writes
from migrate.sync.lag import lag_by_direction
from migrate.system import System
from monolith.host import Monolith
from monolith.shipping.tables import shipments

pytestmark = pytest.mark.e2e

# What a copy of the project leaves behind: environments, state, caches.
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "var", "__pycache__", "*.egg-info", ".pytest_cache",
    ".ruff_cache", ".mypy_cache", "node_modules",
)


@dataclasses.dataclass
class Story:
    project: Path
    refused_before_the_flip: str
    refused_with_lag: str
    report: FinishReport
    status: str
    ledger: tuple[LedgerEntry, ...]
    phase: str
    running: dict[str, int]
    queues_left: list[str]
    read_through_router: requests.Response
    asked_of_the_monolith: requests.Response
    planned_after: dict[str, Any] | None
    in_monolith_after: dict[str, Any] | None
    read_after_service_restart: requests.Response
    checked_ok: bool


def _wait(what: str, found: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout:g} s")


def _row(url: str, order_id: int) -> dict[str, Any] | None:
    with create_engine(url).connect() as db:
        row = db.execute(
            sa.select(shipments).where(shipments.c.order_id == order_id)
        ).first()
    return None if row is None else dict(row._mapping)


def copy_project(folder: Path) -> Path:
    """The project's tree, copied and committed as a git checkout of its own."""
    shutil.copytree(PROJECT_ROOT, folder, ignore=IGNORED)
    for extraction in (folder / "extracted").iterdir():
        if extraction.is_dir():
            shutil.rmtree(extraction)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=test", "-c", "user.email=test@example.com",
                  "commit", "-q", "-m", "the project as it was"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True)
    return folder


def _order(router: str) -> int:
    placed = requests.post(
        f"{router}/orders",
        json={"customer_id": "QCBQY", "lines": [{"product_id": 1, "quantity": 1}],
              "ship_to": {"city": "Graz"}},
        timeout=60,
    )
    assert placed.status_code == 201, placed.text
    return int(placed.json()["order_id"])


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    home = tmp_path_factory.mktemp("finish")
    project = copy_project(home / "project")
    env = system_environment(home)
    env["MIGRATE_MANIFEST"] = str(project / "monolith" / "contexts.toml")
    env["MIGRATE_EXTRACTED"] = str(project / "extracted")
    env["MIGRATE_VISIBILITY_SECONDS"] = "5"
    system = System(Settings.from_env(env))
    try:
        yield _tell(system, project)
    finally:
        System(system.settings, load(system.manifest.path)).down()


def _tell(system: System, project: Path) -> Story:
    settings = system.settings
    settings.home.mkdir(parents=True)
    upgrade(settings.monolith_url, manifest_path=system.manifest.path)
    seed(Monolith(settings.monolith_url, system.manifest), synthetic.generate(20))
    system.up()
    extract(system, "shipping")
    system.up()
    with pytest.raises(FinishRefused) as before_the_flip:
        finish(system, "shipping")

    move_writes(system, "shipping")
    # A change the monolith has not applied yet: the follower is stopped.
    system.supervisor.stop("shipping-follower")
    service = ServiceHost("shipping", settings.service_url("shipping"),
                          system.manifest)
    from monolith.shipping.handlers import dispatch

    with service.engine.connect() as db:
        waiting = db.execute(
            sa.select(sa.func.min(shipments.c.order_id))
            .where(shipments.c.shipped_at.is_(None))
        ).scalar()
    dispatch(waiting, "2026-12-07T08:00:00+00:00", service.unit_of_work())
    with pytest.raises(FinishRefused) as with_lag:
        finish(system, "shipping")
    system.up()
    _wait("the monolith catching up with the service",
          lambda: all(found["events"] == 0
                      for found in lag_by_direction(system, "shipping").values()))

    report = finish(system, "shipping")
    finished = System(settings, load(system.manifest.path))
    router = settings.router_url
    read = _wait(
        "the router sending shipping's reads to its service",
        lambda: next((r for r in [requests.get(f"{router}/shipments/1", timeout=30)]
                      if r.headers.get("X-Migrate-Backend") == "shipping"), None),
        timeout=10,
    )
    asked = requests.get(f"{settings.monolith_http}/shipments/1", timeout=30)
    after = _order(router)
    planned = _wait("the service planning a shipment after the finish",
                    lambda: _row(settings.service_url("shipping"), after))
    sqs = sqs_client(settings.endpoint_url)
    queues = sqs.list_queues(QueueNamePrefix="northwind-shipping-").get(
        "QueueUrls", [])

    finished.supervisor.stop("shipping-service")
    finished.up()
    read_again = requests.get(f"{router}/shipments/{after}", timeout=30)
    return Story(
        project=project,
        refused_before_the_flip=str(before_the_flip.value),
        refused_with_lag=str(with_lag.value),
        report=report,
        status=subprocess.run(
            ["git", "-C", str(project), "status", "--porcelain"],
            capture_output=True, text=True, check=True,
        ).stdout,
        ledger=finished.state.history("shipping"),
        phase=finished.state.phase("shipping"),
        running=finished.supervisor.running(),
        queues_left=[q.rsplit("/", 1)[-1] for q in queues],
        read_through_router=read,
        asked_of_the_monolith=asked,
        planned_after=planned,
        in_monolith_after=_row(settings.monolith_url, after),
        read_after_service_restart=read_again,
        checked_ok=check(system.manifest.path).ok,
    )


def test_finish_refuses_while_the_monolith_writes_the_context(story: Story) -> None:
    assert "shipping cannot be finished: its writes are still with the monolith" in (
        story.refused_before_the_flip
    )


def test_finish_refuses_while_the_monolith_lags_naming_the_lag(story: Story) -> None:
    assert "its sync lag is 2 events to the monolith and 0 to the service" in (
        story.refused_with_lag
    )
    assert "writes" not in story.refused_with_lag


def test_the_package_moves_beside_its_service_staged_with_git(story: Story) -> None:
    moved = story.project / "extracted" / "shipping" / "shipping"

    assert (moved / "handlers.py").is_file()
    assert not (story.project / "monolith" / "shipping").exists()
    assert "R  monolith/shipping/handlers.py -> extracted/shipping/shipping/" \
           "handlers.py" in story.status
    assert "A  extracted/shipping/shipping_service.py" in story.status
    assert story.report.relocation.git


def test_the_manifest_entry_points_at_the_new_place(story: Story) -> None:
    shipping = load(story.project / "monolith" / "contexts.toml").context("shipping")

    assert shipping.finished
    assert shipping.package == "shipping"
    assert shipping.events == "shipping.events"
    assert shipping.root == story.project / "extracted" / "shipping"


def test_references_to_the_old_name_are_rewritten_across_the_tree(
    story: Story,
) -> None:
    seeding = (story.project / "migrate" / "seed" / "load.py").read_text()
    own = (story.project / "extracted" / "shipping" / "shipping" / "handlers.py")

    assert "from shipping.handlers import dispatch, register_shippers" in seeding
    assert "from shipping.domain import" in own.read_text()
    assert "monolith.shipping" not in seeding


def test_the_ledger_records_the_phase_finished(story: Story) -> None:
    phases = [(e.before, e.after, e.actor) for e in story.ledger
              if e.what == "phase"]

    assert phases[-1] == ("writes moved", "finished", "migrate finish")
    assert story.phase == "finished"


def test_every_read_goes_to_the_service_and_the_monolith_hosts_none(
    story: Story,
) -> None:
    assert story.read_through_router.status_code == 200
    assert story.asked_of_the_monolith.status_code == 404


def test_the_follower_stops_and_its_queue_is_retired(story: Story) -> None:
    assert "shipping-follower" not in story.running
    assert "shipping-service" in story.running
    assert story.report.retired_queues == ("northwind-shipping-monolith-sync",)
    assert "northwind-shipping-monolith-sync" not in story.queues_left
    assert "northwind-shipping-monolith-sync-dlq" not in story.queues_left


def test_after_the_finish_the_service_alone_keeps_shipments(story: Story) -> None:
    assert story.planned_after is not None
    assert story.planned_after["ship_city"] == "Graz"
    assert story.in_monolith_after is None


def test_the_service_restarts_from_its_own_folder(story: Story) -> None:
    assert story.read_after_service_restart.status_code == 200
    assert story.read_after_service_restart.headers["X-Migrate-Backend"] == (
        "shipping"
    )


def test_the_monolith_without_the_context_still_passes_the_check(
    story: Story,
) -> None:
    assert story.checked_ok
