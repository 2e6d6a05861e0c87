"""Pact files, read and checked before anything is verified against them.

A contract is one Pact file: one consumer, one provider, and the
interactions the consumer relies on. `load` reads a file and checks it
against the parts of the Pact format the kit uses:

- V4 files (`interactions` with a `type` of `Synchronous/HTTP` or
  `Asynchronous/Messages`), V3 message files (`messages`) and V2/V3 HTTP
  files (`interactions` with a `request` and a `response`);
- an HTTP interaction has a request method and path and a numeric status;
- a message has its body under `contents` (V4: an object holding `content`),
  and pins the message attributes `event_type` and `schema_version` in its
  `metadata`;
- descriptions are unique within a file.

A file that breaks any rule raises `MalformedContract` listing every broken
rule, so that a message whose body sits under `body` is refused here instead
of being verified as an empty message (which the Pact verifier would do).

What it does not check: that the matching rules are well formed (the Pact
verifier does), or that the provider can keep the contract.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from migrate.contracts.errors import MalformedContract, UnknownProvider

HTTP = "http"
MESSAGE = "message"
V4_HTTP = "Synchronous/HTTP"
V4_MESSAGE = "Asynchronous/Messages"
# Attributes every message contract pins: consumers route and upcast on them.
PINNED_ATTRIBUTES = ("event_type", "schema_version")
# What the Pact libraries add to message metadata on their own.
PACT_METADATA = frozenset({"contentType", "content-type", "Content-Type"})
_BODY_LOOKALIKES = ("body", "content", "payload", "message", "data")


@dataclasses.dataclass(frozen=True)
class State:
    name: str
    params: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Interaction:
    description: str
    kind: str
    states: tuple[State, ...]
    metadata: Mapping[str, Any]
    metadata_rules: Mapping[str, Any]
    request: Mapping[str, Any]
    response: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(state.name for state in self.states)

    @property
    def attributes(self) -> dict[str, Any]:
        """The message attributes this contract pins (Pact's own left out)."""
        return {k: v for k, v in self.metadata.items() if k not in PACT_METADATA}


@dataclasses.dataclass(frozen=True)
class Contract:
    path: Path
    consumer: str
    provider: str
    interactions: tuple[Interaction, ...]
    digest: str

    @property
    def name(self) -> str:
        return f"{self.consumer} -> {self.provider}"

    @property
    def messages(self) -> tuple[Interaction, ...]:
        return tuple(i for i in self.interactions if i.kind == MESSAGE)

    def interaction(self, description: str) -> Interaction | None:
        return next(
            (i for i in self.interactions if i.description == description), None
        )


def load(path: Path) -> Contract:
    raw = path.read_bytes()
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedContract(path, [f"it is not JSON ({error})"]) from None

    if not isinstance(document, dict):
        raise MalformedContract(path, ["it must be a JSON object"])

    problems: list[str] = []
    consumer = _participant(document, "consumer", problems)
    provider = _participant(document, "provider", problems)
    interactions = [
        _interaction(entry, n, kind, problems)
        for n, (entry, kind) in enumerate(_entries(document, problems))
    ]
    seen: set[str] = set()
    for interaction in interactions:
        if interaction is None:
            continue
        if interaction.description in seen:
            problems.append(
                f"description {interaction.description!r} is used twice; "
                "each interaction needs its own"
            )
        seen.add(interaction.description)
    if problems:
        raise MalformedContract(path, problems)

    return Contract(
        path=path,
        consumer=consumer,
        provider=provider,
        interactions=tuple(i for i in interactions if i is not None),
        digest=hashlib.sha256(raw).hexdigest(),
    )


def load_folder(folder: Path) -> list[Contract]:
    """Every `*.json` in `folder`, in name order; none may be malformed."""
    return [load(path) for path in sorted(folder.glob("*.json"))]


def of_provider(contracts: Iterable[Contract], provider: str) -> list[Contract]:
    contracts = list(contracts)
    found = [c for c in contracts if c.provider == provider]
    if not found:
        raise UnknownProvider(provider, {c.provider for c in contracts})

    return found


def providers(contracts: Iterable[Contract]) -> list[str]:
    return sorted({c.provider for c in contracts})


def _participant(document: dict[str, Any], role: str, problems: list[str]) -> str:
    name = (document.get(role) or {}).get("name") if isinstance(
        document.get(role), dict) else None
    if not isinstance(name, str) or not name:
        problems.append(f"it needs {role}.name")
        return ""

    return name


def _entries(
    document: dict[str, Any], problems: list[str]
) -> list[tuple[Any, str | None]]:
    """Each interaction with the kind its file format implies (None: V4)."""
    entries: list[tuple[Any, str | None]] = []
    messages = document.get("messages")
    interactions = document.get("interactions")
    if messages is None and interactions is None:
        problems.append("it holds neither interactions nor messages")
        return entries

    for key, value, kind in (("messages", messages, MESSAGE),
                             ("interactions", interactions, None)):
        if value is None:
            continue
        if not isinstance(value, list):
            problems.append(f"{key} must be a list")
            continue
        entries += [(entry, kind) for entry in value]
    return entries


def _interaction(
    entry: Any, n: int, kind: str | None, problems: list[str]
) -> Interaction | None:
    if not isinstance(entry, dict):
        problems.append(f"interaction {n} is not an object")
        return None

    description = entry.get("description")
    if not isinstance(description, str) or not description:
        problems.append(f"interaction {n} has no description")
        return None

    label = f"interaction {description!r}"
    kind = kind or _kind_of(entry, label, problems)
    if kind is None:
        return None

    states = _states(entry, label, problems)
    if kind == HTTP:
        _check_http(entry, label, problems)
        return Interaction(description, HTTP, states, {}, {}, entry.get("request", {}),
                           entry.get("response", {}))

    version = "V4" if entry.get("type") == V4_MESSAGE else "V3"
    _check_message_body(entry, label, version, problems)
    metadata = entry.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        problems.append(f"{label}: its metadata must be an object")
        metadata = {}
    for attribute in PINNED_ATTRIBUTES:
        if attribute not in metadata:
            problems.append(
                f"{label} pins no {attribute!r} attribute; every message contract "
                f"pins {' and '.join(PINNED_ATTRIBUTES)}"
            )
    rules = (entry.get("matchingRules") or {}).get("metadata") or {}
    return Interaction(description, MESSAGE, states, metadata, rules, {})


def _kind_of(entry: dict[str, Any], label: str, problems: list[str]) -> str | None:
    declared = entry.get("type")
    if declared == V4_HTTP:
        return HTTP
    if declared == V4_MESSAGE:
        return MESSAGE
    if declared is None and "request" in entry and "response" in entry:
        return HTTP
    problems.append(
        f"{label} has type {declared!r}; the kit verifies {V4_HTTP!r} and "
        f"{V4_MESSAGE!r} interactions"
    )
    return None


def _states(
    entry: dict[str, Any], label: str, problems: list[str]
) -> tuple[State, ...]:
    raw = entry.get("providerStates")
    if raw is None and isinstance(entry.get("providerState"), str):
        raw = [{"name": entry["providerState"]}]
    if raw is None:
        return ()

    if not isinstance(raw, list):
        problems.append(f"{label}: providerStates must be a list")
        return ()

    states = []
    for state in raw:
        name = state.get("name") if isinstance(state, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"{label}: a provider state has no name")
            continue
        params = state.get("params") or {}
        if not isinstance(params, dict):
            problems.append(f"{label}: the params of state {name!r} must be an object")
            params = {}
        states.append(State(name, params))
    return tuple(states)


def _check_http(entry: dict[str, Any], label: str, problems: list[str]) -> None:
    request = entry.get("request")
    response = entry.get("response")
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        problems.append(f"{label}: its request needs a method")
    elif not isinstance(request.get("path"), str):
        problems.append(f"{label}: its request needs a path")
    if not isinstance(response, dict) or not isinstance(response.get("status"), int):
        problems.append(f"{label}: its response needs a numeric status")


def _check_message_body(
    entry: dict[str, Any], label: str, version: str, problems: list[str]
) -> None:
    if "contents" not in entry:
        found = next((key for key in _BODY_LOOKALIKES if key in entry), None)
        where = f"under {found!r}" if found else "nowhere"
        problems.append(
            f"{label} carries its body {where}; a message pact puts it under "
            "'contents'"
        )
        return

    contents = entry["contents"]
    if version == "V4" and not (isinstance(contents, dict) and "content" in contents):
        problems.append(
            f"{label}: V4 message contents are an object holding 'content' "
            "(and 'contentType')"
        )
