"""The members context's HTTP routes."""

from __future__ import annotations

from library.members import api, handlers
from library.members.domain import Member, MemberExists, MemberNotFound
from library.members.ports import Ports
from migrate.kernel.http import Reply, Request, Route, require


def get_member(ports: Ports, request: Request) -> Reply:
    return Reply(200, api.member(ports.query(), request.params["member_id"]))


def register_member(ports: Ports, request: Request) -> Reply:
    member = Member(require(request.body, "member_id", str),
                    require(request.body, "name", str))
    handlers.register(ports.command(), [member])
    return Reply(201, api.member(ports.query(), member.member_id))


ROUTES = [
    Route("GET", "/members/<member_id>", get_member, bucket_key="member_id"),
    Route("POST", "/members", register_member),
]

ERRORS: dict[type[Exception], tuple[int, str]] = {
    MemberNotFound: (404, "member_not_found"),
    MemberExists: (409, "member_exists"),
}
