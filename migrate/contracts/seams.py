"""Every seam of the monolith, read from the manifest, and which lack contracts.

A seam is a place where one part relies on another across a context's edge:

- a port of one context answered by another context's API (the manifest's
  `ports`, such as ordering's `catalog` and `customers`): HTTP calls of
  `/_api/<provider>/<method>`, once either side is a service;
- an event one context consumes from another (its `EVENT_HANDLERS`);
- an event a side-effect function consumes (`side_effects` in the manifest);
- a context's own events, followed by its replica module on the other
  host (a context followed through row images has none: those images are
  the kit's own replication, which no consumer holds a contract on);
- a route of every context that can be extracted (one with a replica
  module or declared aggregates), which the router forwards to whichever
  host serves it.

A seam is covered when a contract between the same consumer and provider
holds an interaction of its kind: for events, a message pinning that
`event_type`; for routes, a request the route's rule matches.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable
from typing import cast

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from migrate.contracts.pacts import HTTP, MESSAGE, Contract
from migrate.kernel.events import Event
from migrate.manifest import Context, Manifest

ROUTER = "router"


@dataclasses.dataclass(frozen=True)
class Seam:
    consumer: str
    provider: str
    kind: str
    what: str

    def text(self) -> str:
        return f"{self.consumer} -> {self.provider}: {self.what}"

    def involves(self, context: str) -> bool:
        return self.provider == context or _belongs(self.consumer, context)


def participants_of(context: str, names: Iterable[str]) -> set[str]:
    """The consumer names that stand for parts of `context`."""
    return {name for name in names if _belongs(name, context)}


def _belongs(consumer: str, context: str) -> bool:
    return consumer == context or consumer.startswith(f"{context}-")


def seams(manifest: Manifest) -> list[Seam]:
    found: list[Seam] = []
    for name, context in manifest.contexts.items():
        found += [Seam(name, port, HTTP, f"{name}'s {port} port")
                  for port in _ports_to_contexts(context, manifest)]
        found += [Seam(name, event.context, MESSAGE, event.type_name())
                  for event in _consumed(context)]
        found += [Seam(f"{name}-{effect.name.replace('_', '-')}", name, MESSAGE,
                       effect.on) for effect in context.side_effects]
        if context.replica:
            found += [Seam(f"{name}-replica", name, MESSAGE, event.type_name())
                      for event in _own_events(context)]
        if context.follows:
            found += [Seam(ROUTER, name, HTTP, f"{route.method} {route.rule}")
                      for route in context.route_list]
    return sorted(found, key=lambda s: (s.provider, s.consumer, s.what))


def uncovered(manifest: Manifest, contracts: Iterable[Contract]) -> list[Seam]:
    contracts = list(contracts)
    return [seam for seam in seams(manifest) if not _covered(seam, contracts)]


def _covered(seam: Seam, contracts: list[Contract]) -> bool:
    pairs = [c for c in contracts
             if c.consumer == seam.consumer and c.provider == seam.provider]
    interactions = [i for c in pairs for i in c.interactions if i.kind == seam.kind]
    if seam.kind == MESSAGE:
        return any(i.attributes.get("event_type") == seam.what for i in interactions)

    if seam.consumer != ROUTER:
        return bool(interactions)

    method, rule = seam.what.split(" ", 1)
    routes = Map([Rule(rule, methods=[method], endpoint="seam")]).bind("localhost")
    for interaction in interactions:
        if interaction.request.get("method", "").upper() != method:
            continue
        try:
            routes.match(interaction.request.get("path", ""), method=method)
        except HTTPException:
            continue
        return True
    return False


def _ports_to_contexts(context: Context, manifest: Manifest) -> list[str]:
    return [port.provider for port in context.ports_to(manifest.contexts)]


def _consumed(context: Context) -> list[type[Event]]:
    return [cast(type[Event], event) for event in context.event_handlers]


def _own_events(context: Context) -> list[type[Event]]:
    module = context.load(context.events)
    return sorted(
        (value for value in vars(module).values()
         if inspect.isclass(value) and issubclass(value, Event) and value is not Event
         and getattr(value, "context", None) == context.name),
        key=lambda event: event.type_name(),
    )
