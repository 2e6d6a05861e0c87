"""Servers and copies for the contract tests; everything started is stopped."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from pact import Pact
from pact.error import MissingRequest

from migrate.settings import PROJECT_ROOT


@contextlib.contextmanager
def served(pact: Pact) -> Iterator[str]:
    """The pact's mock provider on loopback; its base URL.

    A test exercises some of the interactions; those it leaves alone are
    not its failure, but a request the contract does not describe is.
    """
    with pact.serve(addr="127.0.0.1", raises=False, verbose=False) as server:
        yield str(server.url).rstrip("/")
    unexpected = [m for m in server.mismatches if not isinstance(m, MissingRequest)]
    assert not unexpected, f"requests outside the contract: {unexpected}"


class ServerThread:
    """An aiohttp application on 127.0.0.1:0, served from its own thread."""

    def __init__(self, app: web.Application):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = 0

    def start(self) -> ServerThread:
        self._thread.start()
        self._call(self._start())
        return self

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def stop(self) -> None:
        self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def copy_of_code(into: Path, edits: dict[str, tuple[str, str]]) -> Path:
    """A copy of the code a verification runs, with `edits` made to it:
    {relative path: (text, replacement)}, each text present exactly once."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("migrate", "monolith", "contracts"):
        shutil.copytree(PROJECT_ROOT / part, into / part, ignore=ignore)
    for relative, (old, new) in edits.items():
        path = into / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} is not once in {relative}"
        path.write_text(text.replace(old, new))
    return into
