"""How fast a context's data moves: backfill against a plain bulk copy.

    python -m migrate.sync.bench [--orders N] [--postgres URL]

Seeds a synthetic monolith, then copies billing's tables into an empty
service database twice in the same run: once with the kit's backfill
(chunked, checkpointed, skipping rows already present) followed by its
verification (counts, totals, chunk checksums), and once as the baseline a
database offers for the same rows (PostgreSQL's COPY; on SQLite, which has
none, one executemany per table in one transaction). It prints rows/s for
each and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from migrate.extract.schema import service_metadata
from migrate.kernel.sql import create_engine
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.backfill import backfill, data_tables, parity
from monolith.host import Monolith


def _fresh(url: str) -> sa.Engine:
    engine = create_engine(url)
    for metadata in reversed(service_metadata("billing")):
        metadata.drop_all(engine)
    for metadata in service_metadata("billing"):
        metadata.create_all(engine)
    return engine


def _baseline(tables: list[sa.Table], source: sa.Engine, target: sa.Engine) -> int:
    rows = 0
    with source.connect() as db:
        data = {
            t.name: [dict(r._mapping) for r in db.execute(sa.select(t))] for t in tables
        }
    with target.begin() as db:
        for table in tables:
            batch = data[table.name]
            rows += len(batch)
            if not batch:
                continue
            if target.dialect.name == "postgresql":
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                for row in batch:
                    writer.writerow(["\\N" if v is None else v for v in row.values()])
                buffer.seek(0)
                cursor = db.connection.cursor()
                cursor.copy_expert(
                    f"COPY {table.name} ({', '.join(batch[0])}) FROM STDIN "
                    "WITH (FORMAT csv, NULL '\\N')",
                    buffer,
                )
            else:
                db.execute(table.insert(), batch)
    return rows


def measure(orders: int, target_url: str | None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        source_url = f"sqlite:///{Path(folder) / 'monolith.db'}"
        upgrade(source_url)
        host = Monolith(source_url)
        seed(host, synthetic.generate(orders))
        context = host.manifest.context("billing")
        tables = data_tables(context)
        target = target_url or f"sqlite:///{Path(folder) / 'billing.db'}"

        engine = _fresh(target)
        started = time.perf_counter()
        copied = _baseline(tables, host.engine, engine)
        baseline = time.perf_counter() - started

        engine = _fresh(target)
        started = time.perf_counter()
        backfill(context, host.engine, engine)
        found = parity(context, host.engine, engine)
        kit = time.perf_counter() - started
        assert not found.differences, found.differences

    rows = sum(source for source, _ in found.counts.values())
    return {
        "database": engine.dialect.name,
        "rows": rows,
        "baseline": "COPY" if engine.dialect.name == "postgresql" else "executemany",
        "baseline_rows_per_s": round(copied / baseline),
        "backfill_and_verify_rows_per_s": round(rows / kit),
        "ratio": round(baseline / kit, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m migrate.sync.bench")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL")
    args = parser.parse_args()
    results = [measure(args.orders, None)]
    if args.postgres:
        results.append(measure(args.orders, args.postgres))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
