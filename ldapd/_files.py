"""
Files that hold entries (databases, audit logs, LDIF exports) and so
password hashes: created readable by their owner only (0600), as slapd
creates its databases, with the mode given to C{open(2)} so that there is
no moment at which another local user could open them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from twisted.logger import Logger

__all__ = ["PRIVATE_MODE", "createPrivate", "openPrivate", "warnIfReadable"]

_log = Logger()

#: The mode of the files ldapd creates with entries in them.
PRIVATE_MODE = 0o600


def openPrivate(path: Path | str, append: bool = False) -> BinaryIO:
    """
    Open a file for writing, creating it with mode 0600 if it does not
    exist. An existing file keeps its mode (an administrator may have
    chosen a group that reads it).

    @param path: the file.
    @param append: append to the file rather than truncate it.
    @return: the file, open for writing bytes.
    @raise OSError: if it cannot be opened.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    try:
        return os.fdopen(fd, "ab" if append else "wb")
    except BaseException:
        os.close(fd)
        raise


def createPrivate(path: Path | str) -> None:
    """
    Make sure a file exists before a library creates it with its own mode
    (SQLite's is 0644, and its C{-wal}, C{-shm} and C{-journal} files take
    the database file's): create it empty with mode 0600 if it is missing,
    or warn if it exists and every local user may read it.

    @param path: the file.
    @raise OSError: if it cannot be created.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        warnIfReadable(path, "holds directory entries")
        return
    os.close(fd)


def warnIfReadable(path: Path | str, holds: str) -> bool:
    """
    Log a warning naming a file that every local user may read.

    @param path: the file.
    @param holds: what it holds that others should not read, for the
        message ("holds directory entries").
    @return: whether it was world-readable.
    """
    mode = os.stat(path).st_mode
    if not mode & stat.S_IROTH:
        return False
    _log.warn(
        "{path} {holds} and is readable by every local user (mode {mode:04o}): chmod o-r {path}",
        path=str(path), holds=holds, mode=stat.S_IMODE(mode),
    )
    return True
