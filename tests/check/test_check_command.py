"""`migrate check` as a user runs it: exit codes, messages, the baseline."""

from __future__ import annotations

import json

import pytest
from planting import PROJECT, MonolithCopy, migrate_cli


def test_the_reference_monolith_passes_the_check() -> None:
    done = migrate_cli("check")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("No violations in ")


def test_violations_exit_1_with_a_report_grouped_by_context_and_rule(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.append("billing/handlers.py",
                                "from monolith.ordering.adapters import SqlOrders")
    monolith_copy.write("reports.py", "")

    done = migrate_cli("check", "--manifest", str(monolith_copy.manifest))

    assert done.returncode == 1
    lines = done.stdout.splitlines()
    billing = lines.index("billing")
    assert lines[billing + 1].startswith("  internal-import: ")
    assert lines[billing + 2].startswith(f"    monolith/billing/handlers.py:{line}  ")
    assert "no context" in lines
    assert lines[-1].startswith("2 violations in 2 contexts")


def test_json_lists_each_violation_with_rule_and_location(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.write("reports.py", "")

    done = migrate_cli("check", "--json", "--manifest", str(monolith_copy.manifest))

    report = json.loads(done.stdout)
    assert done.returncode == 1
    assert report["ok"] is False
    assert [(v["rule"], v["location"]) for v in report["violations"]] == [
        ("no-context", "monolith/reports.py:1")
    ]


def test_a_rule_naming_an_unknown_context_exits_2_naming_the_entry(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.replace("contexts.toml", '[check.roles.functions]\n',
                          '[check.roles.functions]\ncontexts = ["invoicing"]\n')

    done = migrate_cli("check", "--manifest", str(monolith_copy.manifest))

    assert done.returncode == 2
    assert "[check.roles.functions] names context 'invoicing'" in done.stderr


def test_a_table_claimed_twice_exits_2_naming_the_table(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.replace("contexts.toml", 'tables = ["invoices", ',
                          'tables = ["orders", "invoices", ')

    done = migrate_cli("check", "--manifest", str(monolith_copy.manifest))

    assert done.returncode == 2
    assert "table 'orders' is claimed by ordering and billing" in done.stderr


def test_a_package_that_does_not_exist_exits_2_naming_it(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.replace("contexts.toml", 'package = "monolith.shipping"',
                          'package = "monolith.delivery"')

    done = migrate_cli("check", "--manifest", str(monolith_copy.manifest))

    assert done.returncode == 2
    assert "context shipping: package 'monolith.delivery' does not exist" in (
        done.stderr)


def test_a_baseline_accepts_known_violations_and_fails_on_new_ones(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.write("reports.py", "")
    monolith_copy.check("--write-baseline")
    monolith_copy.write("exports.py", "")

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    assert [v["subject"] for v in checked.report["violations"]] == ["monolith.exports"]
    assert [v["subject"] for v in checked.report["baselined"]] == ["monolith.reports"]


def test_a_clean_check_under_a_baseline_exits_0(monolith_copy: MonolithCopy) -> None:
    monolith_copy.write("reports.py", "")
    monolith_copy.check("--write-baseline")

    checked = monolith_copy.check()

    assert checked.exit_code == 0
    assert checked.report["ok"] is True


def test_stale_baseline_entries_are_reported(monolith_copy: MonolithCopy) -> None:
    monolith_copy.write("reports.py", "")
    monolith_copy.check("--write-baseline")
    monolith_copy.path("reports.py").unlink()

    checked = monolith_copy.check()

    assert checked.exit_code == 0
    assert checked.report["stale_baseline"] == [
        {"rule": "no-context", "subject": "monolith.reports", "context": "no context"}
    ]


def test_an_unreadable_baseline_exits_2_naming_the_file(
    monolith_copy: MonolithCopy,
) -> None:
    baseline = monolith_copy.root / "accepted.json"
    baseline.write_text("[1, 2]")

    done = migrate_cli("check", "--manifest", str(monolith_copy.manifest),
                       "--baseline", str(baseline))

    assert done.returncode == 2
    assert f"baseline {baseline}" in done.stderr


def test_the_command_is_listed_by_migrate_help() -> None:
    done = migrate_cli("--help", cwd=PROJECT)

    assert "check" in done.stdout and "plan" in done.stdout


@pytest.mark.parametrize("old, new, entry", [
    ('routes = "monolith.billing.routes"', 'routes = "monolith.billing.routez"',
     "context billing: routes 'monolith.billing.routez' does not import"),
    ('routes = "monolith.billing.routes"', 'routes = "monolith.billing.events"',
     "context billing: routes 'monolith.billing.events' has no ROUTES"),
    ('handlers = "monolith.shipping.handlers"',
     'handlers = "monolith.shipping.handler"',
     "context shipping: handlers 'monolith.shipping.handler' does not import"),
    ('replica = "monolith.billing.replica"', 'replica = "monolith.billing.replicas"',
     "context billing: replica 'monolith.billing.replicas' does not import"),
    ('function = "monolith.billing.functions:invoice_pdf"',
     'function = "monolith.billing.functions:invoice_pfd"',
     "context billing: side_effects.invoice_pdf.function "
     "'monolith.billing.functions:invoice_pfd' does not import: "
     "'monolith.billing.functions' has no 'invoice_pfd'"),
    ('handler = "monolith.shipping.side_effects:shipment_notification"',
     'handler = "monolith.shipping.side_effect:shipment_notification"',
     "context shipping: side_effects.shipment_notification.handler "
     "'monolith.shipping.side_effect:shipment_notification' does not import"),
    ('outlets = "monolith.billing.outlets"', 'outlets = "monolith.billing.adapters"',
     "context billing: outlets 'monolith.billing.adapters' has no outlet"),
], ids=["routes", "routes-without-routes", "handlers", "replica",
        "side-effect-function", "side-effect-handler", "outlets"])
def test_a_reference_that_does_not_import_exits_2_naming_the_entry(
    monolith_copy: MonolithCopy, old: str, new: str, entry: str,
) -> None:
    monolith_copy.replace("contexts.toml", old, new)

    done = migrate_cli("check", "--manifest", str(monolith_copy.manifest))

    assert done.returncode == 2, done.stdout
    assert entry in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_side_effect_without_its_handler_exits_2_naming_it(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.replace(
        "contexts.toml",
        'handler = "monolith.billing.side_effects:payment_reminder"\n', "")

    done = migrate_cli("check", "--manifest", str(monolith_copy.manifest))

    assert done.returncode == 2
    assert "context billing: side effect payment_reminder lacks handler" in (
        done.stderr)
