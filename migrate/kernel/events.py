"""Domain events and the envelope they travel in.

An event is a frozen dataclass named in the past tense. On the wire it is an
envelope: the event's fields under `data`, plus the metadata that
deduplication and SNS filter policies rely on (`event_id`, `event_type`,
`context`, `aggregate_id`, `schema_version`, `origin`). Consumers deduplicate
by `event_id`, never by a transport's message id.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True)
class Event:
    context: ClassVar[str]
    schema_version: ClassVar[int] = 1

    @property
    def aggregate_id(self) -> str:
        raise NotImplementedError

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    def data(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Event:
        """The event back from its `data()`; events with nested values override."""
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class Envelope:
    event_id: str
    event_type: str
    context: str
    aggregate_id: str
    schema_version: int
    origin: str
    occurred_at: str
    data: dict[str, Any]

    @classmethod
    def wrap(cls, event: Event, origin: str) -> Envelope:
        return cls(
            event_id=str(uuid.uuid4()),
            event_type=event.type_name(),
            context=event.context,
            aggregate_id=str(event.aggregate_id),
            schema_version=event.schema_version,
            origin=origin,
            occurred_at=datetime.now(UTC).isoformat(),
            data=event.data(),
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> Envelope:
        fields = json.loads(body)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in fields]
        if missing:
            raise ValueError(f"event envelope lacks {', '.join(missing)}")

        return cls(**{f.name: fields[f.name] for f in dataclasses.fields(cls)})

    def attributes(self) -> dict[str, str]:
        """What SNS filter policies and consumers read without the body."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "context": self.context,
            "aggregate_id": self.aggregate_id,
            "schema_version": str(self.schema_version),
            "origin": self.origin,
        }
