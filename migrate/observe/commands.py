"""`migrate metrics targets|grafana|rules`: where to scrape, what to draw,
what to alert on.

Thin commands over `migrate.observe.targets`, `.grafana` and `.rules`.
Exit codes: 0 done; 1 nothing to list (no system running); 2 bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from migrate.errors import SystemNotRunning
from migrate.settings import Settings


def _system():  # type: ignore[no-untyped-def]
    from migrate.system import System

    return System(Settings.from_env())


def _write_or_print(text: str, out: Path | None, what: str) -> None:
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
        return

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    click.echo(f"wrote {what} to {out}")


@click.group("metrics")
def metrics() -> None:
    """Prometheus metrics of the running system: targets, dashboard, rules."""


@metrics.command("targets")
@click.option("--json", "as_json", is_flag=True, help="print the targets as JSON")
def targets_command(as_json: bool) -> None:
    """List the metrics endpoint of every process running now.

    `migrate up` also writes them, with a prometheus.yml that scrapes them,
    to <home>/prometheus/."""
    from migrate.observe.targets import scrape_targets

    system = _system()
    found = scrape_targets(system)
    if not found:
        raise SystemNotRunning(
            f"no process of the system in {system.settings.home} is running; "
            "start it with `migrate up`"
        )

    folder = system.settings.prometheus_dir
    if as_json:
        click.echo(json.dumps({
            "targets": [t.as_json() for t in found],
            "prometheus_config": str(folder / "prometheus.yml"),
        }, indent=2))
        return

    width = max(len(t.process) for t in found)
    for target in found:
        note = "  (admin token)" if target.token else ""
        click.echo(f"{target.process:<{width}}  {target.url}{note}")
    click.echo(f"Prometheus: prometheus --config.file={folder / 'prometheus.yml'}")


@metrics.command("grafana")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the dashboard here instead of printing it")
def grafana_command(out: Path | None) -> None:
    """The migration dashboard as Grafana's import JSON."""
    from migrate.observe.grafana import dashboard

    _write_or_print(json.dumps(dashboard(), indent=2) + "\n", out,
                    "the migration dashboard")


@metrics.command("rules")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the rules here instead of printing them")
def rules_command(out: Path | None) -> None:
    """Prometheus recording and alerting rules for the SLOs the router
    enforces (set them with `migrate slo`)."""
    from migrate.observe import rules
    from migrate.router.state import StateStore

    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    found = rules.slo_rules(StateStore(settings.state_path).snapshot())
    count = sum(len(group["rules"]) for group in found["groups"])
    _write_or_print(rules.render(found), out, f"{count} rules")


commands = [metrics]
