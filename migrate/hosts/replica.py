"""How a replica of a context applies its writer's events, for any context.

A context follows through its own replica module (`replica` in the
manifest: `apply(data, uow) -> bool`, as billing does) or through its
declared aggregates: then `ImageReplica` applies each `AggregateChanged`
image whose version is higher than the one this replica holds, and claims
every other event of the context without changing anything, so the
follower's inbox accounts for each event its writer published (sync lag
counts exactly that).

Applying an image replaces the aggregate: its child rows go, the root row is
updated in place (rows of other aggregates may refer to it) or inserted,
and the image's child rows go in; an image without a root removes the
aggregate. The version applied, and a removal, are kept in
`migrate_versions` in the same transaction.

`adopt_versions` copies a writer's versions to the side about to write,
during a fenced write flip: its next change then carries a version above
every one the old writer published, so the old writer, now a replica,
applies it.
`settle_removals` takes away rows a backfill copied after the writer had
removed them (the removal's image arrived first, found nothing to remove).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migrate.errors import MigrateError
from migrate.kernel.events import Envelope
from migrate.kernel.images import IMAGE_EVENT, Aggregate, key_text, restore
from migrate.kernel.sql import VERSIONS
from migrate.manifest import Context

log = logging.getLogger(__name__)

Apply = Callable[[Envelope, Any], bool]


class CannotFollow(MigrateError):
    exit_code = 2


def replica_of(context: Context) -> Apply:
    """How a replica of `context` applies one of its events."""
    if context.replica is not None:
        module = context.load(context.replica)

        def apply(envelope: Envelope, uow: Any) -> bool:
            return bool(module.apply(envelope.data, uow))

        return apply

    if context.aggregates:
        return ImageReplica(context.name, context.aggregates_built()).apply

    raise CannotFollow(
        f"context {context.name} declares neither a replica module nor "
        "aggregates; a replica of it cannot follow its writer"
    )


class ImageReplica:
    def __init__(self, context: str, aggregates: Sequence[Aggregate]):
        self.context = context
        self.aggregates = {a.name: a for a in aggregates}

    def apply(self, envelope: Envelope, uow: Any) -> bool:
        """Apply one event; False when it changed nothing here."""
        with uow:
            if envelope.event_type != IMAGE_EVENT:
                # A domain event: its changes arrive as images of their own.
                uow.commit()
                return False

            applied = self._apply_image(uow.connection, envelope.data)
            uow.commit()
            return applied

    def _apply_image(self, db: Connection, data: dict[str, Any]) -> bool:
        aggregate = self.aggregates.get(data["aggregate"])
        if aggregate is None:
            raise CannotFollow(
                f"context {self.context} has no aggregate {data['aggregate']!r}; "
                f"it declares {', '.join(sorted(self.aggregates)) or 'none'}"
            )

        key = tuple(
            restore(aggregate.root.c[c], v)
            for c, v in zip(aggregate.key, data["key"], strict=True)
        )
        version = int(data["version"])
        held = held_version(db, self.context, aggregate.name, key)
        if held is not None and held >= version:
            return False

        _replace(db, aggregate, key, data["root"], data["children"])
        _keep_version(db, self.context, aggregate.name, key, version,
                      removed=data["root"] is None)
        return True


def _replace(
    db: Connection,
    aggregate: Aggregate,
    key: tuple,
    root: dict[str, Any] | None,
    children: dict[str, list[dict[str, Any]]],
) -> None:
    for child in aggregate.children:
        db.execute(child.table.delete().where(*_matching(child.table, child.columns,
                                                         key)))
    table = aggregate.root
    where = _matching(table, aggregate.key, key)
    if root is None:
        db.execute(table.delete().where(*where))
        return

    values = _restored(table, root)
    if db.execute(table.update().where(*where).values(**values)).rowcount == 0:
        db.execute(table.insert().values(**values))
    for child in aggregate.children:
        rows = [_restored(child.table, r) for r in children.get(child.table.name, [])]
        if rows:
            db.execute(child.table.insert(), rows)


def _restored(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    return {name: restore(table.c[name], value) for name, value in row.items()
            if name in table.c}


def _matching(table: sa.Table, columns: Sequence[str], key: Sequence[Any]) -> list:
    return [table.c[c] == v for c, v in zip(columns, key, strict=True)]


def _where(context: str, aggregate: str, key: Sequence[Any]) -> Any:
    return (
        (VERSIONS.c.context == context)
        & (VERSIONS.c.aggregate == aggregate)
        & (VERSIONS.c.aggregate_key == key_text(key))
    )


def held_version(
    db: Connection, context: str, aggregate: str, key: Sequence[Any]
) -> int | None:
    found = db.execute(
        sa.select(VERSIONS.c.version).where(_where(context, aggregate, key))
    ).scalar()
    return None if found is None else int(found)


def _keep_version(
    db: Connection,
    context: str,
    aggregate: str,
    key: Sequence[Any],
    version: int,
    *,
    removed: bool,
) -> None:
    where = _where(context, aggregate, key)
    changed = db.execute(
        VERSIONS.update().where(where).values(version=version, removed=removed)
    )
    if changed.rowcount == 0:
        db.execute(
            VERSIONS.insert().values(
                context=context,
                aggregate=aggregate,
                aggregate_key=key_text(key),
                version=version,
                removed=removed,
            )
        )


def adopt_versions(context: str, source: Engine, target: Engine) -> int:
    """Raise the target's versions of `context` to the source's; return how
    many it raised."""
    with source.connect() as db:
        theirs = db.execute(
            sa.select(VERSIONS).where(VERSIONS.c.context == context)
        ).all()
    raised = 0
    with target.begin() as db:
        ours = {
            (r.aggregate, r.aggregate_key): r.version
            for r in db.execute(
                sa.select(VERSIONS).where(VERSIONS.c.context == context)
            )
        }
        for row in theirs:
            held = ours.get((row.aggregate, row.aggregate_key))
            if held is not None and held >= row.version:
                continue

            key = json.loads(row.aggregate_key)
            _keep_version(db, context, row.aggregate, key, row.version,
                          removed=row.removed)
            raised += 1
    if raised:
        log.info("%s: %s aggregate versions adopted before writing", context, raised)
    return raised


def settle_removals(context: Context, engine: Engine) -> int:
    """Remove aggregates this copy holds although their removal was applied."""
    aggregates = {a.name: a for a in context.aggregates_built()}
    removed = 0
    with engine.begin() as db:
        rows = db.execute(
            sa.select(VERSIONS).where(
                VERSIONS.c.context == context.name, VERSIONS.c.removed.is_(True)
            )
        ).all()
        for row in rows:
            aggregate = aggregates.get(row.aggregate)
            if aggregate is None:
                continue

            key = tuple(
                restore(aggregate.root.c[c], v)
                for c, v in zip(aggregate.key, json.loads(row.aggregate_key),
                                strict=True)
            )
            where = _matching(aggregate.root, aggregate.key, key)
            if db.execute(sa.select(aggregate.root).where(*where)).first() is None:
                continue

            _replace(db, aggregate, key, None, {})
            removed += 1
    return removed
