"""`migrate deploy` as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from migrate.router.state import StateStore


def _migrate(home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrate.cli", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "MIGRATE_HOME": str(home)},
        timeout=120,
    )


def test_template_is_written_beside_the_zips_and_checked(tmp_path: Path) -> None:
    built = _migrate(tmp_path, "deploy", "build", "billing")
    written = _migrate(tmp_path, "deploy", "template", "billing")

    folder = tmp_path / "deploy" / "billing"
    document = yaml.safe_load((folder / "template.yaml").read_text())
    code = [
        r["Properties"]["CodeUri"]
        for r in document["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    ]
    assert built.returncode == 0, built.stderr
    assert written.returncode == 0, written.stderr
    assert "find nothing to report" in written.stdout
    assert code and all(zipfile.is_zipfile(folder / uri) for uri in code)


def _aliases(text: str) -> list[str]:
    """Every anchor and alias in a YAML text, read from its events."""
    return [
        f"{type(event).__name__} {event.anchor}"
        for event in yaml.parse(text)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)
    ]


def test_the_written_template_has_no_yaml_aliases(tmp_path: Path) -> None:
    from migrate.deploy.functions import Settings
    from migrate.deploy.template import template
    from migrate.manifest import load

    done = _migrate(tmp_path, "deploy", "template", "billing", "--no-check")

    text = (tmp_path / "deploy" / "billing" / "template.yaml").read_text()
    assert done.returncode == 0, done.stderr
    assert _aliases(text) == []
    assert yaml.safe_load(text) == template(load(), "billing", Settings())


def test_settings_outside_lambdas_ranges_are_refused(tmp_path: Path) -> None:
    done = _migrate(tmp_path, "deploy", "template", "billing", "--timeout", "901")

    assert done.returncode == 1
    assert done.stderr.strip() == "error: timeout 901: Lambda runs 1-900 seconds"


def test_routes_without_routing_state_says_how_to_get_it(tmp_path: Path) -> None:
    done = _migrate(tmp_path, "deploy", "routes", "--nginx")

    assert done.returncode == 1
    assert "`migrate up` or `migrate extract` creates it" in done.stderr


def test_routes_for_alb_print_what_alb_cannot_do(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    state = StateStore(tmp_path / "router.db")
    state.set_backend("monolith", "http://127.0.0.1:8701")
    state.set_backend("billing", "http://127.0.0.1:8713")
    state.register_routes("billing", "billing", [("GET", "/invoices/<int:i>", "i")])

    rules = tmp_path / "rules.yaml"
    done = _migrate(tmp_path, "deploy", "routes", "--alb", "--out", str(rules))

    assert done.returncode == 0, done.stderr
    assert "ALB cannot: ALB stickiness is a cookie per client" in done.stderr
    assert "ALB cannot: ALB cannot mirror a request" in done.stderr
    assert "# ALB cannot: ALB cannot mirror a request" in rules.read_text()
    assert yaml.safe_load(rules.read_text())["Resources"]
    assert _aliases(rules.read_text()) == []


def _state_with_secret(home: Path, secret: str) -> None:
    home.mkdir(exist_ok=True)
    state = StateStore(home / "router.db")
    state.set_backend("monolith", "http://127.0.0.1:8701")
    state.set_backend("billing", "http://127.0.0.1:8713")
    state.register_routes("billing", "billing", [("GET", "/invoices/<int:i>", "i")])
    state.set_override_secret(secret, "test", "testers")


def test_nginx_routes_take_the_override_secret_from_a_file(tmp_path: Path) -> None:
    secret = "a-secret-for-testers-0123"
    _state_with_secret(tmp_path, secret)
    given = tmp_path / "override.secret"
    given.write_text(secret + "\n")
    conf = tmp_path / "nginx.conf"

    done = _migrate(tmp_path, "deploy", "routes", "--nginx",
                    "--override-secret-file", str(given), "--out", str(conf))

    assert done.returncode == 0, done.stderr
    assert f'"service:{secret}" service;' in conf.read_text()
    assert conf.stat().st_mode & 0o777 == 0o600


def test_nginx_routes_refuse_a_secret_the_router_does_not_hold(
    tmp_path: Path,
) -> None:
    _state_with_secret(tmp_path, "a-secret-for-testers-0123")
    given = tmp_path / "override.secret"
    given.write_text("some-other-secret-456789")

    done = _migrate(tmp_path, "deploy", "routes", "--nginx",
                    "--override-secret-file", str(given))

    assert done.returncode == 1
    assert "not the one the routing state keeps the hash of" in done.stderr
    assert "some-other-secret" not in done.stderr + done.stdout


def test_alb_routes_take_no_override_secret(tmp_path: Path) -> None:
    _state_with_secret(tmp_path, "a-secret-for-testers-0123")
    given = tmp_path / "override.secret"
    given.write_text("a-secret-for-testers-0123")

    done = _migrate(tmp_path, "deploy", "routes", "--alb",
                    "--override-secret-file", str(given))

    assert done.returncode == 2
    assert "goes with --nginx" in done.stderr
