"""The README's quick start, run the way a new user runs it: `make demo` in
a fresh clone of this checkout's HEAD, which builds its own virtual
environment (pip may answer from its cache) and runs the whole migration."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workspaces import free_port_base, unavailable

from migrate.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_the_readme_shows_exactly_two_commands() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]

    commands = re.findall(r"^    (make \w+)", quick_start, re.MULTILINE)

    assert commands == ["make demo", "make test"]


def _as_a_new_user() -> dict[str, str]:
    """The environment of someone who has just cloned the repository: none
    of the kit's settings, no virtual environment active; only ports of
    its own, so the run meets no other system on this machine."""
    base = free_port_base()
    bin_of_this_venv = str(Path(sys.executable).parent)
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("MIGRATE_", "VIRTUAL_ENV", "PYTHON"))
        and name not in ("AWS_XRAY_DAEMON_ADDRESS", "AWS_ENDPOINT_URL")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p != bin_of_this_venv
    )
    return {
        **env,
        "MIGRATE_PORT_BASE": str(base),
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{base + 4}",
        # Short steps keep it affordable; the story is the same.
        "MIGRATE_DEMO_SECONDS": "1.5",
    }


@pytest.mark.timeout(1200)
def test_make_demo_in_a_fresh_clone_migrates_billing_with_no_failed_request(
    tmp_path: Path,
) -> None:
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        unavailable(f"{PROJECT_ROOT} is not a git checkout to clone")
    clone = tmp_path / "northwind-migrate"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)],
                   check=True, timeout=120)

    demo = subprocess.run(
        ["make", "demo"],
        cwd=clone,
        env=_as_a_new_user(),
        capture_output=True,
        text=True,
        timeout=1100,
    )

    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert (clone / ".venv" / "bin" / "migrate").exists()
    assert "Billing moved from the monolith to its service." in demo.stdout
    assert re.search(r"failed requests\s+0\n", demo.stdout)
    assert re.search(r"invoices\s+monolith (\d+), service \1\n", demo.stdout)
    assert re.search(r"e-mails sent\s+[1-9]\d*\n", demo.stdout)
    # Progress, on stderr, as the user watches it.
    steps = ["seeding the monolith", "extracting billing", "reads at 50 %",
             "moving billing's writes to its service", "stopping everything"]
    said = demo.stderr.splitlines()
    assert all(step in said for step in steps), demo.stderr[-3000:]
    assert [said.index(step) for step in steps] == sorted(
        said.index(step) for step in steps)
