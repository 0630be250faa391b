"""
Telling systemd how the server is doing (C{sd_notify(3)}): a unit of
C{Type=notify} (C{contrib/ldapd.service}) is started once ldapd says
C{READY=1}, which it says when its listeners are bound and its databases
open, and C{STOPPING=1} when it begins to stop.

The protocol is one datagram of C{KEY=VALUE} lines to the Unix socket that
C{$NOTIFY_SOCKET} names (a path, or with a leading C{@} a name in the
abstract namespace); without the variable, as outside systemd, nothing is
sent.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping

from twisted.logger import Logger

__all__ = ["NOTIFY_SOCKET", "notify"]

#: The environment variable naming systemd's notification socket.
NOTIFY_SOCKET = "NOTIFY_SOCKET"

_log = Logger()


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """
    Send systemd a state change, if it is listening.

    @param state: newline-separated assignments (C{"READY=1"}).
    @param environ: where C{NOTIFY_SOCKET} is read; this process's
        environment by default.
    @return: whether it was sent. A socket that cannot be written to is
        logged, not raised: the server serves either way (and systemd,
        waiting for C{READY=1}, says why it gave up).
    """
    path = (os.environ if environ is None else environ).get(NOTIFY_SOCKET, "")
    if path.startswith("@"):
        address = "\0" + path[1:]
    elif path.startswith("/"):
        address = path
    else:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(state.encode("utf-8"))
    except OSError as e:
        _log.warn("cannot notify systemd ({state}) at {path}: {error}", state=state, path=path,
                  error=e.strerror or str(e))
        return False
    return True
