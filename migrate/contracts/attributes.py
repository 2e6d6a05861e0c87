"""Message attributes: what a contract pins, and what SNS filters on.

A consumer receives an event only if the attributes published with it pass
the filter policy of the consumer's subscription; a body that keeps its
contract does not help a message that never arrives. This module finds each
consumer's subscriptions in the topology the manifest implies (the one
`migrate up` creates), and compares the attributes a provider published
with the contract and with those filter policies.

Consumers are named after their queues:

    <context>                 a context consuming another's events
                              (queue <app>-<context>-consumes-<provider>)
    <context>-<side effect>   a side effect's function (<app>-<context>-<effect>)
    <context>-replica         the other host's copy of the context
                              (both <app>-<context>-<side>-sync queues)

Filter policies are evaluated for exact strings, `prefix`, `exists` and
`anything-but`; other operators are reported as not checked, never as kept.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from migrate import names
from migrate.contracts.pacts import Contract, Interaction
from migrate.manifest import Manifest
from migrate.messaging.topology import Subscription

MISSING = "nothing (the attribute is missing)"


@dataclasses.dataclass(frozen=True)
class AttributeMismatch:
    attribute: str
    expected: str
    actual: str
    note: str = ""


def subscriptions_of(manifest: Manifest, contract: Contract) -> list[Subscription]:
    """The subscriptions through which the contract's consumer gets the
    provider's events."""
    from migrate.system import topology

    app = manifest.name
    consumer, provider = contract.consumer, contract.provider
    queues = {
        names.consumer_queue(app, consumer, provider),
        f"{app}-{consumer}",
    }
    if consumer == f"{provider}-replica":
        queues |= {names.follow_queue(app, provider, side)
                   for side in ("service", "monolith")}
    every = topology(manifest, list(manifest.contexts))
    return [
        s for s in every.subscriptions
        if s.queue in queues and s.topic == names.topic(app, provider)
    ]


def unpinned(
    interaction: Interaction, subscriptions: Iterable[Subscription]
) -> list[str]:
    """Attributes a filter policy matches on that the contract leaves open."""
    keys = {key for s in subscriptions for key in (s.filter_policy or {})}
    return sorted(keys - set(interaction.attributes))


def compare(
    interaction: Interaction,
    published: Mapping[str, str],
    subscriptions: Iterable[Subscription],
) -> list[AttributeMismatch]:
    """How the published attributes break the contract or miss every queue."""
    found = [
        mismatch
        for attribute, expected in interaction.attributes.items()
        if (mismatch := _pinned(attribute, expected,
                                interaction.metadata_rules.get(attribute),
                                published)) is not None
    ]
    subscriptions = list(subscriptions)
    if not subscriptions:
        return found

    refusals = {s.queue: refusal(s.filter_policy or {}, published)
                for s in subscriptions}
    refused = {queue: why for queue, why in refusals.items() if why is not None}
    if len(refused) < len(refusals):
        return found

    by_attribute: dict[str, list[str]] = {}
    for queue, (attribute, _, _) in sorted(refused.items()):
        by_attribute.setdefault(attribute, []).append(queue)
    for attribute, queues in by_attribute.items():
        note = (f"SNS would deliver it to none of {', '.join(queues)}: their "
                f"filter policies match on {attribute}" if len(queues) > 1 else
                f"SNS would not deliver it to {queues[0]}: its filter policy "
                f"matches on {attribute}")
        if any(m.attribute == attribute for m in found):
            found = [dataclasses.replace(m, note=note) if m.attribute == attribute
                     else m for m in found]
            continue
        _, expected, actual = refused[queues[0]]
        found.append(AttributeMismatch(attribute, expected, actual, note))
    return found


def _pinned(
    attribute: str, expected: Any, rule: Any, published: Mapping[str, str]
) -> AttributeMismatch | None:
    if attribute not in published:
        return AttributeMismatch(attribute, _describe(expected, rule), MISSING)

    actual = published[attribute]
    if _kept(expected, rule, actual):
        return None

    return AttributeMismatch(attribute, _describe(expected, rule), repr(actual))


def _kept(expected: Any, rule: Any, actual: str) -> bool:
    matchers = (rule or {}).get("matchers") or []
    if not matchers:
        return _text(expected) == actual

    return all(_matches(m, expected, actual) for m in matchers)


def _matches(matcher: Mapping[str, Any], expected: Any, actual: str) -> bool:
    kind = matcher.get("match")
    if kind == "regex":
        return re.search(str(matcher.get("regex", "")), actual) is not None
    if kind == "type":
        return isinstance(actual, str)
    if kind in ("integer", "number", "decimal"):
        return re.fullmatch(r"-?\d+(\.\d+)?", actual) is not None
    return _text(expected) == actual


def _describe(expected: Any, rule: Any) -> str:
    regexes = [m.get("regex") for m in (rule or {}).get("matchers") or []
               if m.get("match") == "regex"]
    if regexes:
        return f"a value matching {regexes[0]} (such as {_text(expected)!r})"
    return repr(_text(expected))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def refusal(
    policy: Mapping[str, Any], published: Mapping[str, str]
) -> tuple[str, str, str] | None:
    """The first attribute on which the policy refuses the message, if any."""
    for attribute, conditions in policy.items():
        accepted = conditions if isinstance(conditions, list) else [conditions]
        value = published.get(attribute)
        if not any(_accepts(condition, value) for condition in accepted):
            actual = MISSING if value is None else repr(value)
            return attribute, f"one of {json.dumps(accepted)}", actual
    return None


def _accepts(condition: Any, value: str | None) -> bool:
    if isinstance(condition, dict):
        if "exists" in condition:
            return (value is not None) == bool(condition["exists"])
        if value is None:
            return False
        if "prefix" in condition:
            return value.startswith(str(condition["prefix"]))
        if "anything-but" in condition:
            refused = condition["anything-but"]
            refused = refused if isinstance(refused, list) else [refused]
            return value not in [str(r) for r in refused]
        # An operator this check does not evaluate: do not claim a refusal.
        return True
    return value is not None and value == str(condition)
