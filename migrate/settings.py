"""Where the kit keeps its files, which ports it uses, which databases.

Everything comes from the environment with laptop defaults, so a user needs
no configuration and a test can run a whole system in a temporary folder on
ports of its own:

    MIGRATE_MANIFEST        the context manifest of the monolith
                            <project>/monolith/contexts.toml
    MIGRATE_HOME            working folder (databases, logs, mail)  ./var
    MIGRATE_EXTRACTED       where extracted services are written    ./extracted
    MIGRATE_PORT_BASE       first of the ports the system listens on  8700
    MONOLITH_DATABASE_URL   the monolith's database     sqlite:///<home>/monolith.db
    <CONTEXT>_DATABASE_URL  an extracted service's      sqlite:///<home>/<context>.db
    AWS_ENDPOINT_URL        SQS and SNS; unset, the local emulator on loopback
    MIGRATE_VISIBILITY_SECONDS  how long a received message stays hidden   30
    MIGRATE_TRACING         X-Ray tracing of every process, on or off     on
    AWS_XRAY_DAEMON_ADDRESS where segments go (UDP); the collector listens
                            there                            127.0.0.1:2000
    MIGRATE_METRICS_EMF     CloudWatch EMF lines of every process's metrics,
                            on or off                                      off

Ports from the base: router +0, monolith +1, emulator +2, the router's
admin API and dashboard +3, the trace collector's HTTP side +5, the service
of the n-th context of the manifest +10+n.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from migrate.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_PASSED_ON = frozenset({"AWS_ENDPOINT_URL", "MIGRATE_VISIBILITY_SECONDS"})
DEFAULT_MANIFEST = PROJECT_ROOT / "monolith" / "contexts.toml"
MANIFEST_VARIABLE = "MIGRATE_MANIFEST"


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path
    extracted_dir: Path
    port_base: int
    environ: Mapping[str, str] = dataclasses.field(repr=False, default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        base = env.get("MIGRATE_PORT_BASE", "8700")
        if not base.isdigit() or not 1024 <= int(base) <= 65000:
            raise ConfigurationError(
                f"MIGRATE_PORT_BASE={base!r}: the port base runs 1024-65000"
            )

        visibility = env.get("MIGRATE_VISIBILITY_SECONDS", "30")
        if not visibility.isdigit() or not 1 <= int(visibility) <= 43200:
            raise ConfigurationError(
                f"MIGRATE_VISIBILITY_SECONDS={visibility!r}: it runs 1-43200"
            )

        return cls(
            home=Path(env.get("MIGRATE_HOME", "var")).resolve(),
            extracted_dir=Path(env.get("MIGRATE_EXTRACTED", "extracted")).resolve(),
            port_base=int(base),
            environ=dict(env),
        )

    def exported(self) -> dict[str, str]:
        """The variables that give a child process these same settings,
        whatever its working folder."""
        found = {
            "MIGRATE_HOME": str(self.home),
            "MIGRATE_EXTRACTED": str(self.extracted_dir),
            "MIGRATE_PORT_BASE": str(self.port_base),
            MANIFEST_VARIABLE: str(self.manifest_path),
        }
        for name, value in self.environ.items():
            if name.endswith("_DATABASE_URL") or name in _PASSED_ON:
                found[name] = value
        return found

    @property
    def manifest_path(self) -> Path:
        """The context manifest every part of the system reads."""
        return Path(self.environ.get(MANIFEST_VARIABLE) or DEFAULT_MANIFEST).resolve()

    @property
    def monolith_url(self) -> str:
        return self.environ.get(
            "MONOLITH_DATABASE_URL", f"sqlite:///{self.home / 'monolith.db'}"
        )

    def service_url(self, context: str) -> str:
        return self.environ.get(
            f"{context.upper()}_DATABASE_URL",
            f"sqlite:///{self.home / f'{context}.db'}",
        )

    @property
    def state_path(self) -> Path:
        return self.home / "router.db"

    @property
    def demo_mark(self) -> Path:
        """Left in a home `migrate demo` made, which a later demo may clear."""
        return self.home / "made-by-demo"

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def router_port(self) -> int:
        return self.port_base

    @property
    def monolith_port(self) -> int:
        return self.port_base + 1

    @property
    def emulator_port(self) -> int:
        return self.port_base + 2

    def service_port(self, context_index: int) -> int:
        return self.port_base + 10 + context_index

    @property
    def endpoint_url(self) -> str:
        return self.environ.get(
            "AWS_ENDPOINT_URL", f"http://127.0.0.1:{self.emulator_port}"
        )

    @property
    def visibility_timeout(self) -> int:
        """Seconds a received message stays hidden: a handler that dies is
        retried after this, and poison reaches its dead-letter queue after
        five of these."""
        return int(self.environ.get("MIGRATE_VISIBILITY_SECONDS", "30"))

    @property
    def uses_emulator(self) -> bool:
        return "AWS_ENDPOINT_URL" not in self.environ

    @property
    def admin_port(self) -> int:
        return self.port_base + 3

    @property
    def collector_http_port(self) -> int:
        return self.port_base + 5

    @property
    def trace_address(self) -> str:
        """Where every process sends its X-Ray segments (UDP host:port)."""
        return self.environ.get("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000")

    @property
    def tracing(self) -> bool:
        """Tracing is on in a system `migrate up` starts, unless turned off."""
        return self.environ.get("MIGRATE_TRACING", "on").lower() != "off"

    @property
    def metrics_dir(self) -> Path:
        """Where processes without an HTTP server record their scrape URL."""
        return self.run_dir / "metrics"

    @property
    def prometheus_dir(self) -> Path:
        """Scrape targets, rules and a prometheus.yml for this system."""
        return self.home / "prometheus"

    @property
    def traces_path(self) -> Path:
        return self.home / "traces.db"

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def monolith_http(self) -> str:
        return f"http://127.0.0.1:{self.monolith_port}"
