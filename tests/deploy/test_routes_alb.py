"""ALB listener rules: the weights the router uses, and a plain account of
what ALB cannot do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.deploy.checks import lint
from migrate.deploy.errors import RoutingInvalid
from migrate.deploy.routes import alb, nginx, plan_of
from migrate.router.state import StateStore

ROUTES = [
    ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
    ("POST", "/invoices/<int:invoice_id>/payments", "invoice_id"),
]


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    state = StateStore(tmp_path / "router.db")
    state.set_backend("monolith", "http://127.0.0.1:8701")
    state.set_backend("billing", "http://127.0.0.1:8713")
    state.register_routes("billing", "billing", ROUTES)
    return state


def _rules(store: StateStore) -> dict[str, Any]:
    resources: dict[str, Any] = alb(plan_of(store)).document["Resources"]
    return {
        r["Properties"]["Conditions"][0]["PathPatternConfig"]["Values"][0]
        + " "
        + ",".join(
            r["Properties"]["Conditions"][1]["HttpRequestMethodConfig"]["Values"]
        ): r["Properties"]
        for r in resources.values()
    }


def test_keyed_reads_are_weighted_between_service_and_monolith(
    store: StateStore,
) -> None:
    store.set_weight("billing", 25, "test", "a quarter")

    rule = _rules(store)["/invoices/* GET,HEAD"]

    groups = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
    assert [(g["TargetGroupArn"]["Ref"], g["Weight"]) for g in groups] == [
        ("BillingTargetGroupArn", 25),
        ("MonolithTargetGroupArn", 75),
    ]


def test_writes_forward_to_the_writer_and_more_specific_rules_come_first(
    store: StateStore,
) -> None:
    store.set_writer("billing", "billing", "test", "flip")

    rules = _rules(store)

    payments = rules["/invoices/*/payments POST"]
    assert payments["Priority"] < rules["/invoices/* GET,HEAD"]["Priority"]
    assert payments["Actions"][0]["ForwardConfig"]["TargetGroups"] == [
        {"TargetGroupArn": {"Ref": "BillingTargetGroupArn"}, "Weight": 1}
    ]


def test_the_rules_say_what_alb_cannot_express(store: StateStore) -> None:
    losses = " ".join(alb(plan_of(store)).cannot)

    assert "not a hash of the bucket key" in losses
    assert "not sent to the monolith" in losses


def test_the_rules_say_alb_cannot_mirror(store: StateStore) -> None:
    plain = alb(plan_of(store)).cannot
    store.set_shadow("billing", 30, "test", "compare")

    shadowed = alb(plan_of(store)).cannot

    assert any("ALB cannot mirror a request" in note for note in plain)
    assert "billing is shadowed (30 %), and these rules mirror none of its " \
        "requests" in shadowed


def test_the_rules_lint_clean(store: StateStore) -> None:
    store.set_weight("billing", 50, "test", "half")

    assert lint(alb(plan_of(store)).document) == []


def test_a_salt_nginx_cannot_hold_is_refused(store: StateStore) -> None:
    store.register_routes("billing", "billing", ROUTES, salt='bill"ing')

    with pytest.raises(RoutingInvalid, match="salt of billing"):
        nginx(plan_of(store))
