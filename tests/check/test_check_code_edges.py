"""Violations planted in the code of a copy of the monolith are reported with
their rule and file:line, and fail the check."""

from __future__ import annotations

import pytest
from planting import MonolithCopy


def test_an_import_of_another_contexts_internal_module_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.append(
        "billing/handlers.py", "from monolith.ordering.adapters import SqlOrders"
    )

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("internal-import")
    assert found["location"] == f"monolith/billing/handlers.py:{line}"
    assert found["context"] == "billing"
    assert found["other"] == "ordering"
    assert "monolith.ordering.adapters" in found["message"]


def test_a_web_framework_imported_by_a_domain_module_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.append("billing/domain.py", "from flask import request")

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("forbidden-import")
    assert found["location"] == f"monolith/billing/domain.py:{line}"
    assert "flask.**" in found["message"]


def test_the_orm_session_is_forbidden_in_adapters_but_core_is_allowed(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.append(
        "catalog/adapters.py",
        "from sqlalchemy import Table\nfrom sqlalchemy.orm import Session",
    )

    checked = monolith_copy.check()

    [found] = checked.found("forbidden-import")
    assert found["location"] == f"monolith/catalog/adapters.py:{line + 1}"
    assert "sqlalchemy.orm.Session" in found["message"]


def test_a_module_outside_every_context_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.write("reports.py", "TOTALS = {}\n")

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("no-context")
    assert found["location"] == "monolith/reports.py:1"
    assert found["subject"] == "monolith.reports"


def test_a_module_in_a_folder_without_init_is_reported_and_its_imports_checked(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.write(
        "billing/dunning/letters.py",
        '"""Reminder letters."""\n\nfrom monolith.customers.adapters import x\n',
    )

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [unpackaged] = checked.found("no-init")
    assert unpackaged["location"] == "monolith/billing/dunning/letters.py:1"
    [internal] = checked.found("internal-import")
    assert internal["location"] == "monolith/billing/dunning/letters.py:3"


def test_a_star_import_is_reported(monolith_copy: MonolithCopy) -> None:
    line = monolith_copy.append("shipping/handlers.py",
                                "from monolith.shipping.domain import *")

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("star-import")
    assert found["location"] == f"monolith/shipping/handlers.py:{line}"


def test_imports_inside_functions_and_for_type_checking_are_checked(
    monolith_copy: MonolithCopy,
) -> None:
    start = monolith_copy.append("shipping/handlers.py", "\n".join([
        "from typing import TYPE_CHECKING",
        "if TYPE_CHECKING:",
        "    from monolith.billing.domain import Invoice",
        "def _late():",
        "    from monolith.catalog.adapters import SqlCatalog",
    ]))

    checked = monolith_copy.check()

    assert {v["location"] for v in checked.found("internal-import")} == {
        f"monolith/shipping/handlers.py:{start + 2}",
        f"monolith/shipping/handlers.py:{start + 4}",
    }


def test_a_literal_dynamic_import_is_checked_and_any_other_reported(
    monolith_copy: MonolithCopy,
) -> None:
    start = monolith_copy.append("catalog/handlers.py", "\n".join([
        "import importlib",
        "def _load(name):",
        '    importlib.import_module("monolith.billing.adapters")',
        "    return importlib.import_module(name)",
    ]))

    checked = monolith_copy.check()

    [literal] = checked.found("internal-import")
    assert literal["location"] == f"monolith/catalog/handlers.py:{start + 2}"
    assert "through importlib" in literal["message"]
    [unreadable] = checked.found("dynamic-import")
    assert unreadable["location"] == f"monolith/catalog/handlers.py:{start + 3}"


def test_a_file_that_does_not_parse_is_reported_and_stops_the_import_rules(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.write("catalog/pricing.py", "def broken(:\n    pass\n")
    monolith_copy.write("customers/loyalty.py", "class (\n")

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    assert {v["location"] for v in checked.found("syntax-error")} == {
        "monolith/catalog/pricing.py:1", "monolith/customers/loyalty.py:1",
    }
    assert any("not evaluated" in note for note in checked.report["notes"])


def test_a_context_that_imports_the_host_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.append("ordering/api.py", "from monolith import host")

    checked = monolith_copy.check()

    [found] = checked.found("host-import")
    assert found["location"] == f"monolith/ordering/api.py:{line}"


def test_a_module_with_no_role_is_reported(monolith_copy: MonolithCopy) -> None:
    monolith_copy.write("customers/segments.py", "SEGMENTS = ()\n")

    checked = monolith_copy.check()

    [found] = checked.found("no-role")
    assert found["subject"] == "monolith.customers.segments"


def test_a_role_written_with_a_wildcard_catches_a_real_violation(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.append("contexts.toml", "\n".join([
        "[check.roles.pricing]",
        'modules = ["pricing.**"]',
        'forbid = ["req*.**"]',
    ]))
    monolith_copy.write("billing/pricing/__init__.py", "")
    monolith_copy.write("billing/pricing/rates.py", "import requests\n")

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("forbidden-import")
    assert found["location"] == "monolith/billing/pricing/rates.py:1"
    assert "role pricing forbids req*.**" in found["message"]
    assert checked.found("no-role") == []


def test_a_wildcard_that_never_matches_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.append("contexts.toml", "\n".join([
        "[check.roles.reports]",
        'modules = ["reportz.*"]',
    ]))

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("unused-pattern")
    assert found["location"] == f"contexts.toml:{line + 1}"
    assert "'reportz.*' matches no module" in found["message"]


def test_a_misspelt_forbid_pattern_is_reported_as_guarding_nothing(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.replace(
        "contexts.toml", '    "flask.**", "werkzeug.**", "waitress.**"',
        '    "flsk.**", "werkzeug.**", "waitress.**"')

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("unused-pattern")
    assert found["subject"] == "[check.roles.domain] forbid: flsk.**"
    assert found["location"] == f"contexts.toml:{line}"
    assert "names no module" in found["message"]


def test_a_shared_pattern_that_no_import_matches_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.replace("contexts.toml", 'shared = ["migrate.kernel.**"]',
                                 'shared = ["migrate.kernal.**"]')

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    unused = checked.found("unused-pattern")
    assert [(v["subject"], v["location"]) for v in unused] == [
        ("[check] shared: migrate.kernal.**", f"contexts.toml:{line}")
    ]


def test_a_forbid_pattern_naming_a_submodule_that_does_not_exist_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.replace("contexts.toml", '"sqlalchemy.orm.**", "flask.**"',
                          '"sqlalchemy.orn.**", "flask.**"')

    checked = monolith_copy.check()

    [found] = checked.found("unused-pattern")
    assert found["subject"] == "[check.roles.adapters] forbid: sqlalchemy.orn.**"


@pytest.mark.parametrize("code", [
    'from importlib import import_module as load\nload("{target}")',
    'import importlib\nimportlib.__import__("{target}")',
    'load = __import__\nload("{target}")',
    'from builtins import __import__ as bring\nbring("{target}")',
    'import importlib\nfind = getattr(importlib, "import_module")\nfind("{target}")',
    'import importlib as il\nfetch = il.import_module\nagain = fetch\n'
    'again("{target}")',
], ids=["from-import-as", "importlib-dunder", "assigned-dunder",
        "builtins-as", "getattr", "renamed-twice"])
def test_a_dynamic_import_under_another_name_is_checked(
    monolith_copy: MonolithCopy, code: str,
) -> None:
    text = code.format(target="monolith.ordering.adapters")
    start = monolith_copy.append("catalog/handlers.py", text)

    checked = monolith_copy.check()

    [found] = checked.found("internal-import")
    assert found["location"] == (
        f"monolith/catalog/handlers.py:{start + text.count(chr(10))}")
    assert "through importlib" in found["message"]


@pytest.mark.parametrize("code", [
    'from importlib import import_module as load\ndef f(name):\n    load(name)',
    'import importlib\nNAMES = list(map(importlib.import_module, ["json"]))',
    'load = __import__\nHANDLERS = {"load": load}',
], ids=["alias-called-with-a-variable", "passed-to-map", "stored-in-a-dict"])
def test_a_dynamic_import_that_cannot_be_read_is_reported_under_any_name(
    monolith_copy: MonolithCopy, code: str,
) -> None:
    start = monolith_copy.append("catalog/handlers.py", code)

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("dynamic-import")
    assert found["location"] == (
        f"monolith/catalog/handlers.py:{start + code.count(chr(10))}")


def test_a_module_in_another_declared_encoding_is_read_and_checked(
    monolith_copy: MonolithCopy,
) -> None:
    lines = {}
    for module in ("billing/replica.py", "billing/tables.py"):
        original = monolith_copy.path(module).read_text(encoding="utf-8")
        source = ("# -*- coding: latin-1 -*-\n# Montants en \xe9cus.\n" + original
                  + "from monolith.ordering.adapters import SqlOrders\n")
        monolith_copy.path(module).write_bytes(source.encode("latin-1"))
        lines[module] = source.count("\n")

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    assert [v["location"] for v in checked.found("internal-import")] == [
        f"monolith/{module}:{line}" for module, line in lines.items()]
    assert [v["rule"] for v in checked.report["violations"]] == [
        "internal-import", "internal-import"]
    assert checked.report["checked"]["tables"] == 22


@pytest.mark.parametrize("where", ["billing/notes.py", "billing/drafts/notes.py"],
                         ids=["in-a-package", "in-a-folder-without-init"])
def test_a_module_that_cannot_be_decoded_is_reported_with_its_path(
    monolith_copy: MonolithCopy, where: str,
) -> None:
    monolith_copy.path(where).parent.mkdir(parents=True, exist_ok=True)
    monolith_copy.path(where).write_bytes(b'"""Notes."""\nNAME = "\xff\xfe"\n')

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("unreadable")
    assert found["location"] == f"monolith/{where}:1"
    assert "utf-8" in found["message"]


def test_a_module_that_vanished_is_reported_with_its_path(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.path("billing/gone.py").symlink_to(
        monolith_copy.root / "nowhere.py")

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("unreadable")
    assert found["location"] == "monolith/billing/gone.py:1"
    assert "No such file" in found["message"]
