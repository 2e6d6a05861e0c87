"""Routes compiled into matchers: which route, if any, a request belongs to.

Rules use Werkzeug's syntax, the one both hosts of a context understand:
`/invoices/<int:invoice_id>`, `/customers/<customer_id>/invoices`,
`/files/<path:name>`. The converters are `string` (the default), `int`,
`float`, `uuid` and `path`, without arguments; anything else is refused when
the route is registered, never when a request arrives.

When several routes match a path, the most specific wins: more literal
segments first; then, segment by segment from the left, a literal beats a
converter and a narrow converter (`int`, `float`, `uuid`) beats `string`,
which beats `path`. A HEAD request matches a GET route. Values of matched
parameters are the path's text, unconverted: `"0042"` stays `"0042"`, which
is also what an nginx capture would hash for a sticky bucket.

A route's bucket key names where the sticky key of its reads comes from: a
path parameter (`customer_id`), a header (`header:X-Customer-Id`) or a
cookie (`cookie:customer`).

Matching never compiles anything: every regex is built once per table.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from migrate.router.errors import InvalidRule

# Methods whose requests only read; they agree with the hosts' own
# definition, so a read never meets a host's not-the-writer refusal.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = READ_METHODS | {"POST", "PUT", "PATCH", "DELETE"}

# Converter name -> (regex, rank); a lower rank is more specific.
_CONVERTERS: Mapping[str, tuple[str, int]] = {
    "int": (r"\d+", 1),
    "float": (r"\d+\.\d+", 1),
    "uuid": (r"[A-Fa-f0-9]{8}(?:-[A-Fa-f0-9]{4}){3}-[A-Fa-f0-9]{12}", 1),
    "string": (r"[^/]+", 2),
    "default": (r"[^/]+", 2),
    "path": (r"[^/].*?", 3),
}
_LITERAL = 0
# A bucket key is a path parameter's name, or `header:<name>`/`cookie:<name>`.
KEY_SOURCES = ("header", "cookie")
_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")
_PLACEHOLDER = re.compile(
    r"<(?:(?P<converter>[A-Za-z_]\w*)(?P<arguments>\([^)]*\))?:)?"
    r"(?P<name>[A-Za-z_]\w*)>"
)


@dataclasses.dataclass(frozen=True)
class Route:
    """One route of a context; reads are keyed by `bucket_key`'s value."""

    method: str
    rule: str
    context: str
    bucket_key: str | None = None

    @property
    def reads(self) -> bool:
        return self.method in READ_METHODS

    @property
    def key_source(self) -> tuple[str, str] | None:
        """Where a request's bucket key comes from: ("param" | "header" |
        "cookie", name), or None for a route without a key."""
        if self.bucket_key is None:
            return None

        kind, _, name = self.bucket_key.partition(":")
        if name and kind in KEY_SOURCES:
            return kind, name

        return "param", self.bucket_key

    @property
    def name(self) -> str:
        return f"{self.method} {self.rule}"


@dataclasses.dataclass(frozen=True)
class CompiledRule:
    rule: str
    pattern: re.Pattern[str]
    parameters: tuple[str, ...]
    specificity: tuple[object, ...]


def compile_rule(rule: str) -> CompiledRule:
    """A rule's regex and its rank among rules that match the same path."""
    if not rule.startswith("/"):
        raise InvalidRule(rule, "a rule starts with '/'")

    parts: list[str] = []
    parameters: list[str] = []
    ranks: list[int] = []
    literals = 0
    literal_chars = 0

    for segment in rule[1:].split("/"):
        rank = _LITERAL
        position = 0
        for placeholder in _PLACEHOLDER.finditer(segment):
            literal = segment[position : placeholder.start()]
            parts.append(re.escape(literal))
            literal_chars += len(literal)
            regex, converter_rank = _converter(rule, placeholder, parameters)
            parts.append(f"({regex})")
            parameters.append(placeholder["name"])
            rank = max(rank, converter_rank)
            position = placeholder.end()

        tail = segment[position:]
        if "<" in tail or ">" in tail:
            raise InvalidRule(rule, f"'{tail}' is not a <converter:name> placeholder")

        parts.append(re.escape(tail) + "/")
        literal_chars += len(tail)
        literals += rank == _LITERAL
        ranks.append(rank)

    # Each segment appended a trailing slash; the last one is not in the rule.
    regex = "/" + "".join(parts)[:-1]
    specificity = (-literals, tuple(ranks), -literal_chars, rule)
    return CompiledRule(rule, re.compile(regex), tuple(parameters), specificity)


def _converter(
    rule: str, placeholder: re.Match[str], seen: list[str]
) -> tuple[str, int]:
    name = placeholder["name"]
    converter = placeholder["converter"] or "default"
    if converter not in _CONVERTERS:
        known = ", ".join(sorted(set(_CONVERTERS) - {"default"}))
        raise InvalidRule(rule, f"converter '{converter}' is not one of {known}")

    if placeholder["arguments"]:
        raise InvalidRule(
            rule, f"converter arguments {placeholder['arguments']} are not supported"
        )

    if name in seen:
        raise InvalidRule(rule, f"parameter '{name}' appears twice")

    return _CONVERTERS[converter]


def check_route(route: Route) -> CompiledRule:
    """Compile a route's rule and check its method and bucket key."""
    if route.method not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise InvalidRule(route.rule, f"method '{route.method}' is not one of {known}")

    compiled = compile_rule(route.rule)
    source = route.key_source
    if source is not None and source[0] != "param":
        if not _TOKEN.fullmatch(source[1]):
            raise InvalidRule(
                route.rule, f"bucket key '{route.bucket_key}': a {source[0]} name "
                "is letters, digits and -_."
            )

        return compiled

    if route.bucket_key is not None and route.bucket_key not in compiled.parameters:
        raise InvalidRule(
            route.rule,
            f"bucket key '{route.bucket_key}' is not one of its parameters "
            f"({', '.join(compiled.parameters) or 'none'})",
        )

    return compiled


# A compiled route as the matcher walks it: regex, parameter names, route.
_Candidate = tuple[re.Pattern[str], tuple[str, ...], Route]


class Matcher:
    """Routes by method, most specific first; built once, read by many."""

    def __init__(self, routes: Iterable[Route]):
        by_method: dict[str, list[tuple[CompiledRule, Route]]] = {}
        for route in routes:
            compiled = check_route(route)
            methods = ("GET", "HEAD") if route.method == "GET" else (route.method,)
            for method in methods:
                by_method.setdefault(method, []).append((compiled, route))

        self._by_method: dict[str, tuple[_Candidate, ...]] = {}
        for method, candidates in by_method.items():
            candidates.sort(key=lambda pair: pair[0].specificity)
            self._by_method[method] = tuple(
                (compiled.pattern, compiled.parameters, route)
                for compiled, route in candidates
            )

    def candidates(self) -> dict[str, tuple[_Candidate, ...]]:
        """Per method, (regex, parameter names, route), most specific first."""
        return dict(self._by_method)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route a request belongs to and its parameters, or None."""
        for pattern, parameters, route in self._by_method.get(method, ()):
            found = pattern.fullmatch(path)
            if found is not None:
                return route, dict(zip(parameters, found.groups(), strict=True))

        return None
