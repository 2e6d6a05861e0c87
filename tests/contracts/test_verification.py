"""Providers verified against their consumers' contracts, on real hosts.

Every host runs for real: the monolith as `python -m monolith`, each
context's generated service under `nameko run`, each on a fresh database,
with the provider states set through the contexts' own APIs. Breaking
changes are made in a copy of the code, never in the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from contract_helpers import copy_of_code

from migrate.contracts.gate import refusal
from migrate.contracts.verify import Report, verify
from migrate.settings import Settings

API = "monolith/billing/api.py"
ROUTES = "monolith/billing/routes.py"
ENVELOPES = "migrate/kernel/events.py"
EVENTS = "monolith/billing/events.py"


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Report]:
    """Every contract verified on the monolith and on the service of every
    context, each generated as `migrate extract` writes it."""
    from migrate.extract.generate import generate
    from migrate.manifest import load

    extracted = tmp_path_factory.mktemp("services")
    for context in load().contexts:
        generate(load(), context, extracted)
    home = tmp_path_factory.mktemp("verified")
    settings = Settings.from_env({"MIGRATE_HOME": str(home),
                                  "MIGRATE_EXTRACTED": str(extracted)})
    return settings, verify(settings)


def test_every_contract_is_kept_on_every_host(
    verified: tuple[Settings, Report],
) -> None:
    _, report = verified

    assert report.ok, "\n".join(m.text() for m in report.mismatches)
    assert sorted((v.provider, v.host) for v in report.verifications) == [
        (provider, host)
        for provider in ("billing", "catalog", "customers", "ordering", "shipping")
        for host in ("monolith", "service")
    ]
    # Kept means replayed: a contract the verifier skipped would look kept.
    assert [(v.provider, v.host) for v in report.verifications
            if v.replayed != v.interactions] == []


def test_orderings_contract_with_shipping_is_kept_on_both_hosts_of_shipping(
    verified: tuple[Settings, Report],
) -> None:
    _, report = verified

    kept = {v.host: v.pact("ordering") for v in report.verifications
            if v.provider == "shipping"}

    assert sorted(kept) == ["monolith", "service"]
    assert all(p is not None and p.ok and p.replayed == p.interactions == 2
               for p in kept.values()), kept


def test_a_context_whose_contracts_are_kept_may_shift(
    verified: tuple[Settings, Report],
) -> None:
    settings, _ = verified

    assert refusal("billing", settings) is None


def verify_changed(settings: Settings, tmp_path: Path,
                   edits: dict[str, tuple[str, str]], host: str = "monolith") -> Report:
    root = copy_of_code(tmp_path / "code", edits)
    return verify(settings, providers=["billing"], host=host, root=root)


def test_a_renamed_response_field_breaks_the_contract_naming_the_field(
    settings: Settings, tmp_path: Path,
) -> None:
    report = verify_changed(settings, tmp_path, {API: (
        '"total": money.text(invoice.total),',
        '"grand_total": money.text(invoice.total),')})

    texts = [m.text() for m in report.mismatches]
    assert not report.ok
    assert any("a request for an invoice: $.total: expected a value, got nothing" in t
               for t in texts), texts
    assert "$.total" in str(refusal("billing", settings))


def test_a_changed_type_breaks_the_contract_naming_the_field(
    settings: Settings, tmp_path: Path,
) -> None:
    report = verify_changed(settings, tmp_path, {API: (
        '"invoice_id": invoice.invoice_id,', '"invoice_id": str(invoice.invoice_id),')})

    assert [(m.path, m.expected, m.actual) for m in report.mismatches
            if m.description == "a request for an invoice"] == [
        ("$.invoice_id", "10248", '"10248"')]
    assert "$.invoice_id" in str(refusal("billing", settings))


def test_a_dropped_attribute_a_filter_policy_uses_breaks_the_contract(
    settings: Settings, tmp_path: Path,
) -> None:
    report = verify_changed(settings, tmp_path, {ENVELOPES: (
        '"origin": self.origin,', "")})

    dropped = [m for m in report.mismatches if m.path == "metadata.origin"]
    assert {m.description for m in dropped} == {
        "an InvoiceIssued event", "a PaymentReceived event"}
    assert all("filter polic" in m.note and m.actual.startswith("nothing")
               for m in dropped)
    assert "metadata.origin" in str(refusal("billing", settings))


def test_a_changed_status_code_breaks_the_contract_naming_it(
    settings: Settings, tmp_path: Path,
) -> None:
    report = verify_changed(settings, tmp_path, {ROUTES: (
        "return Reply(201, body", "return Reply(200, body")})

    assert [(m.path, m.expected, m.actual) for m in report.mismatches] == [
        ("status", "201", "200")]
    assert "status: expected 201, got 200" in str(refusal("billing", settings))


def test_a_break_in_the_service_host_is_found_on_the_service(
    settings: Settings, tmp_path: Path,
) -> None:
    report = verify_changed(settings, tmp_path, {API: (
        '"invoice_id": invoice.invoice_id,', '"invoice_id": str(invoice.invoice_id),'),
    }, host="service")

    assert [v.host for v in report.verifications] == ["service"]
    assert "$.invoice_id" in {m.path for m in report.mismatches}


def test_a_new_optional_field_and_reordered_keys_keep_the_contract(
    settings: Settings, tmp_path: Path,
) -> None:
    report = verify_changed(settings, tmp_path, {API: (
        '''        "invoice_id": invoice.invoice_id,
        "order_id": invoice.order_id,''',
        '''        "order_id": invoice.order_id,
        "currency": "USD",
        "invoice_id": invoice.invoice_id,''')})

    assert report.ok, [m.text() for m in report.mismatches]


def test_a_new_optional_field_in_an_event_keeps_the_message_contracts(
    settings: Settings, tmp_path: Path,
) -> None:
    # One field more in the invoice every billing event carries, and one
    # more (with a default) in InvoiceIssued itself.
    root = copy_of_code(tmp_path / "code", {EVENTS: (
        '        "status": invoice.status,\n',
        '        "status": invoice.status,\n        "currency": "USD",\n')})
    events = root / EVENTS
    issued = ('class InvoiceIssued(Event):\n    context: ClassVar[str] = "billing"\n'
              "\n    invoice: dict[str, Any]\n")
    assert events.read_text().count(issued) == 1
    events.write_text(events.read_text().replace(
        issued, issued + '    channel: str = "web"\n'))

    report = verify(settings, providers=["billing"], host="monolith", root=root)

    assert report.ok, [m.text() for m in report.mismatches]
    [verification] = report.verifications
    messages = [p for p in verification.pacts
                if p.consumer != "router" and p.interactions]
    assert len(messages) == 4
    assert all(p.ok for p in messages)


def test_every_context_followed_through_row_images_keeps_its_contracts_on_its_service(
    verified: tuple[Settings, Report],
) -> None:
    _, report = verified
    providers = ["catalog", "customers", "ordering", "shipping"]

    on_services = [v for v in report.verifications
                   if v.host == "service" and v.provider in providers]

    assert all(v.ok for v in on_services), "\n".join(
        m.text() for v in on_services for m in v.mismatches)
    assert sorted(v.provider for v in on_services) == providers
    replayed = {v.provider: (v.replayed, v.interactions) for v in on_services}
    assert all(count > 0 for count, _ in replayed.values()), replayed
    assert all(count == held for count, held in replayed.values()), replayed
    routes = {v.provider: v.pact("router") for v in on_services}
    assert all(r is not None and r.replayed > 0 for r in routes.values()), routes
