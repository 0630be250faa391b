"""
The test session leaves nothing behind, in the source tree or elsewhere.

Every temporary file of the session (C{tempfile}'s, trial's C{mktemp()},
which is relative to the current folder, and those of the servers and
clients the tests start, which inherit C{TMPDIR}) goes into one folder,
removed when the session ends, however the tests ended. The tests run
from a folder inside it, so that a test writing to a relative path writes
there. At the end the session checks with C{git status} that the source
tree has no file it did not have before, and fails if it has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


class _Session:
    """
    What the session changed, to undo, and the source tree's state before it.

    @cvar root: the session's temporary folder.
    @cvar tempdir: C{tempfile.tempdir} before the session.
    @cvar TMPDIR: the environment's C{TMPDIR} before the session.
    @cvar status: the source tree's L{_gitStatus} before the session.
    """

    root: Path | None = None
    tempdir: str | None = None
    TMPDIR: str | None = None
    status: set[str] | None = None


def _gitStatus() -> set[str] | None:
    """
    @return: the lines of C{git status --porcelain} for the source tree
        (untracked files one by one), or C{None} when it is not a git
        checkout or git is not installed.
    """
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=_SOURCE_ROOT, capture_output=True, text=True, check=False, timeout=60,
        )
    except FileNotFoundError:
        return None
    if result.returncode != 0:
        return None
    return set(result.stdout.splitlines())


def pytest_configure(config: pytest.Config) -> None:
    """
    Before collection (modules may make temporary files as they load):
    point C{tempfile} and child processes at the session's folder, and
    note the source tree's state.
    """
    _Session.status = _gitStatus()
    _Session.tempdir = tempfile.tempdir
    _Session.TMPDIR = os.environ.get("TMPDIR")
    _Session.root = Path(tempfile.mkdtemp(prefix="ldapd-tests-"))
    tempfile.tempdir = os.environ["TMPDIR"] = str(_Session.root)


def pytest_unconfigure(config: pytest.Config) -> None:
    """
    Remove the session's folder and restore C{tempfile}'s and C{TMPDIR}.
    """
    if _Session.root is None:
        return
    tempfile.tempdir = _Session.tempdir
    if _Session.TMPDIR is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = _Session.TMPDIR
    shutil.rmtree(_Session.root, ignore_errors=True)
    _Session.root = None


@pytest.fixture(autouse=True, scope="session")
def _runInTemporaryFolder() -> Iterator[None]:
    """
    Run the tests from a folder of the session's, not from the source tree.
    """
    assert _Session.root is not None, "pytest_configure makes the session's folder"
    previous = os.getcwd()
    folder = _Session.root / "cwd"
    folder.mkdir()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """
    Fail the session if the tests left a new file in the source tree.
    """
    before = _Session.status
    after = _gitStatus()
    if before is None or after is None:
        return
    left = sorted(after - before)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the tests wrote into the source tree:\n" + "\n".join(left)
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
