"""The catalogue's HTTP routes."""

from __future__ import annotations

from library.catalogue import api
from library.catalogue.domain import BookNotFound
from library.catalogue.ports import Ports
from migrate.kernel.http import Reply, Request, Route


def get_book(ports: Ports, request: Request) -> Reply:
    return Reply(200, api.book(ports.query(), request.params["isbn"]))


ROUTES = [
    Route("GET", "/books/<isbn>", get_book, bucket_key="isbn"),
]

ERRORS: dict[type[Exception], tuple[int, str]] = {
    BookNotFound: (404, "book_not_found"),
}
