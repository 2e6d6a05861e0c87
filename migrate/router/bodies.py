"""What the admin API and the dashboard take as a request body.

A body is one JSON object; an empty body counts as `{}`. Each call names
the fields it takes, each with its type, whether it is required and the
rule a good value follows. A field the call does not take is refused, not
ignored: a misspelt "route" would otherwise shift the whole context. A
field sent as null counts as left out. Text that reaches the ledger (an
actor, a reason) holds at most `MAX_TEXT` characters.

`read` raises the first problem it finds as `InvalidBody` (400
`bad_request`), naming the field, the value and the rule, before the call
changes anything. Whether a value is right for the state (a weight of 140,
a route the context lacks) is for the call itself to judge.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Mapping
from typing import Any

from migrate.router.errors import InvalidBody

# Long enough for a sentence and a ticket link; short enough that one
# request cannot bloat the ledger every router reads.
MAX_TEXT = 500
# How much of an offending value a message quotes.
SHOWN = 60


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a body. `kind` None takes any JSON value (the call
    judges it); a str field may list its `choices` or cap its length."""

    rule: str
    kind: type | None = str
    required: bool = False
    choices: tuple[str, ...] = ()
    max_length: int | None = None


def text(what: str, required: bool = False) -> Field:
    """A free-text field that reaches the ledger, capped at MAX_TEXT."""
    return Field(f"{what} is text of at most {MAX_TEXT} characters",
                 required=required, max_length=MAX_TEXT)


def control_character(value: str) -> str | None:
    """The first control character in ledger text, shown, or None. A
    ledger row is one line wherever it is shown: a newline or an escape
    sequence in a reason would forge rows in `migrate history` or
    repaint a terminal."""
    for character in value:
        if unicodedata.category(character) == "Cc":
            return repr(character)
    return None


def read(raw: bytes | None, fields: Mapping[str, Field]) -> dict[str, Any]:
    """The body's fields by name, those left out as None; InvalidBody on
    the first field (or the body) that breaks its rule."""
    try:
        body = json.loads(raw or b"{}", object_pairs_hook=_unique)
    except _Repeated as repeated:
        raise InvalidBody(
            repeated.name, f"field {repeated.name!r} is given twice; a field "
            "is given once"
        ) from None
    except ValueError as error:
        raise InvalidBody(
            None, f"body {shown(raw or b'')}: not JSON ({error}); a body is "
            "a JSON object"
        ) from None

    if not isinstance(body, dict):
        raise InvalidBody(None, f"body {shown(body)}: a body is a JSON object")

    for name, value in body.items():
        if name not in fields:
            taken = (f"the fields are {', '.join(fields)}" if fields
                     else "this call takes none")
            raise InvalidBody(
                name, f"field {name!r} {shown(value)}: not taken here; {taken}"
            )

    for name, field in fields.items():
        _check(name, body.get(name), field)

    return {name: body.get(name) for name in fields}


class _Repeated(Exception):
    def __init__(self, name: str):
        self.name = name


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two same-named fields: a body that says
    # weight 0 and weight 5 would move reads to 5 %.
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise _Repeated(name)
        found[name] = value
    return found


def _check(name: str, value: Any, field: Field) -> None:
    if value is None:
        if field.required:
            raise InvalidBody(name, f"field {name!r} is missing: {field.rule}")
        return

    if field.kind is not None and not isinstance(value, field.kind):
        raise InvalidBody(name, f"field {name!r} {shown(value)}: {field.rule}")

    if field.choices and value not in field.choices:
        raise InvalidBody(name, f"field {name!r} {shown(value)}: {field.rule}")

    if field.max_length is not None and len(value) > field.max_length:
        raise InvalidBody(
            name, f"field {name!r} {shown(value)} ({len(value):,} characters): "
            f"{field.rule}"
        )

    if field.max_length is not None and (found := control_character(value)):
        raise InvalidBody(
            name, f"field {name!r} {shown(value)} holds the control character "
            f"{found}: {name} is one line of text"
        )


def shown(value: object) -> str:
    """The value as a message quotes it: its repr, cut short."""
    quoted = repr(value)
    return quoted if len(quoted) <= SHOWN else quoted[:SHOWN] + "…"
