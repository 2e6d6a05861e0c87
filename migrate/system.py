"""The whole system side by side on one machine: what runs, and how it starts.

`System.up` starts, in order and each only once: the SQS/SNS emulator (unless
AWS_ENDPOINT_URL points elsewhere), the trace collector, then creates topics, queues,
subscriptions and dead-letter queues through the API, then starts the
monolith, the router, the monolith's outbox relay, and for every extracted
context its service, the service's relay and the monolith's follower, then
for each context of the monolith that consumes an extracted context's
events a consumer of the service's side of them, and finally each side
effect's function under the local Lambda runtime and the metrics exporter.
Then it writes the Prometheus scrape targets of every process, the SLO
rules and a prometheus.yml (see `migrate.observe.targets`).
`System.down` stops them all, last started first.

Every process writes JSON lines (see `migrate.observe.logs`) to its log,
`<MIGRATE_HOME>/logs/<process>.log`: moto's server and Nameko through
small entry points of the kit that set the kit's logging up first.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path

from migrate import names
from migrate.extract.generate import Extraction, extraction_of
from migrate.manifest import Manifest
from migrate.manifest import load as load_manifest
from migrate.messaging.clients import sns_client, sqs_client
from migrate.messaging.topology import Queue, Resources, Subscription, Topic, Topology
from migrate.messaging.topology import ensure as ensure_topology
from migrate.processes import ProcessSpec, Supervisor
from migrate.router.state import MONOLITH, StateStore
from migrate.schema import upgrade
from migrate.settings import MANIFEST_VARIABLE, Settings

PYTHON = sys.executable
Progress = Callable[[str], None]


def topology(
    manifest: Manifest, extracted: list[str], visibility_timeout: int = 30
) -> Topology:
    app = manifest.name
    topics = [
        Topic(names.topic(app, name), fifo=context.fifo)
        for name, context in manifest.contexts.items()
    ]
    queues: list[Queue] = []
    subscriptions: list[Subscription] = []

    def subscribe(queue: str, context: str, policy: dict) -> None:
        # A queue is FIFO when the topic that feeds it is: SNS allows no other.
        fifo = manifest.context(context).fifo
        queues.append(Queue(queue, visibility_timeout=visibility_timeout, fifo=fifo))
        subscriptions.append(Subscription(names.topic(app, context), queue, policy))

    for name in extracted:
        context = manifest.context(name)
        # Each side follows the other's changes, never its own: no echo. The
        # monolith keeps no copy of a finished context.
        subscribe(
            names.follow_queue(app, name, "service"), name, {"origin": ["monolith"]}
        )
        if not context.finished:
            subscribe(
                names.follow_queue(app, name, "monolith"), name,
                {"origin": ["service"]},
            )
        consumed: dict[str, list[str]] = {}
        for event_type in context.event_handlers:
            consumed.setdefault(event_type.context, []).append(event_type.type_name())
        for source, types in sorted(consumed.items()):
            subscribe(
                names.consumer_queue(app, name, source),
                source,
                {"event_type": sorted(types)},
            )

    for source, consumer, types in monolith_consumers(manifest, extracted):
        # The service's side only: the monolith's own events reach its
        # consumers in-process.
        subscribe(
            names.monolith_consumer_queue(app, consumer, source),
            source,
            {"event_type": types, "origin": ["service"]},
        )

    for context in manifest.contexts.values():
        for effect in context.side_effects:
            subscribe(
                names.side_effect_queue(app, context.name, effect.name),
                context.name,
                {"event_type": [effect.on]},
            )

    return Topology(topics, queues, subscriptions)


def monolith_consumers(
    manifest: Manifest, extracted: list[str]
) -> list[tuple[str, str, list[str]]]:
    """(producer, consumer, event types) for each context of the monolith that
    consumes events of an extracted context."""
    found = []
    for source in extracted:
        for consumer in manifest.hosted.values():
            if consumer.name == source:
                continue

            types = sorted(
                t.type_name() for t in consumer.event_handlers if t.context == source
            )
            if types:
                found.append((source, consumer.name, types))
    return found


class System:
    def __init__(self, settings: Settings, manifest: Manifest | None = None):
        self.settings = settings
        self.manifest = manifest or load_manifest(settings.manifest_path)
        self.supervisor = Supervisor(settings.run_dir, settings.logs_dir)

    @property
    def state(self) -> StateStore:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        return StateStore(self.settings.state_path)

    def extractions(self) -> list[Extraction]:
        found = (
            extraction_of(name, self.settings.extracted_dir)
            for name in self.manifest.contexts
        )
        return [e for e in found if e is not None]

    def service_port(self, context: str) -> int:
        return self.settings.service_port(list(self.manifest.contexts).index(context))

    def service_url(self, context: str) -> str:
        return f"http://127.0.0.1:{self.service_port(context)}"

    def resources(self) -> Resources:
        extracted = [e.context for e in self.extractions()]
        endpoint = self.settings.endpoint_url
        return ensure_topology(
            topology(self.manifest, extracted, self.settings.visibility_timeout),
            sns_client(endpoint),
            sqs_client(endpoint),
        )

    def queues_of(self, context: str) -> list[str]:
        """The queues whose consumers belong to `context`, by declared name."""
        extracted = [e.context for e in self.extractions()]
        prefix = f"{self.manifest.name}-{context}-"
        declared = topology(self.manifest, extracted).queues
        return [q.name for q in declared if q.name.startswith(prefix)]

    def is_up(self) -> bool:
        return "router" in self.supervisor.running()

    def up(self, progress: Progress | None = None) -> list[str]:
        say = progress or (lambda step: None)
        settings = self.settings
        for folder in (settings.home, settings.mail_dir, settings.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        started: list[str] = []

        def start(spec: ProcessSpec) -> None:
            if self.supervisor.pid_of(spec.name) is None:
                say(f"starting {spec.name}")
                self.supervisor.start(spec)
                started.append(spec.name)

        try:
            self._start_all(start, say, started)
        except BaseException:
            # All or nothing: what this call started goes again, so a failed
            # `up` leaves no process behind (what ran before stays).
            for name in reversed(started):
                self.supervisor.stop(name)
            raise

        return started

    def _start_all(
        self, start: Callable[[ProcessSpec], None], say: Progress,
        started: list[str],
    ) -> None:
        settings = self.settings
        self._refuse_unbuilt_services()
        if settings.uses_emulator:
            start(
                ProcessSpec(
                    "emulator",
                    [
                        PYTHON,
                        "-m",
                        "migrate.messaging.emulator_server",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(settings.emulator_port),
                    ],
                    ready_url=f"{settings.endpoint_url}/",
                )
            )
        if settings.tracing:
            start(self._collector())
        say("creating topics, queues and subscriptions")
        resources = self.resources()
        say("migrating the monolith's database")
        upgrade(settings.monolith_url, manifest_path=self.manifest.path)
        self._route(resources)

        for spec in self._specs(resources):
            start(spec)

        from migrate.observe.targets import write_prometheus

        say("writing the Prometheus scrape targets")
        write_prometheus(self, wait_for=started)

    def _refuse_unbuilt_services(self) -> None:
        """An extraction whose database was never built here (another
        MIGRATE_HOME's extraction, a deleted database) would fail at start
        with a bare SQL error: say what is wrong before starting anything."""
        import sqlalchemy as sa

        from migrate.errors import ConfigurationError
        from migrate.kernel.sql import HOSTING, create_engine

        for extraction in self.extractions():
            url = self.settings.service_url(extraction.context)
            file = sa.make_url(url).database if url.startswith("sqlite") else None
            if file and not Path(file).exists():
                # Connecting would leave an empty file behind.
                built = False
            else:
                engine = create_engine(url)
                try:
                    built = sa.inspect(engine).has_table(HOSTING.name)
                finally:
                    engine.dispose()
            if not built:
                raise ConfigurationError(
                    f"{extraction.context} is extracted in {extraction.folder}, "
                    f"but its database {url} was never built: run `migrate "
                    f"extract {extraction.context} --force`, or point "
                    "MIGRATE_EXTRACTED at the extractions of this MIGRATE_HOME"
                )

    def down(self) -> list[str]:
        # The router first, so no request arrives at a host going away; the
        # emulator last, so consumers can still delete what they handled.
        return self.supervisor.stop_all(first=["router"], last=["emulator"])

    def _route(self, resources: Resources) -> None:
        state = self.state
        state.set_backend(MONOLITH, self.settings.monolith_http)
        for extraction in self.extractions():
            state.set_backend(extraction.context, self.service_url(extraction.context))

    def _collector(self) -> ProcessSpec:
        settings = self.settings
        return ProcessSpec(
            "collector",
            [
                PYTHON,
                "-m",
                "migrate.observe.collector",
                "--listen",
                settings.trace_address,
                "--store",
                str(settings.traces_path),
                "--http-port",
                str(settings.collector_http_port),
            ],
            ready_url=f"http://127.0.0.1:{settings.collector_http_port}/health",
        )

    def _telemetry(self) -> dict[str, str]:
        """What every process needs to trace itself into the collector and
        to say where its metrics are scraped."""
        settings = self.settings
        found = {
            "MIGRATE_TRACING": "on" if settings.tracing else "off",
            "AWS_XRAY_DAEMON_ADDRESS": settings.trace_address,
            "MIGRATE_METRICS_DIR": str(settings.metrics_dir),
        }
        for name in (
            "MIGRATE_TRACE_RATE", "MIGRATE_TRACE_PER_SECOND", "MIGRATE_METRICS_EMF",
            "MIGRATE_METRICS_EMF_SECONDS", "MIGRATE_METRICS_EMF_NAMESPACE",
        ):
            if name in settings.environ:
                found[name] = settings.environ[name]
        return found

    def _specs(self, resources: Resources) -> list[ProcessSpec]:
        # Every process reads the same manifest and imports the code it
        # describes (a copy of the project, another monolith), not whatever
        # happens to be installed.
        found = {
            **self._telemetry(),
            MANIFEST_VARIABLE: str(self.manifest.path),
            "PYTHONPATH": os.pathsep.join(
                [str(self.manifest.code_root)]
                + [p for p in [os.environ.get("PYTHONPATH")] if p]
            ),
        }
        return [
            dataclasses.replace(spec, env={**found, **spec.env})
            for spec in self._process_specs(resources)
        ]

    def _process_specs(self, resources: Resources) -> list[ProcessSpec]:
        settings = self.settings
        app = self.manifest.name
        endpoint = ["--endpoint", settings.endpoint_url]
        aws = (
            {"AWS_ENDPOINT_URL": settings.endpoint_url}
            if settings.uses_emulator
            else {}
        )
        specs = [
            ProcessSpec(
                "monolith",
                [
                    PYTHON,
                    "-m",
                    self.manifest.hosting.serve,
                    "--database",
                    settings.monolith_url,
                    "--port",
                    str(settings.monolith_port),
                    # The side effects run as the functions started below.
                    "--side-effects",
                    "functions",
                ],
                env={"MIGRATE_ROUTER_URL": settings.router_url},
                ready_url=f"{settings.monolith_http}/_migrate/health",
            ),
            ProcessSpec(
                "router",
                [
                    PYTHON,
                    "-m",
                    "migrate.router",
                    "--state",
                    str(settings.state_path),
                    "--port",
                    str(settings.router_port),
                    "--admin-port",
                    str(settings.admin_port),
                    "--quiet",
                ],
                # Its dashboard reads contracts, parity, lag and queues by
                # these settings, and its weight changes ask the same gate.
                env=settings.exported(),
                ready_url=f"{settings.router_url}/_router/health",
            ),
            ProcessSpec(
                "monolith-relay",
                [
                    PYTHON,
                    "-m",
                    "migrate.messaging.relay",
                    "--database",
                    settings.monolith_url,
                    *endpoint,
                ]
                + [
                    arg
                    for name in self.manifest.hosted
                    for arg in (
                        "--route",
                        f"{name}={resources.topic_arn(names.topic(app, name))}",
                    )
                ],
            ),
        ]
        for extraction in self.extractions():
            name = extraction.context
            specs += [
                ProcessSpec(
                    f"{name}-service",
                    [
                        PYTHON,
                        "-m",
                        "migrate.hosts.nameko_run",
                        "--config",
                        "config.yaml",
                        extraction.module,
                    ],
                    cwd=extraction.folder,
                    env={
                        "PYTHONPATH": os.pathsep.join(
                            [str(extraction.folder), str(self.manifest.code_root)]
                        ),
                        f"{name.upper()}_HTTP_ADDRESS": (
                            f"127.0.0.1:{self.service_port(name)}"
                        ),
                        f"{name.upper()}_DATABASE_URL": settings.service_url(name),
                        "MIGRATE_ROUTER_URL": settings.router_url,
                        **aws,
                    },
                    ready_url=f"{self.service_url(name)}/_migrate/health",
                ),
                ProcessSpec(
                    f"{name}-relay",
                    [
                        PYTHON,
                        "-m",
                        "migrate.messaging.relay",
                        "--database",
                        settings.service_url(name),
                        *endpoint,
                        "--route",
                        f"{name}={resources.topic_arn(names.topic(app, name))}",
                    ],
                ),
            ]
            if self.manifest.context(name).finished:
                # The monolith no longer keeps a copy to roll back to.
                continue

            specs.append(
                ProcessSpec(
                    f"{name}-follower",
                    [
                        PYTHON,
                        "-m",
                        "migrate.sync.follower",
                        "--context",
                        name,
                        "--database",
                        settings.monolith_url,
                        *endpoint,
                        "--queue-url",
                        resources.queue_url(names.follow_queue(app, name, "monolith")),
                    ],
                )
            )
        extracted = [e.context for e in self.extractions()]
        for source, consumer, _ in monolith_consumers(self.manifest, extracted):
            queue = names.monolith_consumer_queue(app, consumer, source)
            specs.append(
                ProcessSpec(
                    f"{consumer}-consumes-{source}",
                    [
                        PYTHON,
                        "-m",
                        "migrate.sync.consumer",
                        "--context",
                        consumer,
                        "--source",
                        source,
                        "--database",
                        settings.monolith_url,
                        *endpoint,
                        "--queue-url",
                        resources.queue_url(queue),
                    ],
                )
            )
        for context in self.manifest.contexts.values():
            for effect in context.side_effects:
                queue = names.side_effect_queue(app, context.name, effect.name)
                specs.append(
                    ProcessSpec(
                        f"{context.name}-{effect.name.replace('_', '-')}",
                        [
                            PYTHON,
                            "-m",
                            "migrate.messaging.lambda_runtime",
                            "--handler",
                            effect.function,
                            "--function-name",
                            f"{app}-{context.name}-{effect.name}",
                            "--queue-url",
                            resources.queue_url(queue),
                            *endpoint,
                        ],
                        env={"MAIL_DIR": str(settings.mail_dir)},
                    )
                )
        specs.append(
            ProcessSpec(
                "exporter",
                [PYTHON, "-m", "migrate.observe.exporter"],
                env=self._settings_environment(),
            )
        )
        return specs

    def _settings_environment(self) -> dict[str, str]:
        """The settings of this system, for a process that builds its own."""
        settings = self.settings
        found = {
            "MIGRATE_HOME": str(settings.home),
            "MIGRATE_EXTRACTED": str(settings.extracted_dir),
            "MIGRATE_PORT_BASE": str(settings.port_base),
        }
        for name, value in settings.environ.items():
            if name.endswith("_DATABASE_URL") or name == "AWS_ENDPOINT_URL":
                found[name] = value
        return found
