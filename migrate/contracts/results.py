"""Verification results: what was verified, on which host, with which outcome.

Each verification of a provider on a host is stored as one JSON file,
`<MIGRATE_HOME>/contracts/<provider>@<host>.json`, replacing the one before:
the deploy gate reads only the latest. A result carries the digest of every
contract file it verified and of the provider's code, so the gate can tell
a result that no longer speaks for what would be deployed.

The code digest covers the provider context's package, the kit's kernel and
hosts (routes, envelopes, units of work, the service host) and, for a
service, its generated folder. It is a tripwire, not a build identity: a
change anywhere else that alters behaviour goes unnoticed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from migrate.settings import PROJECT_ROOT, Settings

_KIT_CODE = ("migrate/kernel", "migrate/hosts", "migrate/messaging/publisher.py",
             "monolith/host.py", "monolith/web.py")


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One way a provider breaks one interaction, in plain words."""

    consumer: str
    provider: str
    description: str
    path: str
    expected: str
    actual: str
    note: str = ""

    def text(self) -> str:
        where = f"{self.path}: " if self.path else ""
        line = (f"{self.consumer} -> {self.provider}: {self.description}: {where}"
                f"expected {self.expected}, got {self.actual}")
        return f"{line} ({self.note})" if self.note else line


@dataclasses.dataclass(frozen=True)
class PactResult:
    """One contract's outcome: `interactions` it holds, `replayed` of them
    the verifier reported on (fewer means some never ran), `broken` ones."""

    consumer: str
    file: str
    digest: str
    interactions: int
    broken: tuple[str, ...] = ()
    replayed: int = 0

    @property
    def ok(self) -> bool:
        return not self.broken


@dataclasses.dataclass(frozen=True)
class Verification:
    provider: str
    host: str
    verified_at: str
    seconds: float
    code_digest: str
    pacts: tuple[PactResult, ...]
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches and all(p.ok for p in self.pacts)

    @property
    def interactions(self) -> int:
        return sum(p.interactions for p in self.pacts)

    @property
    def broken(self) -> int:
        return sum(len(p.broken) for p in self.pacts)

    @property
    def replayed(self) -> int:
        return sum(p.replayed for p in self.pacts)

    def pact(self, consumer: str) -> PactResult | None:
        return next((p for p in self.pacts if p.consumer == consumer), None)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verification:
        return cls(
            provider=data["provider"],
            host=data["host"],
            verified_at=data["verified_at"],
            seconds=float(data["seconds"]),
            code_digest=data["code_digest"],
            pacts=tuple(PactResult(**{**p, "broken": tuple(p["broken"])})
                        for p in data["pacts"]),
            mismatches=tuple(Mismatch(**m) for m in data["mismatches"]),
        )


def results_dir(settings: Settings) -> Path:
    return settings.home / "contracts"


def record(settings: Settings, verification: Verification) -> Path:
    folder = results_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{verification.provider}@{verification.host}.json"
    staged = path.with_suffix(".json.tmp")
    staged.write_text(json.dumps(verification.as_dict(), indent=2))
    staged.replace(path)
    return path


def latest(settings: Settings, provider: str, host: str) -> Verification | None:
    path = results_dir(settings) / f"{provider}@{host}.json"
    try:
        return Verification.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def code_digest(package: str, *, root: Path = PROJECT_ROOT,
                extraction: Path | None = None) -> str:
    """A digest of the code that decides how a provider keeps its contracts."""
    digest = hashlib.sha256()
    bases = [(root, [root / package.replace(".", "/"), *(root / p for p in _KIT_CODE)])]
    if extraction is not None:
        bases.append((extraction, [extraction]))
    for base, places in bases:
        for path in _files(places):
            digest.update(str(path.relative_to(base)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _files(places: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for place in places:
        if place.is_file():
            found.append(place)
        elif place.is_dir():
            found += [p for p in place.rglob("*")
                      if p.is_file() and p.suffix in (".py", ".yaml", ".toml")
                      and "__pycache__" not in p.parts]
    return sorted(found)
