"""Sync lag under load: how long a billing change takes to reach the service.

    python -m migrate.sync.lagbench [--rate 100] [--seconds 20] [--with-functions]

Runs a whole system in a temporary folder (emulator, monolith, relay,
billing service), records payments in the monolith at a steady rate, and
measures for each resulting event the time from its commit in the monolith
(`occurred_at`) to its application in the service's copy (the inbox claim).
Prints p50, p99 and max, in milliseconds.

By default the side-effect functions are stopped and their queues
unsubscribed first, so the figure is the sync path's: on AWS they read
queues of their own, while here every consumer shares the one emulator,
which slows as its queues deepen. `--with-functions` keeps them (each
payment then also feeds the payment reminder and its idempotency table).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from migrate import names
from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import queue_tables
from migrate.messaging.clients import sns_client
from migrate.messaging.topology import Resources
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import Settings
from migrate.system import System
from monolith.billing.handlers import RecordPayment, record_payment
from monolith.host import Monolith


def measure(
    rate: float, seconds: float, port_base: int, functions: bool = False
) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "MIGRATE_HOME": str(Path(folder) / "var"),
            "MIGRATE_EXTRACTED": str(Path(folder) / "extracted"),
            "MIGRATE_PORT_BASE": str(port_base),
        }
        system = System(Settings.from_env(env))
        settings = system.settings
        settings.home.mkdir(parents=True)
        upgrade(settings.monolith_url)
        host = Monolith(settings.monolith_url)
        seed(host, synthetic.generate(200))
        try:
            system.up()
            extract(system, "billing")
            resources = system.resources()
            system.up()
            if not functions:
                _without_functions(system, resources)
            sent = _pay_steadily(host, rate, seconds)
            lags, relayed = _lags(settings, sent)
        finally:
            system.down()

    lags.sort()
    relayed.sort()
    return {
        "functions": functions,
        "relay_p50_ms": round(statistics.median(relayed), 1),
        "relay_p99_ms": round(relayed[int(len(relayed) * 0.99) - 1], 1),
        "rate_per_s": rate,
        "events": len(lags),
        "p50_ms": round(statistics.median(lags), 1),
        "p99_ms": round(lags[int(len(lags) * 0.99) - 1], 1),
        "max_ms": round(lags[-1], 1),
    }


def _without_functions(system: System, resources: Resources) -> None:
    app = system.manifest.name
    sns = sns_client(system.settings.endpoint_url)
    for context in system.manifest.contexts.values():
        for effect in context.side_effects:
            system.supervisor.stop(f"{context.name}-{effect.name.replace('_', '-')}")
            queue = names.side_effect_queue(app, context.name, effect.name)
            arn = resources.subscription_arns.get((names.topic(app, context.name),
                                                   queue))
            if arn:
                sns.unsubscribe(SubscriptionArn=arn)


def _pay_steadily(host: Monolith, rate: float, seconds: float) -> int:
    interval = 1 / rate
    count = int(rate * seconds)
    started = time.monotonic()
    for n in range(count):
        command = RecordPayment(1 + n % 200, str(uuid.uuid4()), Decimal("0.01"))
        record_payment(command, host.unit_of_work("billing"))
        pause = started + (n + 1) * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return count


def _lags(
    settings: Settings, expected: int, timeout: float = 120
) -> tuple[list[float], list[float]]:
    """Commit-to-applied lags, and commit-to-published (the relay's share)."""
    outbox, inbox = queue_tables("billing")
    monolith = create_engine(settings.monolith_url)
    service = create_engine(settings.service_url("billing"))
    deadline = time.monotonic() + timeout
    while True:
        with monolith.connect() as db:
            rows = db.execute(
                sa.select(
                    outbox.c.event_id, outbox.c.occurred_at, outbox.c.published_at
                ).where(outbox.c.event_type == "PaymentReceived")
            ).all()
        with service.connect() as db:
            applied = {
                event_id: at
                for event_id, at in db.execute(
                    sa.select(inbox.c.event_id, inbox.c.handled_at).where(
                        inbox.c.consumer == "billing.replica"
                    )
                )
            }
        done = sum(1 for r in rows if r.event_id in applied)
        if done >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    def ms(later: str, earlier: str) -> float:
        delta = datetime.fromisoformat(later) - datetime.fromisoformat(earlier)
        return delta.total_seconds() * 1000

    lags = [
        ms(applied[r.event_id], r.occurred_at) for r in rows if r.event_id in applied
    ]
    relayed = [ms(r.published_at, r.occurred_at) for r in rows if r.published_at]
    return lags, relayed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m migrate.sync.lagbench")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--port-base", type=int, default=27000)
    parser.add_argument("--with-functions", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure(args.rate, args.seconds, args.port_base,
                             args.with_functions), indent=2))


if __name__ == "__main__":
    main()
