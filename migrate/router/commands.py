"""The router's commands: `migrate bench router`, `shadow`, `diffs`, `slo`,
`override-secret`, `rollout pause|resume|stop` and `dashboard`.

Each is a thin layer over the state store, the admin API or the bench.
Exit codes: 0 done; 1 the operation failed or (for the bench and `diffs`)
found a shortfall; 2 bad usage.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sys
from typing import Any

import click

from migrate.router.errors import InvalidSetting


def _store() -> Any:
    from migrate.router.state import StateStore
    from migrate.settings import Settings

    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    return StateStore(settings.state_path)


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def ledger_text(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A --reason as the ledger keeps it: capped as the admin API caps it."""
    from migrate.router.bodies import MAX_TEXT, control_character, shown

    if len(value) > MAX_TEXT:
        raise click.BadParameter(
            f"{shown(value)} ({len(value):,} characters): a reason is text of "
            f"at most {MAX_TEXT} characters", ctx, param,
        )
    if found := control_character(value):
        raise click.BadParameter(
            f"{shown(value)} holds the control character {found}: a reason is "
            "one line of text", ctx, param,
        )
    return value


@click.group("bench")
def bench() -> None:
    """Measure parts of the kit on this machine."""


@bench.command("router")
@click.option("--seconds", default=3.0, show_default=True,
              help="length of each measurement")
@click.option("--rounds", default=5, show_default=True,
              help="measurements of each row; the figures are medians")
@click.option("--rate", default=500.0, show_default=True,
              help="requests per second for the latency measurement")
@click.option("--concurrency", default=32, show_default=True,
              help="connections for the peak measurement")
@click.option("--no-nginx", is_flag=True, help="leave nginx out even if installed")
@click.option("--generator", type=click.Choice(["auto", "wrk", "python"]),
              default="auto", show_default=True,
              help="what generates the peak load (auto: wrk when installed)")
@click.option("--profile", type=click.Path(dir_okay=False),
              help="write the router's cProfile data to this file")
@click.option("--no-pin", is_flag=True,
              help="let the scheduler place the processes, at normal priority")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def bench_router_command(seconds: float, rounds: int, rate: float,
                         concurrency: int, no_nginx: bool, generator: str,
                         profile: str | None, no_pin: bool, as_json: bool) -> None:
    """What the router costs: direct, router, bare proxy and nginx, side by side.

    Exits 1 when the router misses a gate (1 ms at p50 and 3 ms at p99
    added at the fixed rate; 80 % of the bare proxy's peak)."""
    from migrate.router.bench import bench_router

    result = bench_router(seconds, rate, concurrency, rounds=rounds,
                          nginx=not no_nginx, generator=generator, profile=profile,
                          pin=not no_pin)
    if as_json:
        _echo_json(result.as_json())
    else:
        click.echo(result.report())
    if not result.ok:
        sys.exit(1)


# A negative share is a share to refuse with its rule, not an unknown option.
@click.command("shadow", context_settings={"ignore_unknown_options": True})
@click.argument("context")
@click.argument("percent")
@click.option("--ignore", "ignore_paths", multiple=True,
              help="a JSON path whose differences do not count ($.generated_at); "
                   "repeatable, the paths given replace the kept ones")
@click.option("--ignore-header", "ignore_headers", multiple=True,
              help="a response header whose differences do not count; "
                   "repeatable, the names given replace the kept ones")
@click.option("--no-ignores", is_flag=True,
              help="clear the kept ignore paths and headers")
@click.option("--noise/--no-noise", default=None,
              help="ask the primary twice and ignore what differs between them")
@click.option("--safe-write", "safe_writes", multiple=True,
              help="a write route safe to mirror, as 'POST /rule'")
@click.option("--reason", default="", callback=ledger_text,
              help="why, for the ledger")
@click.option("--json", "as_json", is_flag=True)
def shadow_command(context: str, percent: str, ignore_paths: tuple[str, ...],
                   ignore_headers: tuple[str, ...], no_ignores: bool,
                   noise: bool | None, safe_writes: tuple[str, ...], reason: str,
                   as_json: bool) -> None:
    """Mirror PERCENT % of CONTEXT's requests to the other side and compare.

    Each setting is kept until it is given again, through turning shadow
    off (PERCENT 0) and on: --ignore, --ignore-header and --safe-write
    replace their list when given, --noise/--no-noise switch noise
    cancellation, and --no-ignores clears both ignore lists."""
    if percent.startswith("--"):
        raise click.UsageError(f"no such option: {percent}")
    if no_ignores and (ignore_paths or ignore_headers):
        given = " and ".join(name for name, values in (
            ("--ignore", ignore_paths), ("--ignore-header", ignore_headers))
            if values)
        raise click.UsageError(f"--no-ignores clears the ignore lists; it takes "
                               f"no {given}")
    rule = "shares run 0-100 %"
    try:
        share = int(percent)
    except ValueError:
        raise InvalidSetting(context, "shadow share", percent, rule) from None
    if not 0 <= share <= 100:
        raise InvalidSetting(context, "shadow share", share, rule)

    store = _store()
    store.set_shadow(
        context, share, "migrate shadow", reason or "operator",
        ignore_paths=() if no_ignores else ignore_paths or None,
        ignore_headers=() if no_ignores else ignore_headers or None,
        noise=noise,
        safe_writes=safe_writes or None,
    )
    settings = store.status()[context].shadow
    if as_json:
        _echo_json({"context": context, **settings.as_json()})
    else:
        click.echo(f"{context} shadow: {settings.text()}.")


@click.command("diffs")
@click.argument("context")
@click.option("--limit", default=0.01, show_default=True,
              help="share of shadowed requests that may differ or fail")
@click.option("--json", "as_json", is_flag=True)
def diffs_command(context: str, limit: float, as_json: bool) -> None:
    """Show what shadowing CONTEXT found, per route, from the running router.

    Exits 1 when the share of differences is above --limit."""
    from migrate.router.admin import AdminClient
    from migrate.router.rollout import shadow_gate

    store = _store()
    # Asked first, so an unknown context is refused the same way with or
    # without a router running.
    store.phase(context)
    client = AdminClient.for_state(store.path)
    found = client.shadow(context)
    refusal = shadow_gate(client, limit)(context)
    if as_json:
        _echo_json({**found, "refusal": refusal})
    else:
        from rich.table import Table

        from migrate.cli import out as console

        table = Table("route", "same", "different", "ignored", "candidate error",
                      "dropped")
        for route, counts in sorted(found["routes"].items()):
            table.add_row(route, *(str(counts[k]) for k in (
                "same", "different", "ignored", "candidate_error", "dropped")))
        console.print(table)
        for sample in found["samples"][-5:]:
            console.print(f"  {sample['request']}: {', '.join(sample['differences'])}")
        if refusal:
            console.print(refusal)
    if refusal:
        sys.exit(1)


@click.command("slo")
@click.argument("context")
@click.option("--max-error-rate", help="e.g. 1% or 0.01")
@click.option("--max-p99", help="e.g. 500ms or 0.5s")
@click.option("--window", help="e.g. 30s or 1m")
@click.option("--min-requests", type=int,
              help="fewer requests than this in the window judge nothing")
@click.option("--off", is_flag=True, help="remove the context's SLO")
@click.option("--reason", default="", callback=ledger_text,
              help="why, for the ledger")
@click.option("--json", "as_json", is_flag=True)
def slo_command(context: str, max_error_rate: str | None, max_p99: str | None,
                window: str | None, min_requests: int | None, off: bool,
                reason: str, as_json: bool) -> None:
    """Set (or show) the SLO the router holds CONTEXT's service to.

    On a breach the router sets the context's read weight to 0 at once."""
    from migrate.router.rollout import parse_duration
    from migrate.router.slo import Slo

    given = [name for name, value in (
        ("--max-error-rate", max_error_rate), ("--max-p99", max_p99),
        ("--window", window), ("--min-requests", min_requests),
    ) if value is not None]
    if off and given:
        raise click.UsageError(
            f"--off removes the SLO; it takes no {', '.join(given)}"
        )

    store = _store()
    store.phase(context)  # refuses an unknown context, naming the known ones
    slo = store.status()[context].slo
    if off:
        store.set_slo(context, None, "migrate slo", reason or "operator")
        slo = None
    elif given:
        base = slo or Slo()
        slo = Slo(
            parse_rate(max_error_rate) if max_error_rate else base.max_error_rate,
            parse_duration(max_p99) * 1000 if max_p99 else base.max_p99_ms,
            parse_duration(window) if window else base.window_seconds,
            min_requests if min_requests is not None else base.min_requests,
        )
        store.set_slo(context, slo, "migrate slo", reason or "operator")

    verdict = _verdict(store, context) if slo is not None else None
    if as_json:
        _echo_json({
            "context": context,
            "slo": dataclasses.asdict(slo) if slo else None,
            "verdict": verdict,
        })
        return

    if slo is None:
        click.echo(f"{context} has no SLO; the router never rolls it back.")
        return

    click.echo(f"{context} SLO: {slo.text()}.")
    if verdict is not None:
        click.echo(f"Now: {verdict['verdict']}: {verdict['reason']}.")


def parse_rate(text: str, what: str = "error rate") -> float:
    """`"1%"` or `"0.01"` -> 0.01; a share from 0 to 1."""
    from migrate.router.errors import InvalidSetting

    try:
        stripped = text.strip()
        rate = (float(stripped[:-1]) / 100 if stripped.endswith("%")
                else float(stripped))
    except ValueError:
        raise InvalidSetting(None, what, text, "a rate is like 1% or 0.01") from None

    if not 0 <= rate <= 1:
        raise InvalidSetting(None, what, text, "a rate runs from 0 to 100%")

    return rate


def _verdict(store: Any, context: str) -> dict[str, Any] | None:
    from migrate.router.admin import AdminClient
    from migrate.router.errors import AdminUnavailable

    try:
        found: dict[str, Any] = AdminClient.for_state(store.path).get(
            f"/admin/slo/{context}"
        )
    except AdminUnavailable:
        return None
    return found


@click.command("override-secret")
@click.option("--off", is_flag=True, help="remove the secret: no override works")
@click.option("--reason", default="", callback=ledger_text,
              help="why, for the ledger")
@click.option("--json", "as_json", is_flag=True,
              help="print {\"secret\": ...} (null with --off)")
def override_secret_command(off: bool, reason: str, as_json: bool) -> None:
    """Make a new secret that lets testers force a side; prints it once.

    A read carrying `X-Migrate-Side: service:<secret>` (or the cookie
    `migrate_side=service:<secret>`) goes to the service whatever the
    weight; `monolith:<secret>` to the monolith. Only its hash is kept."""
    store = _store()
    secret = None if off else secrets.token_urlsafe(24)
    store.set_override_secret(secret, "migrate override-secret",
                              reason or "operator")
    if as_json:
        _echo_json({"secret": secret})
    elif secret is None:
        click.echo("No override secret: overrides are ignored.")
    else:
        click.echo(secret)


@click.group("rollout")
def rollout_group() -> None:
    """Pause, resume or stop a progressive shift (`migrate shift --steps`)."""


def _rollout_action(action: str) -> click.Command:
    @click.command(action)
    @click.argument("context")
    @click.option("--reason", default="", callback=ledger_text,
                  help="why, recorded with the rollout")
    @click.option("--json", "as_json", is_flag=True,
                  help="print the rollout as it is now")
    def command(context: str, reason: str, as_json: bool) -> None:
        from migrate.router import rollout
        from migrate.router.errors import InvalidSetting

        store = _store()
        store.phase(context)  # refuses an unknown context, naming the known ones
        done = getattr(rollout, f"{action}_rollout")(store, context, reason)
        current = store.rollout(context)
        if not done:
            state = current.state if current else "none"
            raise InvalidSetting(context, "rollout", state,
                                 f"there is no rollout to {action}")
        if as_json:
            _echo_json({"context": context, "action": action,
                        "rollout": dataclasses.asdict(current) if current else None})
            return
        click.echo(f"{context}: rollout {action}{'d' if action != 'stop' else 'ped'}.")

    command.__doc__ = f"{action.capitalize()} CONTEXT's rollout."
    return command


for _action in ("pause", "resume", "stop"):
    rollout_group.add_command(_rollout_action(_action))

@click.command("dashboard")
@click.option("--json", "as_json", is_flag=True)
def dashboard_command(as_json: bool) -> None:
    """Say where the running router's dashboard is, and how to log in.

    Exits 1 when no router answers there (start one with `migrate up`)."""
    import requests

    from migrate.router.admin import AdminClient, admin_file
    from migrate.router.errors import AdminUnavailable
    from migrate.settings import Settings

    state = Settings.from_env().state_path
    url = AdminClient.for_state(state).url + "/dashboard"
    try:
        requests.get(url, timeout=5).raise_for_status()
    except requests.RequestException as error:
        raise AdminUnavailable(url, f"no answer ({error.__class__.__name__}); is "
                               "the router running (`migrate up`)?") from None

    token_file = str(admin_file(state))
    if as_json:
        _echo_json({"url": url, "token_file": token_file})
        return

    click.echo(f"The dashboard: {url}")
    click.echo(f"Log in with the router's admin token: \"token\" in {token_file}, "
               "or MIGRATE_ROUTER_TOKEN if the router was started with one.")


commands: list[click.Command] = [
    bench, shadow_command, diffs_command, slo_command, override_secret_command,
    rollout_group, dashboard_command,
]
