"""A second monolith, shaped unlike Northwind, through the same commands.

The library (`tests/second_monolith/`: members keyed by text, books by ISBN with
copies under a composite key, loans by UUID, and lending's handlers calling
members and the catalogue through ports) is checked, planned, seeded,
extracted and has its writes moved by `migrate` itself, with only
MIGRATE_MANIFEST pointing at its manifest. One story runs once for the
module; each test asserts one fact of it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from workspaces import system_environment

from migrate.kernel.sql import create_engine
from migrate.manifest import load

pytestmark = pytest.mark.e2e

LIBRARY = Path(__file__).resolve().parents[1] / "second_monolith" / "library"
MANIFEST = LIBRARY / "contexts.toml"


@dataclasses.dataclass
class Story:
    env: dict[str, str]
    checked: dict[str, Any]
    planned: dict[str, Any]
    seeded: subprocess.CompletedProcess
    extracted: dict[str, dict[str, Any]]
    lent: requests.Response
    refused_member: requests.Response
    refused_copy: requests.Response
    loans_out: int
    shelved: list[dict[str, Any]]


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migrate.cli", *args], env=env, capture_output=True,
        text=True, timeout=600, check=False,
    )


def _json(done: subprocess.CompletedProcess) -> Any:
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def _wait(what: str, found: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout:g} s")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    env = system_environment(tmp_path_factory.mktemp("library"))
    env["MIGRATE_MANIFEST"] = str(MANIFEST)
    env["MIGRATE_VISIBILITY_SECONDS"] = "5"
    try:
        yield _tell(env)
    finally:
        migrate(env, "down")


def _tell(env: dict[str, str]) -> Story:
    checked = _json(migrate(env, "check", "--json"))
    planned = _json(migrate(env, "plan", "lending", "--json"))
    seeded = migrate(env, "seed", "--orders", "12")
    assert seeded.returncode == 0, seeded.stderr
    assert migrate(env, "up").returncode == 0
    extracted = {
        name: _json(migrate(env, "extract", name, "--json"))
        for name in ("lending", "catalogue")
    }
    assert migrate(env, "up").returncode == 0
    moved = migrate(env, "shift", "lending", "--writes")
    assert moved.returncode == 0, moved.stderr

    router = f"http://127.0.0.1:{env['MIGRATE_PORT_BASE']}"
    loan = {"member_id": "M0001", "isbn": "9780000000003", "copy_no": 2}
    lent = requests.post(f"{router}/loans", json=loan, timeout=60)
    refused_copy = requests.post(f"{router}/loans", json=loan, timeout=60)
    refused_member = requests.post(
        f"{router}/loans", json={**loan, "member_id": "NOBODY"}, timeout=60
    )
    loans_out = _wait(
        "members counting the service's loan",
        lambda: requests.get(f"{router}/members/M0001", timeout=30).json()[
            "loans_out"],
    )
    return Story(env, checked, planned, seeded, extracted, lent, refused_member,
                 refused_copy, loans_out, _shelve_a_book(env))


def _shelve_a_book(env: dict[str, str]) -> list[dict[str, Any]]:
    """A book added in the monolith after the extraction, as the catalogue
    service holds it once it has followed."""
    manifest = load(MANIFEST)  # which makes the library importable
    from library.catalogue.domain import Book, Copy
    from library.catalogue.handlers import add_books
    from library.catalogue.tables import copies

    home = Path(env["MIGRATE_HOME"])
    host = manifest.host_class()(f"sqlite:///{home / 'monolith.db'}", manifest)
    add_books(host.unit_of_work("catalogue"),
              [Book("9781111111111", "Late Arrival",
                    (Copy(1, "Z1"), Copy(7, "Z7")))])
    service = create_engine(f"sqlite:///{home / 'catalogue.db'}")

    def shelved() -> list[dict[str, Any]]:
        with service.connect() as db:
            rows = db.execute(
                sa.select(copies).where(copies.c.isbn == "9781111111111")
                .order_by(copies.c.copy_no)
            )
            return [dict(r._mapping) for r in rows]

    return _wait("the catalogue service following the new book", shelved)


def test_the_second_monolith_passes_the_check(story: Story) -> None:
    assert story.checked["ok"] is True
    assert story.checked["checked"] == {"modules": 30, "tables": 10}


def test_the_plan_names_lendings_ports_and_who_consumes_its_events(
    story: Story,
) -> None:
    calls = sorted(c["imported"] for c in story.planned["outbound"]
                   if c["kind"] == "port")
    published = {e["event"]: e["consumers"] for e in story.planned["published"]}

    assert calls == ["catalogue.has_copy", "members.may_borrow"]
    assert published == {"BookLent": ["members.count_loan"],
                         "BookReturned": ["members.count_return"]}


def test_seeding_runs_the_seeder_the_manifest_names(story: Story) -> None:
    assert "Seeded" in story.seeded.stdout
    assert "12 loans" in story.seeded.stdout


def test_a_context_with_a_uuid_key_is_extracted_in_parity(story: Story) -> None:
    assert story.extracted["lending"]["counts"]["loans"] == [12, 12]


def test_a_book_with_copies_under_a_composite_key_is_extracted_in_parity(
    story: Story,
) -> None:
    counts = story.extracted["catalogue"]["counts"]

    assert counts["books"] == [12, 12]
    assert counts["copies"] == [24, 24]


def test_the_generated_service_carries_the_manifest_path(story: Story) -> None:
    folder = Path(story.extracted["lending"]["folder"])
    config = (folder / "config.yaml").read_text()
    named = next(line for line in config.splitlines() if line.startswith("MANIFEST:"))

    relative = named.split(":", 2)[-1].rstrip("}")
    assert (folder / relative).resolve() == MANIFEST
    assert (folder / "lending_clients.py").is_file()


def test_the_lending_service_lends_after_asking_members_and_catalogue(
    story: Story,
) -> None:
    assert story.lent.status_code == 201, story.lent.text
    assert story.lent.headers["X-Migrate-Backend"] == "lending"


def test_a_member_that_members_does_not_know_is_refused(story: Story) -> None:
    assert story.refused_member.status_code == 422
    assert story.refused_member.json()["error"] == "member_may_not_borrow"


def test_a_copy_already_out_is_refused(story: Story) -> None:
    assert story.refused_copy.status_code == 409
    assert story.refused_copy.json()["error"] == "copy_on_loan"


def test_members_in_the_monolith_counts_the_services_loan(story: Story) -> None:
    assert story.loans_out == 1


def test_a_composite_keyed_child_follows_its_root(story: Story) -> None:
    assert [(c["copy_no"], c["shelf"]) for c in story.shelved] == [
        (1, "Z1"), (7, "Z7")
    ]
