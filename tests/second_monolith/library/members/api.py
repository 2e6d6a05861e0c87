"""The members context's public surface."""

from __future__ import annotations

import dataclasses
from typing import Any

from library.members.domain import MemberNotFound
from library.members.ports import UnitOfWork


def member(uow: UnitOfWork, member_id: str) -> dict[str, Any]:
    with uow:
        found = uow.members.get(member_id)
    if found is None:
        raise MemberNotFound(member_id)

    return dataclasses.asdict(found)


def may_borrow(uow: UnitOfWork, member_id: str) -> bool:
    """Whether a registered member in good standing has that id."""
    with uow:
        found = uow.members.get(member_id)
    return found is not None and found.may_borrow
