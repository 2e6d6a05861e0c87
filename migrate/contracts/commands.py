"""`migrate contracts verify` and `migrate can-i-deploy`.

Exit codes: 0 every contract kept (or: yes, deploy); 1 a contract broken, a
contract file malformed (bad input is refused), or no; 2 bad usage, or bad
configuration (the manifest, an environment variable).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from migrate.settings import Settings


def _quiet_pact() -> None:
    # Pact logs each failed state change as a warning; the report says it once.
    logging.getLogger("pact").addHandler(logging.NullHandler())


@click.group("contracts")
def contracts() -> None:
    """Consumer-driven contracts: verify providers against their consumers."""


@contracts.command("verify")
@click.option("--provider", "providers", multiple=True,
              help="verify this provider only (repeatable); all by default")
@click.option("--host", type=click.Choice(["monolith", "service", "both"]),
              default="both", show_default=True,
              help="the host to verify each provider on")
@click.option("--contracts", "folder", type=click.Path(path_type=Path,
                                                       file_okay=False, exists=True),
              help="the folder of Pact files (default: the project's contracts/)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def verify_command(providers: tuple[str, ...], host: str, folder: Path | None,
                   as_json: bool) -> None:
    """Start each provider, set its states, replay every contract on it.

    Exit 0 when every contract is kept, 1 when one is broken or a contract
    file is malformed."""
    from migrate.contracts.verify import CONTRACTS_DIR, verify

    _quiet_pact()
    say = None if as_json else (lambda line: click.echo(line, err=True))
    report = verify(Settings.from_env(), providers=providers or None, host=host,
                    folder=folder or CONTRACTS_DIR, progress=say)
    if as_json:
        click.echo(json.dumps({
            "ok": report.ok,
            "seconds": report.seconds,
            "skipped": list(report.skipped),
            "verifications": [v.as_dict() for v in report.verifications],
        }, indent=2))
    else:
        for verification in report.verifications:
            kept = verification.interactions - verification.broken
            verdict = "kept" if verification.ok else "BROKEN"
            click.echo(f"{verification.provider} on the {verification.host}: "
                       f"{verdict}, {kept} of {verification.interactions} "
                       f"interactions ({verification.seconds:.1f} s)")
            for mismatch in verification.mismatches:
                click.echo(f"  {mismatch.text()}")
        for note in report.skipped:
            click.echo(f"({note})")
        click.echo(f"{len(report.verifications)} verifications in "
                   f"{report.seconds:.1f} s")
    if not report.ok:
        sys.exit(1)


@click.command("can-i-deploy")
@click.argument("context")
@click.option("--json", "as_json", is_flag=True, help="print the answer as JSON")
def can_i_deploy_command(context: str, as_json: bool) -> None:
    """Say whether CONTEXT may be deployed, from the latest verifications."""
    from migrate.contracts.gate import can_i_deploy

    answer = can_i_deploy(context, Settings.from_env())
    if as_json:
        click.echo(json.dumps(answer.as_dict(), indent=2))
    else:
        click.echo(f"{context}: {'yes' if answer.deployable else 'no'}")
        for reason in answer.reasons:
            click.echo(f"  - {reason}")
        for kept in answer.kept:
            click.echo(f"  + {kept}")
    if not answer.deployable:
        sys.exit(1)


commands: list[click.Command] = [contracts, can_i_deploy_command]
