"""The migration dashboard: it fits Grafana's schema, and reads only metrics
the kit emits.

Grafana's schema is checked two ways: with Grafana's own published
TypeScript types of it (`@grafana/schema`, checked by the TypeScript
compiler; `.ci/run` installs both from npm into tests/observe/grafana_schema),
and by decoding the JSON with Grafana's foundation SDK models, which drop
anything the schema does not know.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from metric_names import metric_names, variable_metric_names
from workspaces import unavailable

from migrate.observe import grafana
from migrate.observe.metrics import CATALOGUE

REPOSITORY = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).parent / "grafana_schema"
CHECKED_PANELS = {
    "timeseries": ("TimeSeriesPanelCfg_types.gen", "Options", "FieldConfig"),
    "stat": ("StatPanelCfg_types.gen", "Options", None),
}


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in model["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _typescript(model: dict[str, Any]) -> str:
    """A module that assigns the dashboard, and each panel's options, to
    Grafana's types: the compiler refuses any field they do not have."""
    lines = [
        'import type { Dashboard } from "@grafana/schema";',
        # JSON holds an enum's values, not its members: the schema's string
        # enums are read as the unions of their values. A field the JSON
        # leaves out takes the schema's default when Grafana loads it, as
        # the types' required fields (the schema's defaulted ones) do.
        "type Json<T> = T extends string ? `${T}` : T extends number | boolean"
        " | null | undefined ? T : { [K in keyof T]?: Json<T[K]> };",
    ]
    for kind, (module, options, field) in CHECKED_PANELS.items():
        names = [f"{options} as {kind}Options"]
        if field:
            names.append(f"{field} as {kind}FieldConfig")
        lines.append(
            f"import type {{ {', '.join(names)} }} from "
            f'"@grafana/schema/dist/esm/raw/composable/{kind}/panelcfg/x/{module}";'
        )
    lines.append(f"export const dashboard: Json<Dashboard> = {json.dumps(model)};")
    for panel in _panels(model):
        kind = panel["type"]
        if kind not in CHECKED_PANELS:
            continue
        number = panel["id"]
        lines.append(f"export const options{number}: Json<{kind}Options> = "
                     f"{json.dumps(panel['options'])};")
        if CHECKED_PANELS[kind][2]:
            custom = panel["fieldConfig"]["defaults"].get("custom", {})
            lines.append(f"export const field{number}: Json<{kind}FieldConfig> = "
                         f"{json.dumps(custom)};")
    return "\n".join(lines) + "\n"


def _compile(source: str) -> subprocess.CompletedProcess[str]:
    compiler = SCHEMA / "node_modules" / "typescript" / "bin" / "tsc"
    node = shutil.which("node")
    if node is None or not compiler.exists():
        unavailable(f"Grafana's schema is not installed in {SCHEMA} "
                    "(npm ci there; .ci/run does)")
    checked = SCHEMA / "dashboard.check.ts"
    checked.write_text(source)
    try:
        return subprocess.run(
            [str(node), str(compiler), "--noEmit", "--strict",
             "--moduleResolution", "bundler", "--module", "esnext",
             "--target", "es2020", checked.name],
            cwd=SCHEMA, capture_output=True, text=True, timeout=120,
        )
    finally:
        checked.unlink()


def test_the_dashboard_fits_grafana_s_published_schema() -> None:
    compiled = _compile(_typescript(grafana.dashboard()))

    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


@pytest.mark.parametrize("key, value, named", [
    ("placment", "bottom", "placment"),
    ("displayMode", "tabel", "tabel"),
])
def test_the_schema_check_refuses_what_grafana_does_not_know(
    key: str, value: str, named: str
) -> None:
    model = grafana.dashboard()
    model["panels"][0]["panels"][0]["options"]["legend"][key] = value

    compiled = _compile(_typescript(model))

    assert compiled.returncode != 0
    assert named in compiled.stdout


def _kept(original: Any, decoded: Any, path: str = "") -> list[str]:
    """The paths of `original` that `decoded` lost or changed."""
    if isinstance(original, dict):
        if not isinstance(decoded, dict):
            return [path]
        return [
            lost
            for key, value in original.items()
            for lost in (
                [f"{path}.{key}"] if key not in decoded
                else _kept(value, decoded[key], f"{path}.{key}")
            )
        ]
    if isinstance(original, list):
        if not isinstance(decoded, list) or len(decoded) != len(original):
            return [path]
        return [
            lost
            for index, (a, b) in enumerate(zip(original, decoded, strict=True))
            for lost in _kept(a, b, f"{path}[{index}]")
        ]
    return [] if original == decoded else [path]


def test_grafana_s_models_decode_the_dashboard_without_losing_a_field() -> None:
    model = grafana.dashboard()

    decoded = json.loads(json.dumps(Dashboard.from_json(model), cls=JSONEncoder))

    assert _kept(model, decoded) == []


def test_every_metric_the_dashboard_reads_is_in_the_kit_s_catalogue() -> None:
    model = grafana.dashboard()
    series = {name for spec in CATALOGUE.values() for name in spec.series()}

    read = set().union(*(metric_names(e) for e in grafana.expressions(model)))
    read |= set().union(
        *(variable_metric_names(q) for q in grafana.variable_queries(model))
    )

    assert read and read <= series, sorted(read - series)


def test_each_route_group_shows_its_backends_side_by_side() -> None:
    model = grafana.dashboard()

    group = model["panels"][0]
    exprs = [t["expr"] for p in group["panels"] for t in p.get("targets", [])]

    assert group["repeat"] == "context"
    router = [e for e in exprs if "migrate_router_request" in e]
    assert len(router) == 4
    assert all("by (backend" in e and '"$context"' in e for e in router)


def test_migrate_metrics_grafana_writes_the_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"

    done = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "metrics", "grafana", "--out", str(out)],
        capture_output=True, text=True, cwd=REPOSITORY, timeout=120,
        env={**os.environ, "MIGRATE_HOME": str(tmp_path)},
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == grafana.dashboard()
    assert str(out) in done.stdout
