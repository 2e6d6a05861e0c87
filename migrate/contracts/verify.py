"""Verify providers against their consumers' contracts, on each host.

For each provider and host (the monolith, and the service of an extracted
context) `verify`:

1. reads every contract and refuses a malformed one, or a message contract
   that leaves open an attribute its consumer's filter policy matches on;
2. starts the host on a fresh SQLite database in a temporary folder, with
   the code under `root` (the repository, or a copy of it): the monolith as
   `python -m monolith`; a service as `nameko run` in its extracted folder,
   after starting a private SQS/SNS emulator for the queues it consumes
   and, in place of the router, a stub that answers the service's calls of
   other contexts from the contracts its context holds with them
   (`migrate.contracts.stubs`).
   Beside the host runs the harness (`migrate.contracts.harness`), which
   prepares the database and sets provider states through the context's
   own API and produces the messages the provider publishes;
3. replays every interaction with the Pact verifier (pact-python's v3 API),
   compares each message's attributes with the contract and with the
   consumer's filter policies, and reports each mismatch in plain words:
   interaction, field path, expected, actual;
4. stores the result for the deploy gate (`migrate.contracts.results`).

Nothing here touches a running system: no live database, no live queue.
Verifying every contract of the reference monolith on both hosts takes
12-14 s on two cores with every context extracted, mostly starting hosts,
two at a time (see docs/contracts.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from migrate.contracts import attributes, pacts, stubs, wiring
from migrate.contracts.errors import MalformedContract
from migrate.contracts.harness import interaction_key
from migrate.contracts.pacts import Contract
from migrate.contracts.results import (
    Mismatch,
    PactResult,
    Verification,
    code_digest,
    record,
)
from migrate.contracts.states import HOSTS, MONOLITH, SERVICE
from migrate.errors import NotExtracted
from migrate.extract.generate import extraction_of
from migrate.manifest import Manifest
from migrate.manifest import load as load_manifest
from migrate.processes import ProcessSpec, Supervisor
from migrate.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

CONTRACTS_DIR = PROJECT_ROOT / "contracts"
BOTH = "both"
# Hosts started at once. On two cores, the monolith and five services took
# 19-22 s one after another and 12-14 s two at a time on a quiet machine;
# three at a time took 9-10 s there, but no less than two while other work
# shared the cores.
HOSTS_AT_ONCE = 2
# The verifier's own report is silenced on file descriptor 1, which every
# thread shares, so replays take turns.
_REPLAYING = threading.Lock()
PYTHON = sys.executable
Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Report:
    verifications: tuple[Verification, ...]
    skipped: tuple[str, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verifications)

    @property
    def mismatches(self) -> list[Mismatch]:
        return [m for v in self.verifications for m in v.mismatches]


def load_contracts(folder: Path = CONTRACTS_DIR,
                   manifest: Manifest | None = None) -> list[Contract]:
    """Every contract in `folder`, each checked against the filter policies
    of its consumer's subscriptions."""
    manifest = manifest or load_manifest()
    contracts = pacts.load_folder(folder)
    for contract in contracts:
        problems = []
        subscriptions = attributes.subscriptions_of(manifest, contract)
        for message in contract.messages:
            for attribute in attributes.unpinned(message, subscriptions):
                problems.append(
                    f"message {message.description!r} leaves {attribute!r} open, "
                    f"but the filter policy of {contract.consumer}'s queue matches "
                    "on it"
                )
        if problems:
            raise MalformedContract(contract.path, problems)
    return contracts


def verify(
    settings: Settings,
    *,
    providers: Sequence[str] | None = None,
    host: str = BOTH,
    root: Path = PROJECT_ROOT,
    folder: Path = CONTRACTS_DIR,
    keep: bool = True,
    progress: Progress | None = None,
) -> Report:
    """Verify `providers` (all that contracts name, by default) on `host`
    (monolith, service or both); `keep` stores the results for the gate."""
    say = progress or (lambda line: None)
    started = time.monotonic()
    manifest = load_manifest()
    contracts = load_contracts(folder, manifest)
    names = list(providers or pacts.providers(contracts))
    per_provider = {name: pacts.of_provider(contracts, name) for name in names}
    on_monolith, on_service, skipped = _targets(settings, names, host)

    def on_the_monolith(workdir: Path) -> list[Verification]:
        say("starting the monolith")
        with _monolith(workdir / "monolith", root) as hosted:
            found = []
            for name in on_monolith:
                say(f"verifying {name} on the monolith")
                found.append(_verify_on(hosted, manifest, name, per_provider[name],
                                        root))
            return found

    def on_its_service(workdir: Path, name: str) -> list[Verification]:
        say(f"starting the {name} service")
        folder_of = settings.extracted_dir / name
        called = [port.provider for port
                  in manifest.context(name).ports_to(manifest.contexts)]
        stubbed = stubs.held_by(name, called, contracts)
        with _service(workdir / name, root, folder_of, stubbed) as hosted:
            say(f"verifying {name} on its service")
            return [_verify_on(hosted, manifest, name, per_provider[name], root,
                               folder_of)]

    verifications: list[Verification] = []
    with tempfile.TemporaryDirectory(prefix="migrate-contracts-") as scratch:
        workdir = Path(scratch)
        jobs = [functools.partial(on_its_service, workdir, name) for name in on_service]
        if on_monolith:
            jobs.insert(0, functools.partial(on_the_monolith, workdir))
        # Starting a host is mostly Python importing its code; hosts start side
        # by side, each on its own ports and database, and replay in turn.
        with ThreadPoolExecutor(max_workers=HOSTS_AT_ONCE) as pool:
            for found in pool.map(lambda job: job(), jobs):
                verifications += found

    if keep:
        for verification in verifications:
            record(settings, verification)
    return Report(tuple(verifications), tuple(skipped),
                  round(time.monotonic() - started, 2))


def _targets(
    settings: Settings, names: list[str], host: str
) -> tuple[list[str], list[str], list[str]]:
    if host not in (*HOSTS, BOTH):
        raise ValueError(f"host {host!r}: hosts are monolith, service and both")

    on_monolith = names if host in (MONOLITH, BOTH) else []
    on_service, skipped = [], []
    if host in (SERVICE, BOTH):
        for name in names:
            if extraction_of(name, settings.extracted_dir) is not None:
                on_service.append(name)
            elif host == SERVICE:
                raise NotExtracted(
                    f"{name} has no service in {settings.extracted_dir}; "
                    f"run `migrate extract {name}` first"
                )
            else:
                skipped.append(f"{name} has no service yet: verified on the "
                               "monolith only")
    return on_monolith, on_service, skipped


@dataclasses.dataclass
class _Hosted:
    host: str
    url: str
    harness_url: str

    @property
    def harness_port(self) -> int:
        return int(self.harness_url.rsplit(":", 1)[1])


@contextlib.contextmanager
def _monolith(workdir: Path, root: Path) -> Iterator[_Hosted]:
    from migrate.messaging.emulator import free_port

    workdir.mkdir(parents=True)
    supervisor = Supervisor(workdir / "run", workdir / "logs")
    database = f"sqlite:///{workdir / 'monolith.db'}"
    url, harness_url = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    # The monolith runs its side effects in-process, as it does standing
    # alone; what they send lands in the scratch folder.
    env = {"PYTHONPATH": _python_path(root), "MAIL_DIR": str(workdir / "mail")}
    try:
        supervisor.start(ProcessSpec(
            "harness", _harness(MONOLITH, database, url, harness_url),
            env=env, cwd=root, ready_url=f"{harness_url}/_contracts/health"))
        supervisor.start(ProcessSpec(
            "monolith", [PYTHON, "-m", "monolith", "--database", database,
                         "--port", url.rsplit(":", 1)[1], "--threads", "4"],
            env=env, cwd=root, ready_url=f"{url}/_migrate/health"))
        yield _Hosted(MONOLITH, url, harness_url)
    finally:
        supervisor.stop_all(["monolith", "harness"])


@contextlib.contextmanager
def _service(workdir: Path, root: Path, folder: Path,
             stubbed: list[Contract]) -> Iterator[_Hosted]:
    from migrate.messaging.clients import sqs_client
    from migrate.messaging.emulator import Emulator, free_port

    context = folder.name
    service = wiring.load(folder, context)
    # A states module without a package is one extraction generated here.
    if "." not in service.states and not (folder / f"{service.states}.py").exists():
        raise NotExtracted(
            f"{folder} has no {service.states}.py, so the service's provider "
            f"states cannot be set; generate it again with `migrate extract "
            f"{context} --force`"
        )
    workdir.mkdir(parents=True)
    supervisor = Supervisor(workdir / "run", workdir / "logs")
    database = f"sqlite:///{workdir / f'{context}.db'}"
    url, harness_url = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    with Emulator() as emulator, stubs.serving(stubbed) as router_url:
        sqs = sqs_client(emulator.endpoint_url)
        for queue in service.queues:
            sqs.create_queue(QueueName=queue)
        try:
            supervisor.start(ProcessSpec(
                "harness",
                _harness(SERVICE, database, url, harness_url)
                + ["--context", context, "--states", service.states,
                   "--migrations", str(folder / service.migrations)],
                # The states module is generated into the service's folder.
                env={"PYTHONPATH": _python_path(folder, root)}, cwd=root,
                ready_url=f"{harness_url}/_contracts/health"))
            supervisor.start(ProcessSpec(
                f"{context}-service",
                [str(Path(PYTHON).parent / "nameko"), "run", "--config",
                 service.config, service.service_module],
                cwd=folder,
                env={
                    "PYTHONPATH": _python_path(folder, root),
                    service.address_variable: url.removeprefix("http://"),
                    service.database_variable: database,
                    "AWS_ENDPOINT_URL": emulator.endpoint_url,
                    stubs.ROUTER_VARIABLE: router_url,
                },
                ready_url=f"{url}/_migrate/health"))
            yield _Hosted(SERVICE, url, harness_url)
        finally:
            supervisor.stop_all([f"{context}-service", "harness"])


def _harness(host: str, database: str, url: str, harness_url: str) -> list[str]:
    return [PYTHON, "-m", "migrate.contracts.harness", "--host", host,
            "--database", database, "--control", url,
            "--port", harness_url.rsplit(":", 1)[1]]


def _python_path(*first: Path) -> str:
    inherited = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([*(str(p) for p in first), *filter(None, [inherited])])


def _verify_on(
    hosted: _Hosted,
    manifest: Manifest,
    provider: str,
    contracts: list[Contract],
    root: Path,
    extraction: Path | None = None,
) -> Verification:
    started = time.monotonic()
    outcome = _replay(hosted, provider, contracts)
    mismatches = _pact_mismatches(outcome, provider)
    report = requests.get(
        f"{hosted.harness_url}/_contracts/{provider}/report", timeout=10).json()
    mismatches = _explain_failed_states(mismatches, contracts,
                                        report["failed_states"])
    mismatches = _merge(mismatches, _attribute_mismatches(
        manifest, provider, contracts, report["published"]))

    broken: dict[str, set[str]] = {}
    for mismatch in mismatches:
        broken.setdefault(mismatch.consumer, set()).add(mismatch.description)
    replayed: dict[str, int] = {}
    for entry in outcome.get("interactionResults") or []:
        consumer = str(entry.get("consumer", "?"))
        replayed[consumer] = replayed.get(consumer, 0) + 1
    package = manifest.context(provider).package
    return Verification(
        provider=provider,
        host=hosted.host,
        verified_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - started, 2),
        code_digest=code_digest(package, root=root, extraction=extraction),
        pacts=tuple(
            PactResult(c.consumer, c.path.name, c.digest, len(c.interactions),
                       tuple(sorted(broken.get(c.consumer, ()))),
                       replayed.get(c.consumer, 0))
            for c in contracts
        ),
        mismatches=tuple(mismatches),
    )


def _replay(
    hosted: _Hosted, provider: str, contracts: list[Contract]
) -> dict[str, Any]:
    """Run the Pact verifier; its JSON results."""
    # Otherwise the verifier tries to send usage statistics over the network.
    os.environ.setdefault("PACT_DO_NOT_TRACK", "true")
    from pact import Verifier

    verifier = Verifier(provider, host="127.0.0.1").add_transport(url=hosted.url)
    if any(c.messages for c in contracts):
        verifier.add_transport(protocol="message", port=hosted.harness_port,
                               path=f"/_contracts/{provider}/message")
    verifier.state_handler(f"{hosted.harness_url}/_contracts/{provider}/state",
                           teardown=True, body=True)
    for contract in contracts:
        verifier.add_source(contract.path)
    with _REPLAYING, _stdout_silenced():
        try:
            verifier.verify()
        # The verifier raises a bare RuntimeError whenever an interaction
        # fails; the results say which and why.
        except RuntimeError:
            log.debug("pact verifier found failures for %s", provider)
    results: dict[str, Any] = verifier.results
    return results


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """The Pact verifier prints its own report on file descriptor 1; the
    kit prints its own (and `--json` needs stdout to itself)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _pact_mismatches(outcome: dict[str, Any], provider: str) -> list[Mismatch]:
    found: list[Mismatch] = []
    for entry in outcome.get("interactionResults") or []:
        if entry.get("result") == "OK" or entry.get("pending"):
            continue
        consumer = entry.get("consumer", "?")
        description = entry.get("description", "?")
        mismatch = entry.get("mismatch") or {}
        details = mismatch.get("mismatches") or []
        if not details:
            found.append(Mismatch(consumer, provider, description, "",
                                  "the interaction to run", "an error",
                                  _error_text(mismatch)))
        for detail in details:
            found += _plain(consumer, provider, description, detail)
    return found


def _error_text(mismatch: dict[str, Any]) -> str:
    message = str(mismatch.get("message") or mismatch.get("type") or "no detail")
    return message.strip().splitlines()[0][:300]


_MISSING_KEYS = "Actual map is missing the following keys: "


def _plain(consumer: str, provider: str, description: str,
           detail: dict[str, Any]) -> list[Mismatch]:
    kind = detail.get("type", "")
    text = str(detail.get("mismatch", "")).strip()
    expected = _shown(detail.get("expected"))
    actual = _shown(detail.get("actual"))

    def one(path: str, note: str = text) -> Mismatch:
        return Mismatch(consumer, provider, description, path, expected, actual, note)

    if kind == "BodyMismatch" and text.startswith(_MISSING_KEYS):
        base = str(detail.get("path") or "$")
        keys = [k.strip() for k in text[len(_MISSING_KEYS):].split(",") if k.strip()]
        return [Mismatch(consumer, provider, description, f"{base}.{key}",
                         "a value", "nothing (the field is missing)")
                for key in keys]
    if kind == "StatusMismatch":
        return [one("status", "")]
    if kind == "HeaderMismatch":
        return [one(f"header {detail.get('key', '?')}")]
    if kind == "MetadataMismatch":
        return [one(f"metadata.{detail.get('key', '?')}")]
    if kind == "BodyTypeMismatch":
        return [one("body")]
    return [one(str(detail.get("path") or kind or ""))]


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "nothing"
    return value if isinstance(value, str) else json.dumps(value)


def _attribute_mismatches(
    manifest: Manifest, provider: str, contracts: list[Contract],
    published: dict[str, dict[str, Any]],
) -> list[Mismatch]:
    found: list[Mismatch] = []
    for contract in contracts:
        subscriptions = attributes.subscriptions_of(manifest, contract)
        for message in contract.messages:
            produced = published.get(interaction_key(message.description,
                                                     message.state_names))
            if produced is None:
                continue
            if "error" in produced:
                found.append(Mismatch(contract.consumer, provider, message.description,
                                      "", "a published event", "none",
                                      produced["error"]))
                continue
            for wrong in attributes.compare(message, produced["metadata"],
                                            subscriptions):
                found.append(Mismatch(contract.consumer, provider, message.description,
                                      f"metadata.{wrong.attribute}", wrong.expected,
                                      wrong.actual, wrong.note))
    return found


def _explain_failed_states(
    mismatches: list[Mismatch], contracts: list[Contract], failed: dict[str, str]
) -> list[Mismatch]:
    """Name the state that failed, where Pact only says that one did."""
    if not failed:
        return mismatches

    explained = []
    for mismatch in mismatches:
        contract = next((c for c in contracts if c.consumer == mismatch.consumer),
                        None)
        interaction = contract.interaction(mismatch.description) if contract else None
        states = interaction.state_names if interaction else ()
        reason = next((failed[s] for s in states if s in failed), None)
        if mismatch.path or reason is None:
            explained.append(mismatch)
            continue
        explained.append(dataclasses.replace(
            mismatch, expected="the provider state to be set", actual="a failure",
            note=reason))
    return explained


def _merge(from_pact: list[Mismatch], own: list[Mismatch]) -> list[Mismatch]:
    """Pact's findings, less those the kit's own checks say better."""
    said = {(m.consumer, m.description, m.path) for m in own}
    errors = {(m.consumer, m.description) for m in own if not m.path}
    kept = [m for m in from_pact
            if (m.consumer, m.description, m.path) not in said
            and not (not m.path and (m.consumer, m.description) in errors)]
    return kept + own

