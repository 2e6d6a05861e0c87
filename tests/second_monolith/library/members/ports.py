"""What the members context needs from outside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from library.members.domain import Member
from migrate.kernel.events import Event


class Members(Protocol):
    def get(self, member_id: str) -> Member | None: ...

    def add(self, member: Member) -> None: ...

    def count_loans(self, member_id: str, change: int) -> None: ...


class UnitOfWork(Protocol):
    members: Members

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None: ...

    def commit(self) -> None: ...


class Ports(Protocol):
    command: Callable[[], UnitOfWork]
    query: Callable[[], UnitOfWork]
