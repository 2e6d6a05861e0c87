"""The router's admin API, for the CLI and a dashboard; and its client.

A separate listener, bound to 127.0.0.1 unless the operator says
otherwise, so the routed port never exposes it. Every call carries
`Authorization: Bearer <token>`; a missing or wrong token gets 401 and
nothing else. The token comes from `MIGRATE_ROUTER_TOKEN` or, failing
that, is made at start; either way the router writes the admin URL and
token to `<state folder>/router-admin.json` (readable by its owner only),
which is how the CLI on the same machine finds them.

    GET  /admin/status                     the table: weights, writers, shadow
    GET  /admin/metrics                    counters, breakers, SLO verdicts
    GET  /metrics                          the same, for Prometheus
    GET  /admin/slo/<context>              the SLO's verdict right now
    GET  /admin/shadow/<context>           shadow counts per route, samples
    GET  /admin/overview                   what the dashboard shows, as JSON
    POST /admin/contexts/<context>/weight  {"weight", "route"?, "actor"?,
                                            "reason"?}
    POST /admin/contexts/<context>/rollback  {"actor"?, "reason"?}
    POST /admin/contexts/<context>/rollout   {"action": pause|resume|stop,
                                              "actor"?, "reason"?}
    POST /admin/refresh                    read the state store now

A change's body is a JSON object of the fields listed, and nothing else
(`bodies`); actor and reason are text of at most 500 characters. A body
that breaks that is refused with 400 `bad_request` naming the field, and
a context the router does not know with 404 `unknown_context`, on every
call that names one.

Changes made here go through `steering`, like the CLI's, so they reach
the ledger and every router; raising a weight asks the contracts gate
first, as `migrate shift` does (409 `gate_refused` when it says no). The
gate, and the dashboard's facts, read the system's settings from this
process's environment (`migrate up` passes them on); a router whose state
file is not the system's cannot ask the gate, and refuses every raise.

The same listener serves the dashboard (`dashboard`), which takes the
token once at its login form and then works by session cookie.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

import requests

from migrate.router import bodies, steering
from migrate.router.bodies import Field
from migrate.router.errors import AdminUnavailable, UnknownContext, refusal_of
from migrate.router.http1 import Answer, Request
from migrate.router.metrics import RouterMetrics
from migrate.router.proxy import Router, own_answer
from migrate.router.slo import Verdict

TOKEN_VARIABLE = "MIGRATE_ROUTER_TOKEN"


def admin_file(state_path: str | os.PathLike[str]) -> Path:
    """Where the router writes its admin URL and token, beside its state."""
    return Path(state_path).with_name("router-admin.json")


def token_from_env() -> str:
    """The configured admin token, or a fresh random one."""
    return os.environ.get(TOKEN_VARIABLE) or secrets.token_urlsafe(32)


def write_admin_file(
    state_path: str | os.PathLike[str], url: str, token: str
) -> Path:
    path = admin_file(state_path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"url": url, "token": token, "pid": os.getpid()}, file)
    return path


class AdminApi:
    """Answers the admin API's (and the dashboard's) requests for one router."""

    def __init__(self, router: Router, token: str):
        from migrate.router.dashboard import Dashboard
        from migrate.router.overview import Overview, system_settings

        self.router = router
        self._token = token.encode()
        self.metrics = RouterMetrics(router)
        settings, unknown = system_settings(router.store.path)
        self.gate = steering.raise_gate(settings, unknown)
        self.overview = Overview(router, settings, unknown)
        self.dashboard = Dashboard(router, self._token, self.overview, self.gate)

    def start(self) -> None:
        """Start what runs beside the calls: the dashboard's rates timer."""
        self.overview.start()

    async def stop(self) -> None:
        await self.overview.stop()

    def listening_on(self, host: str, port: int) -> None:
        self.dashboard.listening_on(host, port)

    async def handle(self, request: Request) -> Answer:
        if self.dashboard.serves(request.path):
            return await self.dashboard.handle(request)

        given = request.header(b"authorization") or b""
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(
            token.strip(), self._token
        ):
            return own_answer(401, {
                "error": "unauthorized",
                "message": "the admin API needs 'Authorization: Bearer <token>' "
                           "with the router's admin token",
            })

        parts = [p for p in request.path.split("/") if p]
        try:
            return await self._route(request, parts)
        except Exception as error:
            refused = refusal_of(error)
            if refused is None:
                raise
            status, code = refused
            return own_answer(status, {"error": code, "message": str(error)})

    async def _route(self, request: Request, parts: list[str]) -> Answer:
        router = self.router
        method = request.method
        if method == "GET" and parts == ["admin", "status"]:
            return own_answer(200, _status(router))

        if method == "GET" and parts == ["admin", "metrics"]:
            return own_answer(200, router.snapshot())

        if method == "GET" and parts == ["metrics"]:
            return self.metrics.answer()

        if method == "GET" and len(parts) == 3 and parts[:2] == ["admin", "slo"]:
            await self._known(parts[2])
            verdict = router.verdict(parts[2])
            if verdict is None:
                return own_answer(404, {
                    "error": "no_slo",
                    "message": f"{parts[2]} has no SLO; set one with "
                               f"`migrate slo {parts[2]}`",
                })
            return own_answer(200, verdict.as_json())

        if method == "GET" and len(parts) == 3 and parts[:2] == ["admin", "shadow"]:
            await self._known(parts[2])
            return own_answer(200, shadow_results(router, parts[2]))

        if method == "GET" and parts == ["admin", "overview"]:
            return own_answer(200, await self.overview.gather())

        if method == "POST" and parts == ["admin", "refresh"]:
            bodies.read(request.body, {})
            await router.refresh()
            return own_answer(200, {"revision": router.current().revision})

        if (
            method == "POST" and len(parts) == 4
            and parts[:2] == ["admin", "contexts"]
            and parts[3] in ("weight", "rollback", "rollout")
        ):
            # The context first: a body's fields are judged for a context
            # that exists.
            await self._known(parts[2])
            body = bodies.read(request.body, _BODIES[parts[3]])
            revision = await self._change(parts[2], parts[3], body)
            await router.refresh()
            return own_answer(200, {"revision": revision})

        return own_answer(404, {
            "error": "not_found",
            "message": f"no admin call {method} {request.path}",
        })

    async def _known(self, context: str) -> None:
        """Refuse a context the router does not route, as a change would.
        The table may be a poll behind the store, so it is read again
        before saying no."""
        if context in self.router.current().contexts:
            return

        await self.router.refresh()
        known = self.router.current().contexts
        if context not in known:
            raise UnknownContext(context, known)

    async def _change(self, context: str, call: str, body: dict[str, Any]) -> int:
        actor = body["actor"] or "admin api"
        reason = body["reason"] or ""
        store = self.router.store
        if call == "weight":
            return await asyncio.to_thread(
                steering.shift_reads, store, context, body["weight"], actor, reason,
                gate=self.gate, route=body["route"],
            )

        if call == "rollback":
            return await asyncio.to_thread(
                steering.roll_back, store, context, actor, reason or "rollback"
            )

        action = body["action"]
        return await asyncio.to_thread(_MOVES[action], store, context, actor,
                                       reason or action)


_MOVES = {"pause": steering.pause, "resume": steering.resume, "stop": steering.stop}

# The fields each change takes; `bodies.read` refuses anything else.
_WHO = {"actor": bodies.text("actor"), "reason": bodies.text("reason")}
_BODIES: dict[str, dict[str, Field]] = {
    "weight": {
        "weight": Field("weight is a whole percent 0-100", kind=None,
                        required=True),
        "route": Field("route is text naming a read route of the context, "
                       "as 'GET /invoices/<int:invoice_id>'"),
        **_WHO,
    },
    "rollback": dict(_WHO),
    "rollout": {
        "action": Field("action is pause, resume or stop", required=True,
                        choices=tuple(_MOVES)),
        **_WHO,
    },
}


def _status(router: Router) -> dict[str, Any]:
    table = router.current()
    return {
        "revision": table.revision,
        "backends": dict(table.backends),
        "contexts": {
            name: {
                "service": state.service,
                "read_weight": state.read_weight,
                "route_weights": {
                    r.name: table.route_weights[(r.method, r.rule)]
                    for r in table.routes
                    if r.context == name and (r.method, r.rule) in table.route_weights
                },
                "writer": state.writer,
                "writes_held": state.writes_held,
                "keyless_side": state.keyless_side,
                "shadow": state.shadow.as_json(),
                "slo": dataclasses.asdict(state.slo) if state.slo else None,
            }
            for name, state in sorted(table.contexts.items())
        },
    }


def shadow_results(router: Router, context: str) -> dict[str, Any]:
    """Shadow counts per route of the context, their totals, and samples."""
    table = router.current()
    names = {r.name for r in table.routes if r.context == context}
    routes = {n: c for n, c in router.stats.shadow.items() if n in names}
    totals = {
        outcome: sum(counts[outcome] for counts in routes.values())
        for outcome in ("same", "different", "ignored", "candidate_error",
                        "dropped", "skipped")
    }
    return {
        "context": context,
        "routes": routes,
        "totals": totals,
        "samples": [s for s in router.stats.shadow_samples if s["route"] in names],
    }


class AdminClient:
    """The admin API over HTTP, for the CLI and rollouts."""

    def __init__(self, url: str, token: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout

    @classmethod
    def for_state(cls, state_path: str | os.PathLike[str]) -> AdminClient:
        """The client of the router that serves this state file."""
        path = admin_file(state_path)
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise AdminUnavailable(
                str(path), f"cannot read the router's admin file ({error}); is "
                "the router running (`migrate up`)?"
            ) from None

        return cls(found["url"], os.environ.get(TOKEN_VARIABLE) or found["token"])

    def get(self, path: str) -> dict[str, Any]:
        return self._call("GET", path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", path, body or {})

    def verdict(self, context: str) -> Verdict:
        """The SLO verdict on the context's service right now."""
        found = self.get(f"/admin/slo/{context}")
        return Verdict(found["verdict"], found["requests"], found["failures"],
                       found["p99_ms"], found["reason"])

    def shadow(self, context: str) -> dict[str, Any]:
        return self.get(f"/admin/shadow/{context}")

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        where = self.url + path
        try:
            reply = requests.request(
                method, where, json=body, timeout=self.timeout,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except requests.RequestException as error:
            raise AdminUnavailable(where, f"no answer ({error.__class__.__name__})")\
                from None

        if reply.status_code >= 400:
            try:
                message = reply.json().get("message", reply.text)
            except ValueError:
                message = reply.text
            raise AdminUnavailable(where, f"{reply.status_code}: {message}")

        found: dict[str, Any] = reply.json()
        return found
