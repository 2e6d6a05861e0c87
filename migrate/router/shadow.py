"""Shadow traffic: what to mirror, and how two answers are compared.

A context in shadow mode has a share of its routes' requests copied to the
side that did not answer them (the service while the monolith serves, the
monolith once the service does). The client only ever gets the primary's
answer; the copy's answer is compared with it and each copied request
counts once, in exactly one of:

- `same`: status, compared headers and body are equal;
- `ignored`: they differ only where an ignore rule, or noise, says
  differences do not matter;
- `different`: anything else; a different status always counts here;
- `candidate_error`: the copy got no answer (refused, reset, timed out).

What is compared: the status; the headers, except hop-by-hop ones, the
router's own, `Date`, `Server` and those the operator lists; and the body,
leaf by leaf when both bodies are JSON (so key order and spacing do not
matter), byte for byte otherwise.

Ignore rules for JSON bodies are paths: `$.generated_at` (one field),
`$.invoices[*].issued_at` (a field of every element), `$..etag` (a field
at any depth). A path ignores everything beneath it too.

Noise cancellation (Diffy's idea): with `noise` on, a read is sent to the
primary a second time; the fields that differ between the primary's two
answers change on their own (timestamps, random ids), so a candidate's
difference there is noise and counts as `ignored`. Writes are never sent
twice; they are mirrored at all only from routes listed as safe.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

SAME = "same"
DIFFERENT = "different"
IGNORED = "ignored"
CANDIDATE_ERROR = "candidate_error"
OUTCOMES = (SAME, DIFFERENT, IGNORED, CANDIDATE_ERROR)

# Never compared: framing, the router's own headers, and what differs by
# nature between two servers.
ALWAYS_IGNORED_HEADERS = frozenset(
    {
        "connection", "keep-alive", "transfer-encoding", "content-length",
        "date", "server", "x-migrate-backend", "x-amzn-trace-id", "via", "age",
    }
)
_PATH_PART = re.compile(r"\.\.([^.\[\]\s]+)|\.([^.\[\]\s]+)|\[(\*|\d+)\]")
# A header's name is a token (RFC 9110, section 5.6.2: tchar).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclasses.dataclass(frozen=True)
class ShadowSettings:
    """How one context is shadowed; `percent` 0 turns shadowing off."""

    percent: int = 0
    ignore_paths: tuple[str, ...] = ()
    ignore_headers: tuple[str, ...] = ()
    noise: bool = False
    safe_writes: tuple[str, ...] = ()  # "METHOD /rule" of writes safe to copy

    def text(self) -> str:
        if not self.percent:
            return "off"

        parts = [f"{self.percent} % of requests"]
        if self.ignore_paths:
            parts.append("ignoring " + ", ".join(self.ignore_paths))
        if self.ignore_headers:
            parts.append("ignoring headers " + ", ".join(self.ignore_headers))
        if self.noise:
            parts.append("noise cancelled")
        if self.safe_writes:
            parts.append("writes mirrored: " + ", ".join(self.safe_writes))
        return "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_header(name: str) -> str | None:
    """What is wrong with a header name to ignore, or None if it is one."""
    if _TOKEN.fullmatch(name) is None:
        return ("a header name is an HTTP token: letters, digits and "
                "!#$%&'*+-.^_`|~, no spaces or colons (RFC 9110)")
    return None


def check_path(path: str) -> str | None:
    """What is wrong with an ignore path, or None if it is well formed."""
    if not path.startswith("$"):
        return "an ignore path starts with '$'"

    rest = path[1:]
    position = 0
    for found in _PATH_PART.finditer(rest):
        if found.start() != position:
            break
        position = found.end()
    if position != len(rest):
        return f"'{rest[position:]}' is not .field, ..field, [n] or [*]"

    return None


def _path_regex(path: str) -> str:
    parts: list[str] = [r"\$"]
    for deep, field, index in _PATH_PART.findall(path[1:]):
        if deep:
            parts.append(r"(?:[.\[].*)?\." + _field(deep))
        elif field:
            parts.append(r"\." + _field(field))
        elif index == "*":
            parts.append(r"\[\d+\]")
        else:
            parts.append(rf"\[{index}\]")
    return "".join(parts) + r"(?:[.\[].*)?"


def _field(name: str) -> str:
    return r"[^.\[]+" if name == "*" else re.escape(name)


class Rules:
    """Ignore rules compiled once per settings."""

    def __init__(self, paths: Iterable[str] = (), headers: Iterable[str] = ()):
        paths = tuple(paths)
        self.paths = (
            re.compile("|".join(f"(?:{_path_regex(p)})" for p in paths))
            if paths else None
        )
        self.headers = ALWAYS_IGNORED_HEADERS | {h.lower() for h in headers}

    def ignores(self, difference: str) -> bool:
        if difference.startswith("header:"):
            return difference[7:] in self.headers

        if difference.startswith("$") and self.paths is not None:
            return self.paths.fullmatch(difference) is not None

        return False


@dataclasses.dataclass(frozen=True)
class Observed:
    """One answer as the comparison sees it."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def of(cls, status: int, headers: Iterable[tuple[bytes, bytes]],
           body: bytes) -> Observed:
        merged: dict[str, str] = {}
        for name, value in headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            merged[key] = f"{merged[key]}, {text}" if key in merged else text
        return cls(status, merged, body)


def differences(primary: Observed, candidate: Observed) -> set[str]:
    """Where two answers differ: `status`, `header:<name>`, JSON paths, `body`."""
    found: set[str] = set()
    if primary.status != candidate.status:
        found.add("status")

    for name in primary.headers.keys() | candidate.headers.keys():
        if name in ALWAYS_IGNORED_HEADERS:
            continue
        if primary.headers.get(name) != candidate.headers.get(name):
            found.add(f"header:{name}")

    if primary.body == candidate.body:
        return found

    left, right = _json(primary.body), _json(candidate.body)
    if left is _NOT_JSON or right is _NOT_JSON:
        found.add("body")
        return found

    leaves_left, leaves_right = dict(_leaves(left)), dict(_leaves(right))
    for path in leaves_left.keys() | leaves_right.keys():
        if leaves_left.get(path, _MISSING) != leaves_right.get(path, _MISSING):
            found.add(path)
    return found


def outcome(
    primary: Observed,
    candidate: Observed,
    rules: Rules,
    noise: set[str] | None = None,
) -> tuple[str, tuple[str, ...]]:
    """The request's one count, and the differences that made it."""
    found = differences(primary, candidate)
    if not found:
        return SAME, ()

    real = sorted(
        d for d in found
        if d == "status" or not (rules.ignores(d) or (noise and d in noise))
    )
    if real:
        return DIFFERENT, tuple(real)

    return IGNORED, tuple(sorted(found))


_NOT_JSON = object()
_MISSING = object()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return _NOT_JSON


def _leaves(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        if not value:
            yield path, {}
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        if not value:
            yield path, []
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        # 1 and 1.0 and True are equal in Python, not in JSON.
        yield path, (type(value).__name__, value)
