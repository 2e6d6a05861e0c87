"""How long `migrate check` takes on a large generated codebase.

    python -m migrate.check.bench [--modules 2000] [--keep DIR]

Generates, in a temporary folder, a monolith of `--modules` modules split
into contexts of about a hundred modules each (domain, events, api,
handlers, adapters, tables, and a `model` subpackage of plain modules that
import one another, the standard library and other contexts' APIs and
events), with its manifest, then times one full check (imports and tables)
and prints the figure with the machine it ran on. The generated code is
clean, so the check runs every rule on every module and reports nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import textwrap
import time
from pathlib import Path

MODULES_PER_CONTEXT = 100
# The modules each context has besides its `model` subpackage.
_FIXED = ("__init__", "api", "events", "domain", "handlers", "adapters",
          "tables", "model/__init__")


def generate(folder: Path, modules: int, seed: int = 7) -> Path:
    """Write the codebase under `folder`; return its manifest's path."""
    rng = random.Random(seed)
    contexts = max(1, round(modules / MODULES_PER_CONTEXT))
    names = [f"context{n:03d}" for n in range(contexts)]
    package = folder / "bench_monolith"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A generated monolith."""\n')
    (package / "host.py").write_text(
        "".join(f"from bench_monolith.{n} import api as {n}_api  # noqa: F401\n"
                for n in names))
    remaining = modules - 2
    for index, name in enumerate(names):
        share = remaining // contexts + (1 if index < remaining % contexts else 0)
        models = max(1, share - len(_FIXED))
        others = [n for n in names if n != name]
        _write_context(package / name, name, models, others, rng)

    manifest = package / "contexts.toml"
    manifest.write_text(_manifest(names))
    return manifest


def _write_context(folder: Path, name: str, models: int,
                   others: list[str], rng: random.Random) -> None:
    root = f"bench_monolith.{name}"
    (folder / "model").mkdir(parents=True)
    files = {
        "__init__.py": f'"""Context {name}."""\n',
        "model/__init__.py": "",
        "domain.py": "import dataclasses\n\n\n@dataclasses.dataclass\n"
                     "class Thing:\n    thing_id: int\n",
        "events.py": f"from {root}.domain import Thing\n\n\n"
                     "class ThingChanged:\n    thing: Thing\n",
        "api.py": f"from {root}.domain import Thing\n\n\n"
                  "def thing(thing_id: int) -> Thing:\n    return Thing(thing_id)\n",
        "handlers.py": f"from {root}.domain import Thing\n"
                       f"from {root}.events import ThingChanged\n",
        "adapters.py": "import sqlalchemy as sa\n\n"
                       f"from {root}.tables import things\n\n"
                       "UnitOfWork = object\nQUERY = sa.select(things)\n",
        "tables.py": textwrap.dedent(f"""\
            import sqlalchemy as sa

            metadata = sa.MetaData()
            things = sa.Table(
                "{name}_things", metadata,
                sa.Column("thing_id", sa.Integer, primary_key=True),
            )
            parts = sa.Table(
                "{name}_parts", metadata,
                sa.Column("part_id", sa.Integer, primary_key=True),
                sa.Column("thing_id", sa.ForeignKey("{name}_things.thing_id")),
            )
            """),
    }
    for number in range(models):
        lines = ["from __future__ import annotations", "", "import json",
                 "from decimal import Decimal", "",
                 f"from {root}.domain import Thing"]
        if number:
            lines.append(f"from {root}.model import m{rng.randrange(number):04d}")
        for other in rng.sample(others, min(2, len(others))):
            module = rng.choice(("api", "events"))
            lines.append(f"from bench_monolith.{other} import {module}")
        lines += ["", "", f"def value_{number}(thing: Thing) -> str:",
                  "    return json.dumps(str(Decimal(thing.thing_id)))", ""]
        files[f"model/m{number:04d}.py"] = "\n".join(lines)
    for relative, text in files.items():
        (folder / relative).write_text(text)


def _manifest(names: list[str]) -> str:
    parts = ['[monolith]\nname = "bench"\n']
    for name in names:
        root = f"bench_monolith.{name}"
        parts.append(textwrap.dedent(f"""
            [contexts.{name}]
            package = "{root}"
            api = "{root}.api"
            events = "{root}.events"
            routes = "{root}.api"
            metadata = "{root}.tables:metadata"
            unit_of_work = "{root}.adapters:UnitOfWork"
            tables = ["{name}_things", "{name}_parts"]
            """))
    parts.append(textwrap.dedent("""
        [check]
        host = ["bench_monolith", "bench_monolith.host"]

        [check.roles.domain]
        modules = ["__init__", "api", "events", "domain", "handlers", "model.**"]
        forbid = ["flask.**", "sqlalchemy.**", "boto3.**", "nameko.**"]

        [check.roles.adapters]
        modules = ["adapters", "tables"]
        forbid = ["sqlalchemy.orm.**", "flask.**", "boto3.**", "nameko.**"]
        """))
    return "".join(parts)


def machine() -> str:
    return (f"{_cpu()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()} on {platform.system()}")


def _cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or platform.machine()

    names = [line.split(":", 1)[1].strip() for line in info.splitlines()
             if line.startswith("model name")]
    return names[0] if names else platform.machine()


def main(argv: list[str] | None = None) -> int:
    from migrate.check.run import check

    parser = argparse.ArgumentParser(prog="python -m migrate.check.bench")
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="check-bench-") as scratch:
        folder = args.keep or Path(scratch)
        manifest = generate(folder, args.modules)
        started = time.perf_counter()
        report = check(manifest)
        seconds = time.perf_counter() - started

    print(f"migrate check: {report.modules} modules, {report.tables} tables, "
          f"{len(report.violations)} violations in {seconds:.2f} s "
          f"({machine()})")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
