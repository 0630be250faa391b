"""
The pid file (C{[server] pid_file}): the running server's process ID, which
C{ldapd-admin reload} signals. It names the process that owns the
listeners: with C{[server] workers}, the parent, which passes the signal on
to every worker.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["readPIDFile", "removePIDFile", "writePIDFile"]


def writePIDFile(path: Path) -> None:
    """
    Write this process's ID, replacing the file whole (written beside it
    and renamed), so that a reader never sees it half-written.

    @param path: the pid file.
    @raise OSError: if it cannot be written.
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(f"{os.getpid()}\n")
    os.replace(partial, path)


def removePIDFile(path: Path) -> None:
    """
    Remove the pid file if it still names this process: a server started
    since with the same file keeps its own.

    @param path: the pid file.
    """
    try:
        if readPIDFile(path) == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def readPIDFile(path: Path) -> int:
    """
    @param path: a pid file.
    @return: the process ID it holds.
    @raise OSError: if it cannot be read.
    @raise ValueError: if it does not hold a process ID.
    """
    text = path.read_text().strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{path}: not a process ID: {text[:40]!r}")
    return int(text)
