"""Write an extracted context's service: host, configuration, migrations.

The output is a folder `<extracted>/<context>/` holding `<context>_service.py`
(the Nameko host), `<context>_clients.py` when the context calls other
contexts' APIs through ports (one HTTP client class per port, written from
the port's protocol), `config.yaml`, an Alembic environment whose first
revision Alembic itself autogenerates from the context's tables, and what
contract verification needs to run the service and set its provider states
(`<context>_contracts.py`, `<context>_states.py`). The same
manifest gives the same files, byte for byte.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import jinja2
from alembic import command

from migrate import names
from migrate.errors import AlreadyExtracted, ManifestError
from migrate.hosts.calls import api_routes, exposed, protocol_methods, protocol_of
from migrate.manifest import Context, ContextPort, Manifest
from migrate.messaging.topology import Queue
from migrate.schema import alembic_config

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAKO = Path(__file__).resolve().parent.parent.parent / "monolith" / "migrations" \
    / "script.py.mako"


@dataclasses.dataclass(frozen=True)
class Extraction:
    context: str
    folder: Path
    module: str
    routes: list[tuple[str, str, str | None]]

    @property
    def migrations(self) -> Path:
        return self.folder / "migrations"


def extraction_of(context: str, extracted_dir: Path) -> Extraction | None:
    """The extraction already on disk, if there is one."""
    folder = extracted_dir / context
    if not (folder / f"{context}_service.py").exists():
        return None

    return Extraction(context, folder, f"{context}_service", [])


def generate(
    manifest: Manifest, name: str, extracted_dir: Path, *, force: bool = False
) -> Extraction:
    context = manifest.context(name)
    _require_followable(context)

    folder = extracted_dir / name
    if folder.exists() and not force:
        raise AlreadyExtracted(
            f"{folder} exists; pass --force to generate {name}'s service again"
        )

    staging = Path(tempfile.mkdtemp(prefix=f"extract-{name}-"))
    try:
        _render(manifest, context, staging, folder)
        _autogenerate_first_revision(name, staging / "migrations", manifest.path)
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    routes = [(r.method, r.rule, r.bucket_key) for r in context.route_list]
    routes += api_routes(manifest, name)
    return Extraction(name, folder, f"{name}_service", routes)


def _require_followable(context: Context) -> None:
    """A service starts as a replica: it must be able to follow every table."""
    if not context.follows:
        raise ManifestError(
            f"context {context.name} declares neither a replica module nor "
            "aggregates; extraction needs one of them so the service can follow "
            f"the monolith until writes move (see [contexts.{context.name}."
            "aggregates] in the manifest's header)"
        )

    if context.replica is None:
        unfollowed = context.unfollowed_tables()
        if unfollowed:
            raise ManifestError(
                f"context {context.name}: table {unfollowed[0]!r} is in no declared "
                "aggregate, so a replica would never see its changes; add it to "
                f"[contexts.{context.name}.aggregates] as a root or a child"
            )

    # Built here so that a wrong key or child fails before anything is written.
    context.aggregates_built()


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_clients(manifest: Manifest, name: str) -> str | None:
    """The source of `<context>_clients.py`: a client class per port of the
    context, written from the port's protocol; None when it has no ports."""
    context = manifest.context(name)
    ports = context.ports_to(manifest.contexts)
    if not ports:
        return None

    return _templates().get_template("clients.py.j2").render(
        context=context.name,
        clients=[_client(context, port) for port in ports],
        protocol_imports=_protocol_imports(context, ports),
    )


def _render(
    manifest: Manifest, context: Context, out: Path, folder: Path
) -> None:
    env = _templates()
    consumed = sorted({event_type.context for event_type in context.event_handlers})
    calls = list(exposed(manifest, context.name))
    values = {
        "context": context.name,
        "package": context.package,
        "class_name": f"{context.name.title().replace('_', '')}Service",
        "env_prefix": context.name.upper(),
        "routes": context.route_list,
        # The names SQS knows them by: a FIFO queue's ends in .fifo.
        "queues": {
            "follow": _queue_name(
                names.follow_queue(manifest.name, context.name, "service"),
                context.fifo,
            ),
            "consumes": {
                source: _queue_name(
                    names.consumer_queue(manifest.name, context.name, source),
                    manifest.context(source).fifo,
                )
                for source in consumed
            },
        },
        "calls": calls,
        "ports": [port.name for port in context.ports_to(manifest.contexts)],
        "summary": _summary(context, calls, manifest),
        # The folder the service lands in, not the staging one.
        "manifest_relative": Path(
            os.path.relpath(manifest.path.resolve(), folder.resolve())
        ).as_posix(),
        "states_module": f"contracts.states.{context.name}",
    }
    (out / "migrations" / "versions").mkdir(parents=True)
    outputs = {
        f"{context.name}_service.py": "service.py.j2",
        "config.yaml": "config.yaml.j2",
        "migrations/env.py": "env.py.j2",
        f"{context.name}_contracts.py": "contracts.py.j2",
        f"{context.name}_states.py": "states.py.j2",
    }
    for target, template in outputs.items():
        (out / target).write_text(env.get_template(template).render(**values))
    clients = render_clients(manifest, context.name)
    if clients is not None:
        (out / f"{context.name}_clients.py").write_text(clients)
    shutil.copy(MAKO, out / "migrations" / "script.py.mako")


def _summary(context: Context, calls: list[str], manifest: Manifest) -> str:
    consumed = sorted(f"{t.context}.{t.type_name()}" for t in context.event_handlers)
    ports = [port.provider for port in context.ports_to(manifest.contexts)]
    text = (
        f"The context's code is imported from `{context.package}`, not copied. "
        f"The service owns its database ({context.name.upper()}_DATABASE_URL), "
        "answers the context's routes"
        + (f" and the calls of its API that other contexts make ({', '.join(calls)})"
           if calls else "")
        + (f", calls the API of {' and '.join(ports)} through the router"
           if ports else "")
        + f", follows the monolith's {context.name} events while it is a replica, "
        f"and consumes {', '.join(consumed) or 'nothing'} once it is the writer."
    )
    return textwrap.fill(text, width=79)


def _client(context: Context, port: ContextPort) -> dict[str, Any]:
    """What the clients template needs of one port's protocol."""
    protocol = protocol_of(context, port)
    methods = []
    for name in protocol_methods(protocol):
        signature = inspect.signature(getattr(protocol, name))
        parameters = list(signature.parameters.values())
        methods.append({
            "name": name,
            "parameters": ", ".join(_parameter(p) for p in parameters),
            "arguments": "".join(f", {p.name}={p.name}" for p in parameters[1:]),
            "returns": (
                "" if signature.return_annotation is inspect.Signature.empty
                else f" -> {_annotation(signature.return_annotation)}"
            ),
        })
    return {
        "port": port.name,
        "context": port.provider,
        "protocol": f"{port.module}:{protocol.__name__}",
        "protocol_name": protocol.__name__,
        "class_name": f"{protocol.__name__}Client",
        "methods": methods,
    }


def _protocol_imports(
    context: Context, ports: list[ContextPort]
) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for port in ports:
        found.setdefault(port.module, set()).add(protocol_of(context, port).__name__)
    return {module: sorted(names) for module, names in sorted(found.items())}


def _parameter(parameter: inspect.Parameter) -> str:
    text = parameter.name
    if parameter.annotation is not inspect.Parameter.empty:
        text += f": {_annotation(parameter.annotation)}"
    if parameter.default is not inspect.Parameter.empty:
        text += f" = {parameter.default!r}"
    return text


def _annotation(annotation: Any) -> str:
    # Protocols written with `from __future__ import annotations` hold text.
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation)


def _queue_name(declared: str, fifo: bool) -> str:
    return Queue(declared, fifo=fifo).aws_name


def _autogenerate_first_revision(
    name: str, migrations: Path, manifest_path: Path
) -> None:
    with tempfile.TemporaryDirectory() as empty:
        url = f"sqlite:///{Path(empty) / 'empty.db'}"
        command.revision(
            alembic_config(url, migrations, manifest_path),
            message=f"{name} service schema",
            autogenerate=True,
            rev_id="0001",
        )
    for revision in (migrations / "versions").glob("*.py"):
        # Alembic stamps the wall clock into each revision; drop it so that
        # generating twice gives the same bytes.
        text = revision.read_text()
        kept = [ln for ln in text.splitlines(keepends=True)
                if not ln.startswith("Create Date:") and "### " not in ln]
        revision.write_text("".join(kept))
