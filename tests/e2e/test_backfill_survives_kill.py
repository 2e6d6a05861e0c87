"""A backfill killed with SIGKILL at random points resumes and reaches parity."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from migrate.extract.run import extract
from migrate.hosts.tables import backfills, checkpoints
from migrate.kernel.sql import create_engine
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.backfill import data_tables
from migrate.system import System
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
ORDERS = int(os.environ.get("MIGRATE_BACKFILL_KILL_ORDERS", "2000"))


def _rows_seen(service: sa.Engine) -> int:
    with service.connect() as db:
        seen = db.execute(sa.select(sa.func.sum(checkpoints.c.rows_seen))).scalar()
    return int(seen or 0)


def _rows_to_copy(system: System, monolith: sa.Engine) -> int:
    tables = data_tables(system.manifest.context("billing"))
    with monolith.connect() as db:
        return sum(
            int(db.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)
            for t in tables
        )


def test_a_backfill_killed_three_times_finishes_in_parity(
    system: System, workspace: dict[str, str]
) -> None:
    settings = system.settings
    settings.home.mkdir(parents=True)
    upgrade(settings.monolith_url)
    seed(Monolith(settings.monolith_url), synthetic.generate(ORDERS))
    extract(system, "billing")
    service = create_engine(settings.service_url("billing"))
    with service.begin() as db:
        # Start the copy over, as if extraction had stopped before its backfill.
        for table in reversed(data_tables(system.manifest.context("billing"))):
            db.execute(table.delete())
        db.execute(backfills.delete())
        db.execute(checkpoints.delete())
    command = [sys.executable, "-m", "migrate.cli", "backfill", "billing", "--json"]
    env = {**workspace, "MIGRATE_BACKFILL_CHUNK": "50"}
    chance = random.Random(int(os.environ.get("MIGRATE_KILL_SEED", "5")))

    total = _rows_to_copy(system, create_engine(settings.monolith_url))

    kills, seen_at_kill = 0, []
    for _ in range(3):
        # A random point a few chunks on, well before the copy could end.
        left = total - _rows_seen(service)
        target = total - left + chance.randrange(left // 6, left // 3)
        copy = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while copy.poll() is None and _rows_seen(service) < target:
            time.sleep(0.005)
        if copy.poll() is None:
            copy.send_signal(signal.SIGKILL)
            kills += 1
        copy.wait()
        seen_at_kill.append(_rows_seen(service))
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300
    )
    verified = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "verify", "billing", "--json"],
        env=workspace,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert kills == 3
    assert seen_at_kill == sorted(seen_at_kill)
    assert finished.returncode == 0, finished.stderr
    assert verified.returncode == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert report["differences"] == []
    assert report["as_of"]["outbox"] == "monolith"
