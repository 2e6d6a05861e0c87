"""Where Prometheus scrapes a running system, and a configuration that does.

Every process of `migrate up` exposes `/metrics` (see
`migrate.observe.metrics`): the router on its admin listener (with the
admin token), the monolith, each service and the trace collector on their
HTTP ports, and every other process on a port it picked and recorded in
`<run>/metrics/<process>.metrics`. The emulator exposes nothing.

`write_prometheus` writes, in `<home>/prometheus/`:

- `targets.json`: file_sd targets of every process but the router, each
  labelled with its `process`;
- `router.json`: the router's admin listener, scraped with its token;
- `router.token`: that token (readable by its owner only);
- `rules.yml`: recording and alerting rules for the SLOs in the router's
  state store (see `migrate.observe.rules`);
- `prometheus.yml`: scrapes both every 5 s and loads the rules, so
  `prometheus --config.file=var/prometheus/prometheus.yml` runs as is.

Prometheus re-reads file_sd files when they change, so a running
Prometheus follows a later `migrate up` (an extraction adds a service).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from migrate.observe import rules
from migrate.router.admin import admin_file

if TYPE_CHECKING:
    from migrate.system import System

# Processes scraped on an HTTP port of their own, rather than a recorded one.
_OWN_PORT = frozenset({"emulator", "collector", "monolith", "router"})
SCRAPE_INTERVAL = "5s"


@dataclasses.dataclass(frozen=True)
class Target:
    """One process's metrics endpoint; `token` when it needs the router's
    admin token."""

    process: str
    url: str
    token: bool = False

    @property
    def address(self) -> str:
        return urlsplit(self.url).netloc

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def scrape_targets(system: System) -> list[Target]:
    """The metrics endpoints of the processes running now."""
    settings = system.settings
    running = system.supervisor.running()
    found: list[Target] = []
    if "router" in running:
        admin = _admin(settings.state_path)
        if admin is not None:
            found.append(Target("router", admin["url"] + "/metrics", token=True))
    if "monolith" in running:
        found.append(Target("monolith", f"{settings.monolith_http}/metrics"))
    if "collector" in running:
        found.append(Target(
            "collector", f"http://127.0.0.1:{settings.collector_http_port}/metrics"
        ))
    for extraction in system.extractions():
        name = f"{extraction.context}-service"
        if name in running:
            found.append(Target(name, f"{system.service_url(extraction.context)}"
                                      "/metrics"))
    for name, pid in sorted(running.items()):
        if name in _OWN_PORT or name.endswith("-service"):
            continue
        recorded = _recorded(settings.metrics_dir, name)
        # A file left by an earlier run of the same name names a dead port.
        if recorded is not None and recorded.get("pid") == pid:
            found.append(Target(name, recorded["url"]))
    return found


def write_prometheus(
    system: System, wait_for: Iterable[str] = (), timeout: float = 30.0
) -> Path:
    """Write the targets, the token, the rules and prometheus.yml; first
    wait (up to `timeout` s) until the processes in `wait_for` recorded
    their scrape address. Returns the folder."""
    settings = system.settings
    expected = [
        name for name in wait_for
        if name not in _OWN_PORT and not name.endswith("-service")
    ]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        _recorded(settings.metrics_dir, name) is None for name in expected
    ):
        time.sleep(0.1)

    folder = settings.prometheus_dir
    folder.mkdir(parents=True, exist_ok=True)
    targets = scrape_targets(system)
    _write(folder / "targets.json", _file_sd([t for t in targets if not t.token]))
    _write(folder / "router.json", _file_sd([t for t in targets if t.token]))
    admin = _admin(settings.state_path)
    token = folder / "router.token"
    descriptor = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(admin["token"] if admin else "")
    _write(folder / "rules.yml", rules.render(rules.slo_rules(system.state.snapshot())))
    _write(folder / "prometheus.yml", yaml.safe_dump(configuration(), sort_keys=False))
    return folder


def configuration() -> dict[str, Any]:
    """prometheus.yml: every target of the system, and the SLO rules."""
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {
                "job_name": "migrate",
                "file_sd_configs": [{"files": ["targets.json"]}],
            },
            {
                "job_name": "migrate-router",
                "authorization": {"type": "Bearer",
                                  "credentials_file": "router.token"},
                "file_sd_configs": [{"files": ["router.json"]}],
            },
        ],
    }


def _file_sd(targets: list[Target]) -> str:
    groups = [
        {
            "targets": [target.address],
            "labels": {
                "process": target.process,
                "__metrics_path__": urlsplit(target.url).path,
            },
        }
        for target in targets
    ]
    return json.dumps(groups, indent=2) + "\n"


def _write(path: Path, text: str) -> None:
    # Prometheus may read the file at any moment: it sees the old or the new.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def _recorded(folder: Path, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads((folder / f"{name}.metrics").read_text())
    except (OSError, ValueError):
        return None
    return found


def _admin(state_path: Path) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(admin_file(state_path).read_text())
    except (OSError, ValueError):
        return None
    return found
