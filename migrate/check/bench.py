"""How long `migrate check` takes on a large generated codebase.

    python -m migrate.check.bench [--modules 2000] [--plant N] [--keep DIR]

Generates, in a temporary folder, a monolith of `--modules` modules split
into contexts of about a hundred modules each (domain, events, api,
handlers, routes, adapters, tables, and a `model` subpackage of plain modules that
import one another, the standard library and other contexts' APIs and
events), with its manifest, then times one full check (imports and tables)
and prints the figure with the machine it ran on. The generated code is
clean, so the check runs every rule on every module and reports nothing,
unless `--plant N` plants N violations (an import of another context's
internals, a framework in a domain module, a foreign key into another
context, a star import, in turn): the bench then says whether the check
found exactly those, at their file:line, and exits 1 when it did not.
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
_FIXED = ("__init__", "api", "events", "domain", "handlers", "routes", "adapters",
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
        "routes.py": "ROUTES = ()\nERRORS: dict = {}\n",
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
            routes = "{root}.routes"
            metadata = "{root}.tables:metadata"
            unit_of_work = "{root}.adapters:UnitOfWork"
            tables = ["{name}_things", "{name}_parts"]
            """))
    parts.append(textwrap.dedent("""
        [check]
        host = ["bench_monolith", "bench_monolith.host"]

        [check.roles.domain]
        modules = ["__init__", "api", "events", "domain", "handlers", "routes",
                   "model.**"]
        forbid = ["flask.**", "sqlalchemy.**", "boto3.**", "nameko.**"]

        [check.roles.adapters]
        modules = ["adapters", "tables"]
        forbid = ["sqlalchemy.orm.**", "flask.**", "boto3.**", "nameko.**"]
        """))
    return "".join(parts)


# The kinds of violation `plant` writes, in turn (a foreign key into another
# context needs two contexts).
PLANTED_RULES = ("internal-import", "forbidden-import", "cross-context-foreign-key",
                 "star-import")


def plant(folder: Path, count: int) -> list[tuple[str, str]]:
    """Plant `count` violations in the generated code under `folder`; their
    (rule, location) as the check reports them."""
    package = folder / "bench_monolith"
    names = sorted(p.name for p in package.iterdir() if p.name.startswith("context"))
    rules = [r for r in PLANTED_RULES
             if len(names) > 1 or r != "cross-context-foreign-key"]
    planted = []
    for number in range(count):
        rule = rules[number % len(rules)]
        name = names[(number // len(rules)) % len(names)]
        other = names[(names.index(name) + 1) % len(names)]
        round_ = number // (len(rules) * len(names))
        planted.append(_plant(package / name, rule, other, round_))
    return planted


def _plant(context: Path, rule: str, other: str, round_: int) -> tuple[str, str]:
    if rule == "cross-context-foreign-key":
        tables = context / "tables.py"
        text = tables.read_text()
        own = f'"{context.name}_things.thing_id"'
        if own not in text:
            raise ValueError(f"{tables} has no foreign key left to point elsewhere")
        tables.write_text(text.replace(own, f'"{other}_things.thing_id"'))
        line = text[: text.index(own)].count("\n") + 1
        return rule, f"bench_monolith/{context.name}/tables.py:{line}"

    statement, module = {
        "internal-import": (f"from bench_monolith.{other} import adapters",
                            f"model/m{round_:04d}.py"),
        "forbidden-import": ("import flask", f"model/m{round_:04d}.py"),
        "star-import": ("from json import *", f"model/m{round_:04d}.py"),
    }[rule]
    target = context / module
    lines = target.read_text().splitlines()
    target.write_text("\n".join([*lines, statement]) + "\n")
    return rule, f"bench_monolith/{context.name}/{module}:{len(lines) + 1}"


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
    parser.add_argument("--plant", type=int, default=0, metavar="N",
                        help="plant N violations and check that each is found")
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="check-bench-") as scratch:
        folder = args.keep or Path(scratch)
        manifest = generate(folder, args.modules)
        planted = set(plant(folder, args.plant))
        started = time.perf_counter()
        report = check(manifest)
        seconds = time.perf_counter() - started

    found = {(v.rule, v.location) for v in report.violations}
    print(f"migrate check: {report.modules} modules, {report.tables} tables, "
          f"{len(report.violations)} violations in {seconds:.2f} s "
          f"({machine()})")
    if planted:
        missed, extra = sorted(planted - found), sorted(found - planted)
        print(f"planted {len(planted)} violations: {len(planted) - len(missed)} "
              f"found where planted, {len(missed)} missed, {len(extra)} unexpected")
        for rule, location in missed:
            print(f"  missed {rule} at {location}")
        for rule, location in extra:
            print(f"  unexpected {rule} at {location}")
    return 0 if found == planted else 1


if __name__ == "__main__":
    raise SystemExit(main())
