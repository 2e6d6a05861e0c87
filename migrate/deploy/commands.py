"""`migrate deploy`: build packages, write a SAM template, compile routes.

    migrate deploy build CONTEXT      one zip per function, and the service's
    migrate deploy template CONTEXT   template.yaml, translated and linted
    migrate deploy routes --nginx     nginx.conf for the routing table
    migrate deploy routes --alb       ALB listener rules, and what they lose

Files go to <MIGRATE_HOME>/deploy/<context>/ unless --out says otherwise,
so a template finds the zips beside it. Findings of translation and lint
fail `template` (exit 1) after the file is written, so it can be read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import click

from migrate.settings import Settings


def _folder(context: str) -> Path:
    return Settings.from_env().home / "deploy" / context


@click.group()
def deploy() -> None:
    """Package, describe and route the system for AWS."""


@deploy.command()
@click.argument("context")
@click.option("--out", type=click.Path(path_type=Path), help="folder for the zips")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def build(context: str, out: Path | None, as_json: bool) -> None:
    """Build CONTEXT's function zips and, once extracted, its service's."""
    from migrate.deploy.package import build as run
    from migrate.extract.generate import extraction_of
    from migrate.manifest import load

    settings = Settings.from_env()
    manifest = load()
    manifest.context(context)
    folder = out or _folder(context)
    report = run(
        manifest, context, folder, extraction_of(context, settings.extracted_dir)
    )
    artifacts = [*report.functions, *([report.service] if report.service else [])]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "context": context,
                    "artifacts": [dataclasses.asdict(a) for a in artifacts],
                    "service_built": report.service is not None,
                },
                indent=2,
                default=str,
            )
        )
        return

    for artifact in artifacts:
        size = artifact.path.stat().st_size / 1024
        click.echo(
            f"{artifact.path}  {size:8.0f} KiB  {artifact.files:4d} files  "
            f"sha256 {artifact.sha256[:16]}"
        )
        for compiled in artifact.compiled:
            click.echo(f"    compiled for this platform: {compiled}")
    if report.service is None:
        click.echo(
            f"No service artifact: {context} is not extracted "
            f"(run `migrate extract {context}` first)."
        )


@deploy.command()
@click.argument("context")
@click.option("--out", type=click.Path(path_type=Path), help="the template file")
@click.option("--timeout", default=30, show_default=True, help="seconds")
@click.option("--memory", default=256, show_default=True, help="MB")
@click.option("--batch-size", default=10, show_default=True)
@click.option("--batching-window", default=1, show_default=True, help="seconds")
@click.option("--concurrency", default=2, show_default=True, help="per function")
@click.option("--check/--no-check", default=True, help="translate and lint it")
def template(
    context: str,
    out: Path | None,
    timeout: int,
    memory: int,
    batch_size: int,
    batching_window: int,
    concurrency: int,
    check: bool,
) -> None:
    """Write CONTEXT's SAM template; translate and lint it."""
    from migrate.deploy import checks
    from migrate.deploy.errors import TemplateRejected
    from migrate.deploy.functions import Settings as FunctionSettings
    from migrate.deploy.template import dump
    from migrate.deploy.template import template as write
    from migrate.manifest import load

    settings = FunctionSettings(
        timeout, memory, batch_size, batching_window, concurrency
    )
    document = write(load(), context, settings)
    path = out or _folder(context) / "template.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(document, context), encoding="utf-8")
    click.echo(f"Wrote {path} ({len(document['Resources'])} resources).")
    if not check:
        return

    findings = checks.check(document)
    if findings:
        raise TemplateRejected(str(path), findings)

    click.echo("aws-sam-translator and cfn-lint find nothing to report.")


@deploy.command()
@click.option("--nginx", "target", flag_value="nginx", help="an nginx.conf")
@click.option("--alb", "target", flag_value="alb", help="ALB listener rules")
@click.option("--out", type=click.Path(path_type=Path), help="file (default: stdout)")
@click.option(
    "--listen", default="127.0.0.1:8080", show_default=True, help="nginx's address"
)
@click.option(
    "--override-secret-file", type=click.Path(path_type=Path, dir_okay=False,
                                              exists=True),
    help="a file holding the testers' override secret (the one `migrate "
         "override-secret` printed): nginx then honours overrides, and its "
         "configuration holds the secret")
def routes(
    target: str | None, out: Path | None, listen: str,
    override_secret_file: Path | None,
) -> None:
    """Compile the routing table for nginx or for an ALB listener."""
    from migrate.deploy.routes import alb, nginx, plan_of
    from migrate.deploy.template import to_yaml
    from migrate.errors import SystemNotRunning
    from migrate.router.state import StateStore

    if target is None:
        raise click.UsageError("pass --nginx or --alb")

    if override_secret_file is not None and target != "nginx":
        raise click.UsageError("--override-secret-file goes with --nginx; ALB "
                               "cannot match a tester's override")

    state = Settings.from_env().state_path
    if not state.exists():
        raise SystemNotRunning(
            f"no routing state at {state}; `migrate up` or `migrate extract` creates it"
        )

    plan = plan_of(StateStore(state))
    notes: tuple[str, ...] = ()
    if target == "nginx":
        secret = None
        if override_secret_file is not None:
            secret = override_secret_file.read_text(encoding="utf-8").strip()
        text = nginx(plan, listen, secret)
    else:
        rules = alb(plan)
        notes = rules.cannot
        header = "".join(f"# ALB cannot: {note}\n" for note in notes)
        text = header + to_yaml(rules.document)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        if override_secret_file is not None:
            _write_private(out, text)
        else:
            out.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {out} (routing table at revision {plan.revision}).")
    for note in notes:
        click.echo(f"ALB cannot: {note}", err=True)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner reads: it holds a secret."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


commands: list[click.Command] = [deploy]
