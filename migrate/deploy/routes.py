"""The router's table at scale: an nginx configuration, or ALB listener rules.

`plan_of(store)` reads the routing state (backends; per context its
service, read weight, each route's own weight, salt, where keyless reads
go, writer, held writes, shadow share, routes); `nginx(plan)` and
`alb(plan)` compile it.

nginx reproduces the router request for request:

- one `map` over "$request_method $uri" holds every route as a regex, in the
  router's order of specificity, so the first match is the route the router
  picks for that method (a GET route also takes HEAD); a bucket key in the
  path is captured by name, one in a header or cookie is read from
  `$http_<name>` or `$cookie_<name>`;
- `split_clients "<salt>${key}"` per salt, weight and key gives the same
  sticky buckets (nginx's MurmurHash2 over salt and key, the service as the
  first part); a request without the key goes where keyless reads go, and
  so does a read of a route without a bucket key; weights 0 and 100 need no
  split (nginx cannot express those as one);
- writes go to the writer; while writes are held they get 503
  `writes_held` at once (a hold is a moment: compile again after the flip);
- a read sent to a service that fails (refused, 5xx) is sent to the
  monolith, through `error_page` on the read lanes only;
- a shadowed context has its share of reads (sampled on `$request_id`)
  mirrored to the side that did not answer, whatever picked it: a weight of
  0 or 100, the keyless side, or the `split_clients` bucket of the key at
  weights 1-99 (the mirror, a subrequest, shares the request's variables,
  so it reads the side the request was sent to and takes the other); nginx
  drops the copy's answer, so comparing answers stays the router's work;
- given the override secret (`nginx(plan, secret=...)`, which must be the
  one whose hash the state keeps), a read carrying `X-Migrate-Side:
  service:<secret>` (or the cookie `migrate_side`, when the header is
  absent) goes to the service, `monolith:<secret>` to the monolith, as
  through the router. The configuration then holds the secret itself
  (nginx matches the header's value; it has no SHA-256 to match a hash
  with), so it is as secret as the file; without it overrides are ignored;
- `merge_slashes off`, the router's 10 MiB body limit and 10 s upstream
  timeouts, X-Forwarded-* headers, and `X-Migrate-Backend` naming who
  answered.

What nginx does not do that the router does: wait for held writes to be
released, send a write that a fenced writer refused to the new writer,
honour a tester's override unless given the secret (the state keeps only
its hash), count and log an override it ignores, compare shadow answers,
or mirror writes.

ALB can express the weights and little else: reads become a forward to the
service's and the monolith's target groups weighted W and 100 - W, with
cookie stickiness per client (not per key); `alb(plan).cannot` lists what
the rules lose, and the CLI prints it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from migrate.deploy.errors import RoutingInvalid
from migrate.router.proxy import OVERRIDE_COOKIE, OVERRIDE_HEADER
from migrate.router.state import MONOLITH, StateStore
from migrate.router.table import Route, compile_rule

KEY_VARIABLE = "migrate_key"
BODY_LIMIT = "10m"
UPSTREAM_TIMEOUT = "10s"
ALB_STICKINESS_SECONDS = 24 * 3600
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_UNSAFE_SALT = re.compile(r'[$"\\{};\s]')
_FIVE_HUNDREDS = "500 501 502 503 504 505 506 507 508 510 511"
_READS = ("GET", "HEAD", "OPTIONS")
SERVICE_SIDE = "service"
# What an override secret may hold to sit in an nginx string as it is.
_SECRET = re.compile(r"^[A-Za-z0-9_.~+/=-]+$")


@dataclasses.dataclass(frozen=True)
class ContextPlan:
    """How one context is routed: what the router's table says of it."""

    name: str
    service: str
    read_weight: int
    writer: str
    writes_held: bool
    salt: str
    routes: tuple[Route, ...]
    route_weights: Mapping[str, int] = dataclasses.field(default_factory=dict)
    keyless_side: str = MONOLITH
    shadow_percent: int = 0

    def weight_of(self, route: Route) -> int:
        """A route's own read weight, or else its context's."""
        return self.route_weights.get(route.name, self.read_weight)

    @property
    def keyless_backend(self) -> str:
        return self.service if self.keyless_side == "service" else MONOLITH


@dataclasses.dataclass(frozen=True)
class Plan:
    revision: int
    backends: Mapping[str, str]
    contexts: tuple[ContextPlan, ...]
    # The SHA-256 of the testers' override secret, when one is set.
    override_digest: str | None = dataclasses.field(default=None, repr=False)


def plan_of(store: StateStore) -> Plan:
    """The routing state as of one revision, as the compilers take it."""
    table = store.snapshot()
    contexts = []
    for name, state in sorted(table.contexts.items()):
        routes = tuple(r for r in table.routes if r.context == name)
        weights = {
            r.name: table.route_weights[(r.method, r.rule)]
            for r in routes
            if (r.method, r.rule) in table.route_weights
        }
        contexts.append(
            ContextPlan(
                name, state.service, state.read_weight, state.writer,
                state.writes_held, state.salt, routes, weights,
                state.keyless_side, state.shadow.percent,
            )
        )  # fmt: skip
    return Plan(table.revision, dict(table.backends), tuple(contexts),
                table.override_secret)


@dataclasses.dataclass(frozen=True)
class _Split:
    """One set of sticky buckets: a salt, a weight, where the key comes from,
    and where a request without the key goes."""

    context: str
    service: str
    salt: str
    weight: int
    key: str  # an nginx variable
    keyless: str


@dataclasses.dataclass(frozen=True)
class _Lane:
    """Where one route's requests of one method group go."""

    route: Route
    methods: tuple[str, ...]
    backend: str  # an upstream name or an nginx variable
    lane: str  # plain, read (monolith fallback), held, shadow_<context>
    shadow: str | None = None  # the shadowed context


@dataclasses.dataclass(frozen=True)
class _Override:
    """A read lane's side once a tester's override is heard: the context's
    service, the monolith, or else what weights and keys say."""

    service: str
    otherwise: str


def _lanes(
    plan: Plan, overrides: bool
) -> tuple[list[_Lane], list[_Split], list[_Override]]:
    contexts = {c.name: c for c in plan.contexts}
    lanes: list[_Lane] = []
    splits: list[_Split] = []
    overridden: list[_Override] = []
    routes = [r for c in plan.contexts for r in c.routes]
    routes.sort(key=lambda r: (compile_rule(r.rule).specificity, r.method))
    for route in routes:
        context = contexts[route.context]
        methods = ("GET", "HEAD") if route.method == "GET" else (route.method,)
        lane = _lane(route, methods, context, splits)
        if overrides and route.reads:
            lane = _overridable(lane, context, overridden)
        lanes.append(lane)
    return lanes, splits, overridden


def _lane(
    route: Route, methods: tuple[str, ...], context: ContextPlan, splits: list[_Split]
) -> _Lane:
    if not route.reads:
        if context.writes_held:
            return _Lane(route, methods, MONOLITH, "held")

        return _Lane(route, methods, context.writer, "plain")

    weight = context.weight_of(route)
    if weight >= 100:
        backend = context.service
    elif weight <= 0:
        backend = MONOLITH
    elif route.bucket_key is None:
        backend = context.keyless_backend
    else:
        split = _Split(
            context.name, context.service, context.salt, weight, _key(route),
            context.keyless_backend,
        )  # fmt: skip
        if split not in splits:
            splits.append(split)
        backend = f"$migrate_pick_{splits.index(split)}"

    if context.shadow_percent:
        return _Lane(route, methods, backend, f"shadow_{context.name}", context.name)

    return _Lane(route, methods, backend, "plain" if backend == MONOLITH else "read")


def _overridable(lane: _Lane, context: ContextPlan, found: list[_Override]) -> _Lane:
    """The lane with its side open to an override; a read the override sends
    to the service is answered by the monolith if the service fails, as any."""
    override = _Override(context.service, lane.backend)
    if override not in found:
        found.append(override)
    backend = f"$migrate_side_{found.index(override)}"
    kind = "read" if lane.lane == "plain" else lane.lane
    return dataclasses.replace(lane, backend=backend, lane=kind)


def _key(route: Route) -> str:
    """The nginx variable that holds a request's bucket key on this route."""
    source = route.key_source
    assert source is not None
    kind, name = source
    if kind == "param":
        return f"${KEY_VARIABLE}"

    if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or (kind == "cookie" and "-" in name):
        raise RoutingInvalid(
            route.bucket_key,
            f"route {route.name}: nginx reads header names of letters, digits, - "
            "and _, and cookie names without -",
        )

    if kind == "header":
        return "$http_" + name.lower().replace("-", "_")

    return f"$cookie_{name}"


def nginx(
    plan: Plan, listen: str = "127.0.0.1:8080", secret: str | None = None
) -> str:
    """A whole nginx.conf for the plan; paths are relative to nginx's prefix.
    With the override `secret`, testers' overrides are honoured."""
    _check_names(plan)
    if secret is not None:
        _check_secret(plan, secret)
    lanes, splits, overridden = _lanes(plan, overrides=secret is not None)
    out = [
        f"# The router's table at revision {plan.revision}, written by",
        "# `migrate deploy routes --nginx`. Regenerate it after every change",
        "# of weights, writers or routes; nginx -t checks it, nginx -s reload",
        "# applies it without dropping a connection.",
        "worker_processes auto;",
        "pid nginx.pid;",
        "",
        "events {",
        "    worker_connections 1024;",
        "}",
        "",
        "http {",
        "    access_log access.log;",
        "    client_body_temp_path client_body_temp;",
        "    proxy_temp_path proxy_temp;",
        "    fastcgi_temp_path fastcgi_temp;",
        "    uwsgi_temp_path uwsgi_temp;",
        "    scgi_temp_path scgi_temp;",
        "",
    ]
    for name, url in sorted(plan.backends.items()):
        out += [
            f"    upstream {name} {{",
            f"        server {_address(name, url)};",
            "        keepalive 32;",
            "    }",
        ]
    out += ["", '    map "$request_method $uri" $migrate_route {', "        default -;"]
    for number, lane in enumerate(lanes, start=1):
        out.append(f'        "{_regex(lane)}" r{number};')
    out.append("    }")
    for number, split in enumerate(splits):
        key = "${" + split.key[1:] + "}"
        out += [
            "",
            f'    split_clients "{split.salt}{key}" $migrate_split_{number} {{',
            f"        {split.weight}% {split.service};",
            f"        * {MONOLITH};",
            "    }",
            "",
            f"    map {split.key} $migrate_pick_{number} {{",
            f'        "" {split.keyless};',
            f"        default $migrate_split_{number};",
            "    }",
        ]
    if secret is not None:
        out += _override_maps(secret, overridden)
    for context in plan.contexts:
        if 0 < context.shadow_percent < 100:
            out += [
                "",
                '    split_clients "${request_id}" '
                f"$migrate_sample_{context.name} {{",
                f"        {context.shadow_percent}% on;",
                "        * off;",
                "    }",
            ]
        if context.shadow_percent:
            out += [
                "",
                "    # The side a shadowed read did not go to.",
                f"    map $migrate_backend $migrate_other_{context.name} {{",
                f"        {context.service} {MONOLITH};",
                f"        default {context.service};",
                "    }",
            ]
    out += _lane_map("migrate_backend", MONOLITH, lanes, lambda lane: lane.backend)
    out += _lane_map("migrate_lane", "plain", lanes, lambda lane: lane.lane)
    out += _server(plan, listen, lanes)
    out.append("}")
    return "\n".join(out) + "\n"


def _override_maps(secret: str, overridden: Sequence[_Override]) -> list[str]:
    """`$migrate_override`: the side a tester asked for with the secret, from
    the header, or from the cookie when there is no header (a header with
    another value is ignored, cookie and all, as the router does)."""
    granted = [
        f'        "{side}:{secret}" {side};' for side in (SERVICE_SIDE, MONOLITH)
    ]
    header = "$http_" + OVERRIDE_HEADER.lower().replace("-", "_")
    out = [
        "",
        f"    map $cookie_{OVERRIDE_COOKIE} $migrate_override_cookie {{",
        '        default "";',
        *granted,
        "    }",
        "",
        f"    map {header} $migrate_override {{",
        '        default "";',
        '        "" $migrate_override_cookie;',
        *granted,
        "    }",
    ]
    for number, override in enumerate(overridden):
        out += [
            "",
            f"    map $migrate_override $migrate_side_{number} {{",
            f"        {SERVICE_SIDE} {override.service};",
            f"        {MONOLITH} {MONOLITH};",
            f"        default {override.otherwise};",
            "    }",
        ]
    return out


def _check_secret(plan: Plan, secret: str) -> None:
    # The secret itself is never put in a message.
    if plan.override_digest is None:
        raise RoutingInvalid(
            "override secret",
            "the routing state has none; `migrate override-secret` makes one",
        )

    digest = hashlib.sha256(secret.encode()).hexdigest()
    if not hmac.compare_digest(digest, plan.override_digest):
        raise RoutingInvalid(
            "override secret",
            "it is not the one the routing state keeps the hash of; give the "
            "secret `migrate override-secret` printed",
        )

    if not _SECRET.match(secret):
        raise RoutingInvalid(
            "override secret",
            "nginx matches it as written only when it holds letters, digits and "
            "_ . ~ + / = -; make a new one with `migrate override-secret`",
        )


def _lane_map(
    variable: str, default: str, lanes: Sequence[_Lane], value: Any
) -> list[str]:
    lines = [
        "",
        f"    map $migrate_route ${variable} {{",
        f"        default {default};",
    ]
    lines += [
        f"        r{number} {value(lane)};"
        for number, lane in enumerate(lanes, start=1)
        if value(lane) != default
    ]
    return [*lines, "    }"]


def _server(plan: Plan, listen: str, lanes: Sequence[_Lane]) -> list[str]:
    held = json.dumps(
        {
            "error": "writes_held",
            "message": "writes to this context are held while its writer changes",
        }
    )
    health = json.dumps({"status": "ok", "revision": plan.revision})
    return [
        "",
        "    server {",
        f"        listen {listen};",
        "        merge_slashes off;",
        f"        client_max_body_size {BODY_LIMIT};",
        "        proxy_http_version 1.1;",
        "        proxy_redirect off;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Forwarded-Host $host;",
        f"        proxy_connect_timeout {UPSTREAM_TIMEOUT};",
        f"        proxy_read_timeout {UPSTREAM_TIMEOUT};",
        f"        proxy_send_timeout {UPSTREAM_TIMEOUT};",
        "",
        "        location / {",
        "            # Lanes other than plain continue in an internal location;",
        "            # the maps keep the values they had for the request as it",
        "            # came. (In the server block these ifs would also catch a",
        "            # mirror's subrequest, which shares the request's values.)",
        "            if ($migrate_lane = read) {",
        "                rewrite ^ /_migrate_lane/read last;",
        "            }",
        "            if ($migrate_lane = held) {",
        "                rewrite ^ /_migrate_lane/held last;",
        "            }",
        *_shadow_lanes(lanes),
        "            proxy_pass http://$migrate_backend$request_uri;",
        "            add_header X-Migrate-Backend $migrate_backend always;",
        "        }",
        "",
        "        location = /_migrate_lane/read {",
        "            internal;",
        "            proxy_pass http://$migrate_backend$request_uri;",
        "            proxy_intercept_errors on;",
        f"            error_page {_FIVE_HUNDREDS} = @migrate_monolith;",
        "            add_header X-Migrate-Backend $migrate_backend always;",
        "        }",
        "",
        "        location @migrate_monolith {",
        f"            proxy_pass http://{MONOLITH}$request_uri;",
        f"            add_header X-Migrate-Backend {MONOLITH} always;",
        "        }",
        "",
        "        location = /_migrate_lane/held {",
        "            internal;",
        "            default_type application/json;",
        "            add_header X-Migrate-Backend router always;",
        f"            return 503 '{held}';",
        "        }",
        "",
        *_shadow_locations(plan, lanes),
        "        location = /_router/health {",
        "            default_type application/json;",
        "            add_header X-Migrate-Backend router always;",
        f"            return 200 '{health}';",
        "        }",
        "    }",
    ]


def _shadowed(lanes: Sequence[_Lane]) -> list[str]:
    """Every shadowed context with a lane, once each."""
    return sorted({lane.shadow for lane in lanes if lane.shadow})


def _shadow_lanes(lanes: Sequence[_Lane]) -> list[str]:
    lines = []
    for name in _shadowed(lanes):
        lines += [
            f"            if ($migrate_lane = shadow_{name}) {{",
            f"                rewrite ^ /_migrate_lane/shadow/{name} last;",
            "            }",
        ]
    return lines


def _shadow_locations(plan: Plan, lanes: Sequence[_Lane]) -> list[str]:
    # The mirror is a subrequest: it sees its own URI, but shares the
    # request's variables, so `$migrate_backend` (and the bucket behind it)
    # is the side the request went to, and `$migrate_other_<context>` the
    # side it did not.
    contexts = {c.name: c for c in plan.contexts}
    lines = []
    for name in _shadowed(lanes):
        context = contexts[name]
        mirror = f"/_migrate_lane/mirror/{name}"
        lines += [
            f"        location = /_migrate_lane/shadow/{name} {{",
            "            internal;",
            f"            mirror {mirror};",
            "            mirror_request_body on;",
            "            proxy_pass http://$migrate_backend$request_uri;",
            "            proxy_intercept_errors on;",
            f"            error_page {_FIVE_HUNDREDS} = @migrate_monolith;",
            "            add_header X-Migrate-Backend $migrate_backend always;",
            "        }",
            "",
            f"        location = {mirror} {{",
            "            internal;",
        ]
        if context.shadow_percent < 100:
            lines += [
                f"            if ($migrate_sample_{name} = off) {{",
                "                return 204;",
                "            }",
            ]
        lines += [
            f"            proxy_pass http://$migrate_other_{name}$request_uri;",
            "        }",
            "",
        ]
    return lines


def _regex(lane: _Lane) -> str:
    """The route's regex over "METHOD path", with the bucket key named."""
    compiled = compile_rule(lane.route.rule)
    key = lane.route.bucket_key
    position = compiled.parameters.index(key) if key in compiled.parameters else -1
    path = _name_group(compiled.pattern.pattern, position)
    methods = "|".join(lane.methods)
    regex = f"~^(?:{methods}) {path}$"
    # nginx reads a backslash in a quoted string as an escape of the next
    # character, so every one is doubled.
    return regex.replace("\\", "\\\\").replace('"', '\\"')


def _name_group(pattern: str, keep: int) -> str:
    """Capture group number `keep` named after the key, the others plain."""
    out: list[str] = []
    group = 0
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue

        if char == "(" and not pattern.startswith("(?", index):
            out.append(f"(?<{KEY_VARIABLE}>" if group == keep else "(?:")
            group += 1
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _address(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.path not in ("", "/") or not parts.port:
        raise RoutingInvalid(
            url,
            f"backend {name}: nginx upstreams here are http://host:port, "
            "without a path",
        )

    return f"{parts.hostname}:{parts.port}"


def _check_names(plan: Plan) -> None:
    for name in [*plan.backends, *(c.name for c in plan.contexts)]:
        if not _NAME.match(name):
            raise RoutingInvalid(
                name, "nginx names (upstreams, variables) use letters, digits and _"
            )

    for context in plan.contexts:
        if _UNSAFE_SALT.search(context.salt):
            raise RoutingInvalid(
                context.salt,
                f'salt of {context.name}: an nginx split key cannot hold $, ", '
                "\\, braces, ; or spaces",
            )

        for backend in (context.service, context.writer, MONOLITH):
            if backend not in plan.backends:
                raise RoutingInvalid(
                    backend,
                    f"context {context.name} needs backend {backend}, which has "
                    f"no URL; backends: {', '.join(sorted(plan.backends))}",
                )


@dataclasses.dataclass(frozen=True)
class AlbRules:
    """ALB listener rules as a CloudFormation template, and what they lose."""

    document: dict[str, Any]
    cannot: tuple[str, ...]


def alb(plan: Plan) -> AlbRules:
    """Listener rules in the router's order; one target group per backend."""
    lanes, _, _ = _lanes(plan, overrides=False)
    contexts = {c.name: c for c in plan.contexts}
    parameters: dict[str, Any] = {
        "ListenerArn": {
            "Type": "String",
            "Description": "the ALB listener these rules belong to",
        }
    }
    for name in sorted(plan.backends):
        parameters[_target_group(name)] = {
            "Type": "String",
            "Description": f"ARN of the target group that serves {name}",
        }
    resources: dict[str, Any] = {}
    for priority, lane in enumerate(lanes, start=1):
        resources[f"Rule{priority:03d}"] = {
            "Type": "AWS::ElasticLoadBalancingV2::ListenerRule",
            "Properties": {
                "ListenerArn": {"Ref": "ListenerArn"},
                "Priority": priority,
                "Conditions": [
                    {
                        "Field": "path-pattern",
                        "PathPatternConfig": {"Values": [_path_pattern(lane.route)]},
                    },
                    {
                        "Field": "http-request-method",
                        "HttpRequestMethodConfig": {"Values": list(lane.methods)},
                    },
                ],
                "Actions": [_alb_action(lane, contexts[lane.route.context])],
            },
        }
    document = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"the router's table at revision {plan.revision} as ALB "
        "listener rules (weights only; see the notes)",
        "Parameters": parameters,
        "Resources": resources,
    }
    return AlbRules(document, _alb_losses(plan))


def _alb_action(lane: _Lane, context: ContextPlan) -> dict[str, Any]:
    if lane.lane == "held":
        return {
            "Type": "fixed-response",
            "FixedResponseConfig": {
                "StatusCode": "503",
                "ContentType": "application/json",
                "MessageBody": json.dumps({"error": "writes_held"}),
            },
        }

    if lane.backend.startswith("$"):
        weight = context.weight_of(lane.route)
        return {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {
                        "TargetGroupArn": {"Ref": _target_group(context.service)},
                        "Weight": weight,
                    },
                    {
                        "TargetGroupArn": {"Ref": _target_group(MONOLITH)},
                        "Weight": 100 - weight,
                    },
                ],
                "TargetGroupStickinessConfig": {
                    "Enabled": True,
                    "DurationSeconds": ALB_STICKINESS_SECONDS,
                },
            },
        }

    return {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": {"Ref": _target_group(lane.backend)}, "Weight": 1}
            ]
        },
    }


def _alb_losses(plan: Plan) -> tuple[str, ...]:
    losses = [
        "ALB stickiness is a cookie per client, not a hash of the bucket key: "
        "one customer on two devices can see both sides, and clients without "
        "the cookie are spread again by weight",
        "a read the service fails (refused, 5xx) is not sent to the monolith",
        "a write a fenced writer refuses is not sent again to the new writer; "
        "held writes get 503 at once instead of waiting for the flip",
        "path patterns match '*' across slashes and ignore converters "
        "(<int:...> matches any text), so a rule can take a path the router "
        "would leave to a more specific route or to the monolith",
        "ALB cannot mirror a request to the other side: shadow comparisons "
        "need the kit's router or nginx in front",
    ]
    for context in plan.contexts:
        if context.shadow_percent:
            losses.append(
                f"{context.name} is shadowed ({context.shadow_percent} %), and "
                "these rules mirror none of its requests"
            )
    return tuple(losses)


def _target_group(backend: str) -> str:
    return "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]", backend) if p) + (
        "TargetGroupArn"
    )


def _path_pattern(route: Route) -> str:
    compiled = compile_rule(route.rule)
    pattern = route.rule
    for name in compiled.parameters:
        pattern = re.sub(r"<(?:[A-Za-z_]\w*:)?" + name + ">", "*", pattern)
    return pattern
