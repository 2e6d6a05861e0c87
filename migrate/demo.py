"""`migrate demo`: a real migration of billing, end to end, in about a minute.

Seed the monolith, start everything side by side, extract billing, then
replay orders, payments and invoice reads through the router while billing's
reads move 0 -> 50 -> 100 % and its writes move in one fenced step. The
report counts requests per backend and failures, compares invoices and
totals in both databases, and counts the e-mails the function sent.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests
import sqlalchemy as sa

from migrate.errors import MigrateError, ShiftRefused
from migrate.kernel.money import from_cents
from migrate.kernel.sql import create_engine
from migrate.system import System

Say = Callable[[str], None]
CONTEXT = "billing"
# New invoices are read only once they are this old: a replica may lag
# behind its writer by a moment, and the demo counts every 404 as a failure.
SETTLE_SECONDS = 3.0


@dataclasses.dataclass
class DemoReport:
    steps: list[dict]
    requests: dict[str, int]
    failed: int
    failures: list[str]
    orders_placed: int
    payments_made: int
    invoices: dict[str, int]
    totals: dict[str, str]
    emails: int
    uninvoiced: dict[str, int]
    flip_seconds: float

    @property
    def ok(self) -> bool:
        """No failed request, and nothing lost: every order invoiced on both
        sides with equal totals, and one e-mail per new invoice."""
        return (
            self.failed == 0
            and not any(self.uninvoiced.values())
            and self.emails == self.orders_placed
            and self.totals["monolith"] == self.totals["service"]
        )

    def text(self) -> str:
        headline = (
            "Billing moved from the monolith to its service."
            if self.ok
            else "The migration of billing LOST or FAILED something: see below."
        )
        lines = ["", headline, ""]
        for step in self.steps:
            backends = ", ".join(
                f"{b} {n}" for b, n in sorted(step["backends"].items())
            )
            lines.append(
                f"  {step['step']:<24} {step['requests']:>5} requests  ({backends})"
            )
        lines += [
            "",
            "  requests per backend   "
            + ", ".join(f"{b} {n}" for b, n in sorted(self.requests.items())),
            f"  failed requests        {self.failed}",
            f"  orders placed          {self.orders_placed}",
            f"  payments made          {self.payments_made}",
            f"  invoices               monolith {self.invoices['monolith']}, "
            f"service {self.invoices['service']}",
            f"  invoice totals         monolith {self.totals['monolith']}, "
            f"service {self.totals['service']}",
            f"  e-mails sent           {self.emails}",
            f"  orders not invoiced    monolith {self.uninvoiced['monolith']}, "
            f"service {self.uninvoiced['service']}",
            f"  write flip took        {self.flip_seconds:.1f} s",
        ]
        lines += [f"  ! {f}" for f in self.failures[:10]]
        return "\n".join(lines)


class Traffic:
    """Orders, payments and invoice reads through the router, on one thread."""

    def __init__(
        self,
        base_url: str,
        customers: list[str],
        products: list[int],
        invoices: list[int],
        seed: int = 11,
    ):
        self.base_url = base_url
        self.customers = customers
        self.products = products
        self.invoices = list(invoices)
        self.random = random.Random(seed)
        self.session = requests.Session()
        self.backends: Counter[str] = Counter()
        self.failures: list[str] = []
        self.placed: list[int] = []
        self.payments = 0
        self._young: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        for n in itertools.count():
            if self._stop.is_set():
                return
            self._settle()
            kind = n % 10
            if kind in (0, 5):
                self._place_order()
            elif kind == 3:
                self._pay()
            elif kind == 7:
                self._call(
                    "GET", f"/customers/{self.random.choice(self.customers)}/invoices"
                )
            else:
                self._call("GET", f"/invoices/{self.random.choice(self.invoices)}")

    def _place_order(self) -> None:
        lines = [
            {
                "product_id": pid,
                "quantity": self.random.randint(1, 20),
                "discount": self.random.choice(["0", "0.05", "0.1", "0.25"]),
            }
            for pid in self.random.sample(self.products, self.random.randint(1, 3))
        ]
        body = {
            "customer_id": self.random.choice(self.customers),
            "lines": lines,
            "freight": f"{self.random.randint(0, 9000) / 100:.2f}",
        }
        reply = self._call("POST", "/orders", body)
        if reply is not None and reply.status_code == 201:
            order_id = reply.json()["order_id"]
            self.placed.append(order_id)
            self._young.append((time.monotonic(), order_id))

    def _pay(self) -> None:
        invoice = self.random.choice(self.invoices)
        key = str(uuid.UUID(int=self.random.getrandbits(128)))
        reply = self._call(
            "POST",
            f"/invoices/{invoice}/payments",
            {"amount": "0.01"},
            {"Idempotency-Key": key},
        )
        if reply is not None and reply.status_code == 201:
            self.payments += 1

    def _settle(self) -> None:
        cutoff = time.monotonic() - SETTLE_SECONDS
        while self._young and self._young[0][0] < cutoff:
            self.invoices.append(self._young.pop(0)[1])

    def _call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        headers: dict | None = None,
    ) -> requests.Response | None:
        try:
            reply = self.session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=30
            )
        except requests.RequestException as error:
            self.failures.append(f"{method} {path}: {error.__class__.__name__}")
            return None

        self.backends[reply.headers.get("X-Migrate-Backend", "?")] += 1
        if reply.status_code >= 400:
            self.failures.append(
                f"{method} {path}: {reply.status_code} {reply.text[:120]}"
            )
        return reply


def run(
    system: System, *, orders: int, dump: Path | None, seconds: float, say: Say
) -> DemoReport:
    from migrate.cli import _seed_database
    from migrate.contracts.gate import refusal
    from migrate.contracts.verify import verify as verify_contracts
    from migrate.extract.run import extract
    from migrate.seed import synthetic
    from migrate.seed.load import seed
    from migrate.seed.northwind import read_dump
    from migrate.sync.flip import move_writes

    settings = system.settings
    _refuse_a_home_of_its_own(system)
    say("stopping anything a previous run left")
    system.down()
    _clear_workspace(system)

    say("seeding the monolith")
    data = read_dump(dump) if dump else synthetic.generate(orders)
    _seed_database(
        settings, system.manifest, reset=False, quiet=True,
        run=lambda host, progress: seed(host, data, progress),
    )
    try:
        say("starting the monolith, the router and the emulator")
        system.up(say)
        say("extracting billing")
        extract(system, CONTEXT, force=True)
        system.up(say)
        say("verifying every contract, billing's on both hosts")
        verified = verify_contracts(settings)
        if not verified.ok:
            raise ShiftRefused(f"contracts fail: {verified.mismatches[:3]}")

        monolith = create_engine(settings.monolith_url)
        traffic = Traffic(settings.router_url, *_reference_data(monolith))
        steps: list[dict] = []
        flip_seconds = 0.0
        traffic.start()
        for weight in (0, 50, 100):
            refused = refusal(CONTEXT, settings) if weight else None
            if refused:
                raise ShiftRefused(refused)
            system.state.set_weight(CONTEXT, weight, "migrate demo", "demo step")
            steps.append(_measure(traffic, f"reads at {weight} %", seconds, say))
        before = Counter(traffic.backends)
        say("moving billing's writes to its service")
        flip_seconds = move_writes(system, CONTEXT, progress=say).waited_seconds
        steps.append(_step("write flip", before, traffic))
        steps.append(_measure(traffic, "writes at the service", seconds, say))
        traffic.stop()

        say("waiting for every invoice and e-mail")
        invoices, totals, emails, uninvoiced = _converge(system, traffic, timeout=60)
    finally:
        say("stopping everything")
        system.down()

    return DemoReport(
        steps=steps,
        requests=dict(traffic.backends),
        failed=len(traffic.failures),
        failures=traffic.failures,
        orders_placed=len(traffic.placed),
        payments_made=traffic.payments,
        invoices=invoices,
        totals=totals,
        emails=emails,
        uninvoiced=uninvoiced,
        flip_seconds=flip_seconds,
    )


def _refuse_a_home_of_its_own(system: System) -> None:
    """The demo starts from nothing and deletes what a previous demo left:
    never a migration the user made in the same home."""
    settings = system.settings
    if not settings.monolith_url.startswith("sqlite"):
        raise MigrateError(
            "the demo resets its databases and runs on SQLite files; "
            "unset MONOLITH_DATABASE_URL to run it"
        )

    if settings.demo_mark.exists():
        return

    found = sorted(
        path.name for pattern in ("monolith.db", f"{CONTEXT}.db", "router.db")
        for path in settings.home.glob(pattern)
    )
    if found:
        raise MigrateError(
            f"{settings.home} holds a system the demo did not make "
            f"({', '.join(found)}), which the demo would delete; set "
            "MIGRATE_HOME to another folder for the demo"
        )

    extraction = settings.extracted_dir / CONTEXT
    if extraction.exists():
        raise MigrateError(
            f"{extraction} holds an extraction the demo did not make, which "
            "the demo would replace; set MIGRATE_EXTRACTED to another folder "
            "for the demo"
        )


def _clear_workspace(system: System) -> None:
    settings = system.settings
    for pattern in ("monolith.db*", f"{CONTEXT}.db*", "router.db*"):
        for path in settings.home.glob(pattern):
            path.unlink()
    # The extraction a previous demo made goes with its database.
    for folder in (settings.mail_dir, settings.run_dir,
                   settings.extracted_dir / CONTEXT):
        shutil.rmtree(folder, ignore_errors=True)
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.demo_mark.write_text(
        "This folder's system was made by `migrate demo`, which may delete it.\n"
    )


def _reference_data(engine: sa.Engine) -> tuple[list[str], list[int], list[int]]:
    from monolith.billing.tables import invoices
    from monolith.catalog.tables import products
    from monolith.customers.tables import customers

    with engine.connect() as db:
        return (
            [r[0] for r in db.execute(sa.select(customers.c.customer_id))],
            [r[0] for r in db.execute(sa.select(products.c.product_id))],
            [r[0] for r in db.execute(sa.select(invoices.c.invoice_id))],
        )


def _measure(traffic: Traffic, name: str, seconds: float, say: Say) -> dict:
    say(name)
    before = Counter(traffic.backends)
    time.sleep(seconds)
    return _step(name, before, traffic)


def _step(name: str, before: Counter, traffic: Traffic) -> dict:
    now = Counter(traffic.backends)
    now.subtract(before)
    backends = {b: n for b, n in now.items() if n}
    return {"step": name, "requests": sum(backends.values()), "backends": backends}


def _converge(
    system: System, traffic: Traffic, timeout: float
) -> tuple[dict[str, int], dict[str, str], int, dict[str, int]]:
    from monolith.billing.tables import invoices

    settings = system.settings
    engines = {
        "monolith": create_engine(settings.monolith_url),
        "service": create_engine(settings.service_url(CONTEXT)),
    }
    placed = set(traffic.placed)
    deadline = time.monotonic() + timeout
    while True:
        counts, totals, missing = {}, {}, {}
        for side, engine in engines.items():
            with engine.connect() as db:
                counts[side] = int(
                    db.execute(
                        sa.select(sa.func.count()).select_from(invoices)
                    ).scalar()
                    or 0
                )
                cents = db.execute(
                    sa.select(
                        sa.func.sum(invoices.c.total_cents),
                        sa.func.sum(invoices.c.paid_cents),
                    )
                ).one()
                total, paid = (from_cents(int(c or 0)) for c in cents)
                totals[side] = f"{total:,} (paid {paid:,})"
                have = (
                    {
                        r[0]
                        for r in db.execute(
                            sa.select(invoices.c.invoice_id).where(
                                invoices.c.invoice_id.in_(placed)
                            )
                        )
                    }
                    if placed
                    else set()
                )
                missing[side] = len(placed - have)
        emails = len(list(settings.mail_dir.glob("*.eml")))
        settled = (
            not any(missing.values())
            and emails >= len(placed)
            and totals["monolith"] == totals["service"]
        )
        if settled or time.monotonic() > deadline:
            return counts, totals, emails, missing
        time.sleep(0.5)
