"""The members repository and unit of work on SQLAlchemy Core."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from library.members.domain import Member
from library.members.tables import members
from migrate.kernel.uow import UnitOfWork


class SqlMembers:
    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, member_id: str) -> Member | None:
        row = self._db.execute(
            sa.select(members).where(members.c.member_id == member_id)
        ).first()
        return Member(**row._mapping) if row else None

    def add(self, member: Member) -> None:
        self._db.execute(members.insert().values(**dataclasses.asdict(member)))

    def count_loans(self, member_id: str, change: int) -> None:
        self._db.execute(
            members.update()
            .where(members.c.member_id == member_id)
            .values(loans_out=members.c.loans_out + change)
        )


class MembersUnitOfWork(UnitOfWork):
    context = "members"

    def __enter__(self) -> MembersUnitOfWork:
        super().__enter__()
        self.members = SqlMembers(self.connection)
        return self
