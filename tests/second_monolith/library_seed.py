"""Seed the library through its contexts' own handlers: its manifest's seeder.

It sits beside the library's package, not in it, as Northwind's seeding sits
in the kit: like any client, it reaches the contexts from outside.
`migrate seed --orders N` with this manifest registers members, shelves
books with two copies each, lends N copies and takes every third back: the
same handlers and in-process calls as a request would run. The events of
this history are then recorded as already published.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from library.catalogue.domain import Book, Copy
from library.catalogue.handlers import add_books
from library.lending.handlers import Lend, give_back, lend
from library.members.domain import Member
from library.members.handlers import register

from migrate.seed.load import mark_history_published

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class SeedReport:
    loaded: dict[str, int]
    events_marked_published: int


def isbn_of(n: int) -> str:
    return f"978{n:010d}"


def seed(host: Any, loans: int, progress: Progress | None = None) -> SeedReport:
    report = progress or (lambda step, done, total: None)
    members = [Member(f"M{n:04d}", f"Reader {n}") for n in range(1, loans + 2)]
    books = [
        Book(isbn_of(n), f"Volume {n}", (Copy(1, f"A{n % 9}"), Copy(2, f"B{n % 7}")))
        for n in range(1, loans + 1)
    ]
    register(host.unit_of_work("members"), members)
    add_books(host.unit_of_work("catalogue"), books)
    ports = host.ports("lending")
    lent = []
    for n, book in enumerate(books, 1):
        command = Lend(members[n % len(members)].member_id, book.isbn, 1,
                       f"2026-11-{1 + n % 28:02d}T10:00:00+00:00")
        lent.append(lend(command, ports.command(), ports.members, ports.catalogue))
        report("loans", n, len(books))
    returned = lent[::3]
    for loan in returned:
        give_back(loan.loan_id, "2026-12-01T09:00:00+00:00", ports.command())
    return SeedReport(
        loaded={"members": len(members), "books": len(books),
                "copies": 2 * len(books), "loans": len(lent),
                "returns": len(returned)},
        events_marked_published=mark_history_published(host),
    )
