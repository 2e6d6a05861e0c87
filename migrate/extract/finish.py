"""`migrate finish <context>`: the monolith stops hosting a context for good.

Refused, with every reason named, unless the context's writes moved to its
service and sync lag is zero both ways: the last moment at which the
monolith's copy holds everything the service accepted. Then, in order:

1. every read of the context goes to its service (weight 100): the router
   sends the monolith none of the context's requests;
2. the monolith's follower of the context stops and its queue is retired:
   the monolith keeps no copy to roll back to any more (the service's own
   follow queue stays, idle: nothing of the monolith's reaches it now);
3. the context's package moves from the monolith's tree to
   `<extracted>/<context>/<package>/`, beside its service, so the service
   deploys on its own (`git mv` when the tree is a git checkout; the
   service's folder is then staged too). Every reference to the package's
   old dotted name in the tree's Python files and in the manifest is
   rewritten, and the manifest entry gains `root` (where the package lives
   now) and `finished = true`;
4. the routing state's phase becomes finished (`set_finished`, ledgered);
5. a running monolith and its relay restart on the new manifest, hosting the
   context no longer (a port onto it now calls its service through the
   router).

What it does not do: drop the monolith's copy of the context's tables (they
stay, unused, until a migration of the monolith retires them), commit the
moved files, or undo itself: `migrate rollback` refuses a finished context.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from migrate import names
from migrate.errors import MigrateError, NotExtracted
from migrate.manifest import Manifest
from migrate.manifest import load as load_manifest
from migrate.messaging.clients import sns_client, sqs_client
from migrate.messaging.topology import Queue, retire
from migrate.router.state import MONOLITH
from migrate.sync.lag import lag_by_direction
from migrate.system import System

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
ACTOR = "migrate finish"

# Folders of a project tree that hold no code of it.
_SKIPPED = {".git", ".venv", "venv", "var", "node_modules", "__pycache__", "build"}


class FinishRefused(MigrateError):
    pass


@dataclasses.dataclass(frozen=True)
class Relocation:
    source: Path
    target: Path
    package: str
    rewritten: tuple[Path, ...]
    git: bool


@dataclasses.dataclass(frozen=True)
class FinishReport:
    context: str
    relocation: Relocation
    retired_queues: tuple[str, ...]
    restarted: tuple[str, ...]


def missing(system: System, name: str) -> list[str]:
    """What keeps `name` from being finished now; empty when nothing does."""
    context = system.manifest.context(name)
    if context.finished:
        return [f"{name} is finished already; its service hosts it alone"]

    status = system.state.status().get(name)
    if status is None:
        raise NotExtracted(
            f"{name} is not extracted; run `migrate extract {name}` first"
        )

    reasons = []
    if status.writes_held:
        reasons.append("its writes are held: a write flip is in progress")
    if status.writer == MONOLITH:
        reasons.append(
            f"its writes are still with the monolith (run `migrate shift {name} "
            "--writes`)"
        )
    lag = lag_by_direction(system, name)
    behind = {side: int(found["events"]) for side, found in lag.items()}
    if any(behind.values()):
        reasons.append(
            f"its sync lag is {behind['to_monolith']} events to the monolith and "
            f"{behind['to_service']} to the service, not zero (wait until `migrate "
            "status` shows none)"
        )
    return reasons


def finish(system: System, name: str, progress: Progress | None = None) -> FinishReport:
    say = progress or (lambda step: None)
    reasons = missing(system, name)
    if reasons:
        raise FinishRefused(f"{name} cannot be finished: {'; '.join(reasons)}")

    manifest = system.manifest
    service_folder = system.settings.extracted_dir / name
    source, target = _paths(manifest, name, service_folder)

    say(f"sending every read of {name} to its service")
    system.state.set_weight(name, 100, ACTOR, f"{name} finished: its service serves "
                            "every read")
    say(f"stopping the monolith's follower of {name}")
    system.supervisor.stop(f"{name}-follower")
    retired = _retire_follow_queues(system, name)

    say(f"moving {manifest.context(name).package} to {target}")
    relocation = relocate(manifest, name, source, target)
    system.state.set_finished(
        name, ACTOR, f"the monolith no longer hosts {name}; its code is in {target}"
    )

    restarted = _restart_monolith(system, say)
    return FinishReport(name, relocation, retired, restarted)


def _paths(manifest: Manifest, name: str, service_folder: Path) -> tuple[Path, Path]:
    package = manifest.context(name).package
    source = manifest.code_root.joinpath(*package.split("."))
    target = service_folder / package.rsplit(".", 1)[-1]
    if not (source / "__init__.py").is_file():
        raise FinishRefused(
            f"{name}'s package {package!r} is not at {source}; finish moves it "
            "from the monolith's tree"
        )
    if not (service_folder / f"{name}_service.py").is_file():
        raise FinishRefused(
            f"{service_folder} holds no {name}_service.py; extract {name} there "
            "first (`migrate extract`)"
        )
    if target.exists():
        raise FinishRefused(f"{target} exists; finish would not overwrite it")
    return source, target


def _retire_follow_queues(system: System, name: str) -> tuple[str, ...]:
    settings = system.settings
    if settings.uses_emulator and not system.is_up():
        # The emulator keeps nothing; its next start creates what is declared.
        return ()

    endpoint = settings.endpoint_url
    sns, sqs = sns_client(endpoint), sqs_client(endpoint)
    topic_arn = sns.create_topic(Name=names.topic(system.manifest.name, name))[
        "TopicArn"]
    queue = Queue(names.follow_queue(system.manifest.name, name, "monolith"))
    return (queue.name,) if retire(sns, sqs, topic_arn, queue) else ()


def relocate(manifest: Manifest, name: str, source: Path, target: Path) -> Relocation:
    """Move the context's package beside its service and point the tree at it."""
    context = manifest.context(name)
    tree = manifest.code_root
    git = _git_root(tree)
    within = git is not None and _inside(target, git) and _inside(source, git)
    target.parent.mkdir(parents=True, exist_ok=True)
    if within:
        _git(tree, "mv", str(source), str(target))
    else:
        shutil.move(str(source), str(target))

    package = target.name
    old = re.compile(rf"(?<![\w.]){re.escape(context.package)}(?!\w)")
    rewritten = []
    for path in sorted({*_python_files(tree), *_python_files(target.parent)}):
        text = path.read_text(encoding="utf-8")
        changed = old.sub(package, text)
        if changed != text:
            path.write_text(changed, encoding="utf-8")
            rewritten.append(path)
    _rewrite_entry(manifest.path, name, old, package, target.parent)
    rewritten.append(manifest.path)

    if within and git is not None:
        _git(tree, "add", "-f", "--", str(target.parent))
        _git(tree, "add", "-f", "--",
             *(str(p) for p in rewritten if _inside(p, git)))
    log.info("moved %s to %s; %s files rewritten", context.package, target,
             len(rewritten))
    return Relocation(source, target, package, tuple(rewritten), within)


def _rewrite_entry(
    path: Path, name: str, old: re.Pattern[str], package: str, root: Path
) -> None:
    """The manifest with the context's references renamed, and its entry
    marked finished with the root its package lives in now."""
    text = old.sub(package, path.read_text(encoding="utf-8"))
    header = f"[contexts.{name}]"
    lines = text.splitlines(keepends=True)
    at = next((n for n, line in enumerate(lines) if line.strip() == header), None)
    if at is None:
        raise FinishRefused(f"{path} has no {header} table to mark finished")

    relative = Path(os.path.relpath(root, path.parent)).as_posix()
    lines[at + 1:at + 1] = [
        "# Moved out of the monolith by `migrate finish`: its service hosts it.\n",
        f'root = "{relative}"\n',
        "finished = true\n",
    ]
    path.write_text("".join(lines), encoding="utf-8")


def _python_files(folder: Path) -> Iterator[Path]:
    for directory, subfolders, files in os.walk(folder):
        subfolders[:] = [
            f for f in subfolders
            if f not in _SKIPPED and not f.startswith(".") and not f.endswith(
                ".egg-info")
        ]
        for file in files:
            if file.endswith(".py"):
                yield Path(directory) / file


def _git_root(folder: Path) -> Path | None:
    try:
        found = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, check=False,
        )
    except FileNotFoundError:
        return None

    return Path(found.stdout.strip()).resolve() if found.returncode == 0 else None


def _git(tree: Path, *args: str) -> None:
    done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise FinishRefused(f"git {args[0]} failed in {tree}: {done.stderr.strip()}")


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder)


def _restart_monolith(system: System, say: Progress) -> tuple[str, ...]:
    """Start the monolith's processes again on the manifest as it is now."""
    if not system.is_up():
        return ()

    stopped = [n for n in ("monolith", "monolith-relay")
               if system.supervisor.stop(n)]
    say("restarting the monolith without it")
    System(system.settings, load_manifest(system.manifest.path)).up()
    return tuple(stopped)
