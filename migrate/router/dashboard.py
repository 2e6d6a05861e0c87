"""The migration dashboard: a page on the router's admin listener to watch
a migration and steer it.

Page technology: HTML rendered on the server from Jinja2 templates (already
a dependency; escapes by default), with a few lines of plain JavaScript that
swap in the re-rendered tables every two seconds and send the buttons'
actions: one renderer, no build step, nothing fetched from elsewhere.

    GET  /dashboard                       the page, or the login form
    POST /dashboard/login                 form field `token`: the admin token
    POST /dashboard/logout                form field `csrf`
    GET  /dashboard/live                  the tables alone (HTML), for polling
    GET  /dashboard/data                  what the tables show, as JSON
    POST /dashboard/contexts/<context>/<action>   shift, pause, resume,
                                          rollback; JSON {"weight"?, "reason"}
    GET  /dashboard/static/<file>         the script and the style sheet

Security. The admin token is what opens the dashboard: the login form takes
it and answers with a session cookie (`HttpOnly`, `SameSite=Strict`, path
`/`), random and kept in this process only, so a restart logs everyone
out. Every session has its own CSRF token, put in the page; an action is a
POST that needs, in this order, the session cookie (else 401
`unauthorized`), an `Origin` (or, lacking one, a `Referer`) of this very
listener (else 403 `cross_origin`), and the session's CSRF token in
`X-CSRF-Token` (else 403 `csrf_failed`); a refused action changes nothing.
Every request must name this listener in its Host (else 403 `wrong_host`),
so a page on another name that resolves to loopback cannot read the
dashboard. Answers forbid framing and carry a strict content security
policy (scripts and styles from this listener only). The cookie is not
`Secure`: the listener speaks plain HTTP on loopback. API clients keep
`Authorization: Bearer` on `/admin/*` (see `admin`).

Each action goes through `steering`, like `migrate shift` and `migrate
rollout`, with actor "dashboard" and the reason typed on the page, so it
reaches the ledger; raising a weight asks the contracts gate first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from migrate.router import bodies, steering
from migrate.router.errors import InvalidWeight, refusal_of
from migrate.router.http1 import Answer, Request
from migrate.router.overview import Overview
from migrate.router.proxy import ROUTER, Router, cookie, own_answer
from migrate.router.state import PHASES

log = logging.getLogger(__name__)

ACTOR = "dashboard"
COOKIE = "migrate_dashboard"
CSRF_HEADER = b"x-csrf-token"
SESSION_IDLE_SECONDS = 8 * 3600.0
MAX_SESSIONS = 64
POLL_SECONDS = 2
ACTIONS = ("shift", "pause", "resume", "rollback")
# The page's form sends both fields whatever the button; only a shift
# reads the weight, and `_weight` judges it.
_BODY = {
    "weight": bodies.Field("weight is a whole percent 0-100", kind=None),
    "reason": bodies.text("reason"),
}

_HERE = Path(__file__).parent
_STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; "
    b"connect-src 'self'; img-src 'self'; form-action 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'"
)
_GUARDS = [
    (b"Content-Security-Policy", _POLICY),
    (b"X-Frame-Options", b"DENY"),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Referrer-Policy", b"same-origin"),
    (b"Cache-Control", b"no-store"),
    (b"X-Migrate-Backend", ROUTER.encode()),
]


@dataclasses.dataclass
class Session:
    csrf: str
    seen: float


class Sessions:
    """Logged-in browsers, by the random id their cookie carries."""

    def __init__(self, idle: float = SESSION_IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.idle = idle
        self._clock = clock
        self._open: dict[str, Session] = {}

    def open(self) -> tuple[str, Session]:
        if len(self._open) >= MAX_SESSIONS:
            oldest = min(self._open, key=lambda key: self._open[key].seen)
            del self._open[oldest]
        key = secrets.token_urlsafe(32)
        session = self._open[key] = Session(secrets.token_urlsafe(32), self._clock())
        return key, session

    def find(self, key: str | None) -> Session | None:
        if not key:
            return None

        session = self._open.get(key)
        now = self._clock()
        if session is None or now - session.seen > self.idle:
            self._open.pop(key, None)
            return None

        session.seen = now
        return session

    def close(self, key: str | None) -> None:
        if key:
            self._open.pop(key, None)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


class Dashboard:
    """Answers the dashboard's requests for one router."""

    def __init__(self, router: Router, token: bytes, overview: Overview,
                 gate: steering.Gate, sessions: Sessions | None = None):
        self.router = router
        self._token = token
        self.overview = overview
        self.gate = gate
        self.sessions = sessions or Sessions()
        self._hosts: set[str] = set()
        self._any_host_on: int | None = None
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._templates.filters["ms"] = _milliseconds
        self._templates.filters["share"] = _share

    def listening_on(self, host: str, port: int) -> None:
        """The listener's address: the only Host and Origin accepted."""
        if host in ("0.0.0.0", "::", ""):
            self._any_host_on = port
            return

        self._hosts = {f"{host}:{port}"}
        if host in ("127.0.0.1", "::1", "localhost"):
            self._hosts |= {f"127.0.0.1:{port}", f"localhost:{port}",
                            f"[::1]:{port}"}

    @staticmethod
    def serves(path: str) -> bool:
        return (path in ("/", "/favicon.ico", "/dashboard")
                or path.startswith("/dashboard/"))

    async def handle(self, request: Request) -> Answer:
        try:
            self._check_host(request)
            return await self._route(request)
        except _Refused as refused:
            log.info("dashboard refused %s %s from %s: %s", request.method,
                     request.path, request.client, refused.code)
            if request.method == "POST" and request.path == "/dashboard/login":
                return self._login_page(refused.status, str(refused), refused.code)
            return _json(refused.status, {"error": refused.code,
                                          "message": str(refused)})

    async def _route(self, request: Request) -> Answer:
        method, path = request.method, request.path
        if method == "GET" and path.startswith("/dashboard/static/"):
            return _static(path.removeprefix("/dashboard/static/"))

        if method == "GET" and path in ("/", "/dashboard/login"):
            return _redirect("/dashboard")

        if method == "GET" and path == "/favicon.ico":
            return Answer(204, list(_GUARDS), None, bodiless=True, backend=ROUTER)

        if method == "POST" and path == "/dashboard/login":
            return self._login(request)

        key = cookie(request.header(b"cookie"), COOKIE)
        session = self.sessions.find(key)
        if method == "GET" and path == "/dashboard":
            if session is None:
                return self._login_page(200)
            return await self._page(session)

        if session is None:
            raise _Refused(401, "unauthorized",
                           "log in with the router's admin token first")

        if method == "GET" and path == "/dashboard/live":
            return self._html(200, "live.html.j2", await self.overview.gather())

        if method == "GET" and path == "/dashboard/data":
            return _json(200, await self.overview.gather())

        if method == "POST" and path == "/dashboard/logout":
            self._check_origin(request)
            given = _form(request).get("csrf", "")
            self._check_csrf(session, given)
            self.sessions.close(key)
            return _redirect("/dashboard", clear=True)

        parts = [p for p in path.split("/") if p]
        if (method == "POST" and len(parts) == 4 and parts[:2] == ["dashboard",
                                                                   "contexts"]):
            self._check_origin(request)
            given = (request.header(CSRF_HEADER) or b"").decode("latin-1")
            self._check_csrf(session, given)
            return await self._act(request, parts[2], parts[3])

        raise _Refused(404, "not_found", f"no dashboard call {method} {path}")

    # Logging in --------------------------------------------------------

    def _login(self, request: Request) -> Answer:
        self._check_origin(request)
        given = _form(request).get("token", "").strip().encode()
        if not given or not hmac.compare_digest(given, self._token):
            raise _Refused(401, "unauthorized",
                           "that is not the router's admin token")

        key, _ = self.sessions.open()
        log.info("dashboard session opened from %s", request.client)
        return _redirect("/dashboard", session=key)

    # Guards ------------------------------------------------------------

    def _check_host(self, request: Request) -> None:
        host = (request.header(b"host") or b"").decode("latin-1").strip().lower()
        if self._allowed(host):
            return

        raise _Refused(403, "wrong_host",
                       f"Host {host!r} is not this dashboard's address")

    def _allowed(self, host: str) -> bool:
        if self._any_host_on is not None:
            return host.rpartition(":")[2] == str(self._any_host_on)

        return host in self._hosts

    def _check_origin(self, request: Request) -> None:
        origin = request.header(b"origin")
        if origin is None:
            referer = request.header(b"referer")
            if referer is None:
                raise _Refused(403, "cross_origin",
                               "a change needs an Origin or Referer header "
                               "from this dashboard")
            parsed = urllib.parse.urlsplit(referer.decode("latin-1"))
            origin = f"{parsed.scheme}://{parsed.netloc}".encode()

        text = origin.decode("latin-1").strip().lower()
        scheme, _, host = text.partition("://")
        if scheme != "http" or not self._allowed(host):
            raise _Refused(403, "cross_origin",
                           f"a change from {text!r} is refused: only this "
                           "dashboard's own page may make one")

        own = (request.header(b"host") or b"").decode("latin-1").strip().lower()
        if host != own:
            raise _Refused(403, "cross_origin",
                           f"a change from {text!r} is refused: only this "
                           "dashboard's own page may make one")

    @staticmethod
    def _check_csrf(session: Session, given: str) -> None:
        if not given or not hmac.compare_digest(given.encode(),
                                                session.csrf.encode()):
            raise _Refused(403, "csrf_failed",
                           "the action lacks this session's CSRF token; reload "
                           "the dashboard")

    # Actions -----------------------------------------------------------

    async def _act(self, request: Request, context: str, action: str) -> Answer:
        if action not in ACTIONS:
            raise _Refused(404, "not_found",
                           f"no action {action!r}; the actions are "
                           f"{', '.join(ACTIONS)}")

        store = self.router.store
        try:
            body = bodies.read(request.body, _BODY)
            reason = (body["reason"] or "").strip() or "from the dashboard"
            if action == "shift":
                weight = _weight(context, body["weight"])
                revision = await asyncio.to_thread(
                    steering.shift_reads, store, context, weight, ACTOR, reason,
                    gate=self.gate,
                )
                done = f"{context}: {weight} % of reads now go to its service"
            elif action == "pause":
                revision = await asyncio.to_thread(
                    steering.pause, store, context, ACTOR, reason)
                done = f"{context}: rollout paused"
            elif action == "resume":
                revision = await asyncio.to_thread(
                    steering.resume, store, context, ACTOR, reason)
                done = f"{context}: rollout resumed"
            else:
                revision = await asyncio.to_thread(
                    steering.roll_back, store, context, ACTOR, reason)
                done = (f"{context}: every read back on the monolith "
                        "(writes stay with their writer)")
        except Exception as error:
            refused = refusal_of(error)
            if refused is None:
                raise
            status, code = refused
            raise _Refused(status, code, str(error)) from None
        finally:
            self.overview.forget()

        await self.router.refresh()
        return _json(200, {"ok": True, "message": done, "revision": revision})

    # Pages -------------------------------------------------------------

    async def _page(self, session: Session) -> Answer:
        overview = await self.overview.gather()
        return self._html(200, "page.html.j2", overview, csrf=session.csrf)

    def _login_page(self, status: int, problem: str = "", code: str = "") -> Answer:
        return self._html(status, "login.html.j2", {}, problem=problem, code=code)

    def _html(self, status: int, name: str, overview: dict[str, Any],
              **extra: Any) -> Answer:
        page = self._templates.get_template(name).render(
            o=overview, phases=PHASES, poll_seconds=POLL_SECONDS, **extra
        )
        return Answer(status, [(b"Content-Type", b"text/html; charset=utf-8"),
                               *_GUARDS], page.encode(), backend=ROUTER)


def _weight(context: str, value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())

    if isinstance(value, int) and not isinstance(value, bool):
        return value

    raise InvalidWeight(context, value)


def _form(request: Request) -> dict[str, str]:
    fields = urllib.parse.parse_qs((request.body or b"").decode("utf-8", "replace"))
    return {name: values[-1] for name, values in fields.items()}


def _json(status: int, body: dict[str, Any]) -> Answer:
    answer = own_answer(status, body)
    answer.headers = [*answer.headers[:1], *_GUARDS]
    return answer


def _redirect(where: str, *, session: str | None = None,
              clear: bool = False) -> Answer:
    headers = [(b"Location", where.encode()), *_GUARDS]
    if session is not None:
        headers.append((b"Set-Cookie", (
            f"{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/"
        ).encode()))
    if clear:
        headers.append((b"Set-Cookie", (
            f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        ).encode()))
    return Answer(303, headers, b"", backend=ROUTER)


def _static(name: str) -> Answer:
    kind = _STATIC.get(name)
    if kind is None:
        return _json(404, {"error": "not_found", "message": f"no file {name!r}"})

    body = (_HERE / "static" / name).read_bytes()
    return Answer(200, [(b"Content-Type", kind.encode()), *_GUARDS], body,
                  backend=ROUTER)


def _milliseconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"≤ {value:.1f} ms"
    return f"≤ {value:.0f} ms"


def _share(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}"
