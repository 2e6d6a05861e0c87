"""Members. Plain Python: no framework, no ORM, no vendor."""

from __future__ import annotations

import dataclasses

ACTIVE, SUSPENDED = "active", "suspended"


class MembersError(Exception):
    """Root of the errors the members context raises."""


class MemberNotFound(MembersError):
    def __init__(self, member_id: str):
        super().__init__(f"no member {member_id!r}")
        self.member_id = member_id


class MemberExists(MembersError):
    def __init__(self, member_id: str):
        super().__init__(f"member {member_id!r} is registered already")
        self.member_id = member_id


@dataclasses.dataclass
class Member:
    member_id: str
    name: str
    status: str = ACTIVE
    loans_out: int = 0

    @property
    def may_borrow(self) -> bool:
        return self.status == ACTIVE
