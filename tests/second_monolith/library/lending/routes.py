"""Lending's HTTP routes."""

from __future__ import annotations

from library.lending import api, handlers
from library.lending.domain import (
    AlreadyReturned,
    CopyOnLoan,
    LoanNotFound,
    MemberMayNotBorrow,
    NoSuchCopy,
)
from library.lending.ports import Ports
from migrate.kernel.http import Reply, Request, Route, require
from migrate.kernel.uow import now


def lend(ports: Ports, request: Request) -> Reply:
    command = handlers.Lend(
        member_id=require(request.body, "member_id", str),
        isbn=require(request.body, "isbn", str),
        copy_no=require(request.body, "copy_no", int),
        lent_at=now(),
    )
    loan = handlers.lend(command, ports.command(), ports.members, ports.catalogue)
    return Reply(201, api.loan_view(loan), {"Location": f"/loans/{loan.loan_id}"})


def get_loan(ports: Ports, request: Request) -> Reply:
    return Reply(200, api.loan(ports.query(), request.params["loan_id"]))


def give_back(ports: Ports, request: Request) -> Reply:
    loan = handlers.give_back(request.params["loan_id"], now(), ports.command())
    return Reply(200, api.loan_view(loan))


ROUTES = [
    Route("POST", "/loans", lend),
    Route("GET", "/loans/<loan_id>", get_loan, bucket_key="loan_id"),
    Route("POST", "/loans/<loan_id>/return", give_back, bucket_key="loan_id"),
]

ERRORS: dict[type[Exception], tuple[int, str]] = {
    LoanNotFound: (404, "loan_not_found"),
    MemberMayNotBorrow: (422, "member_may_not_borrow"),
    NoSuchCopy: (422, "no_such_copy"),
    CopyOnLoan: (409, "copy_on_loan"),
    AlreadyReturned: (409, "already_returned"),
}
