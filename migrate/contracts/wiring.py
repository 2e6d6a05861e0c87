"""How an extracted service is started and put in states for verification.

`migrate extract <context>` writes `<context>_contracts.py` beside the
service, holding a `ServiceWiring`: the Nameko module and configuration to
run, the environment variables that give it an address and a database, the
queues it consumes (they must exist before it starts), and the module of
the context's provider states. `migrate contracts verify --host service`
reads it, so a freshly extracted context is verified with no edits.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from migrate.errors import NotExtracted


@dataclasses.dataclass(frozen=True)
class ServiceWiring:
    context: str
    service_module: str
    config: str
    address_variable: str
    database_variable: str
    queues: tuple[str, ...]
    states: str
    migrations: str = "migrations"


def wiring_file(folder: Path, context: str) -> Path:
    return folder / f"{context}_contracts.py"


def load(folder: Path, context: str) -> ServiceWiring:
    path = wiring_file(folder, context)
    if not path.exists():
        raise NotExtracted(
            f"{folder} has no {path.name}, so its service cannot be verified; "
            f"generate it again with `migrate extract {context} --force`"
        )

    spec = importlib.util.spec_from_file_location(f"_{context}_contracts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wiring: ServiceWiring = module.WIRING
    return wiring
