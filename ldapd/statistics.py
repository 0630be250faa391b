"""
What a server process counts as it runs, for C{cn=Monitor}
(L{ldapd.plugins.monitor}).

The counters are plain integers that the protocol and the Directory
increment in the one place each event happens: a request decoded, an
operation over, a PDU written, a search entry or reference sent. They cost
an attribute increment each and are always kept; nothing is allocated per
operation for them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["ServerStatistics"]


class ServerStatistics:
    """
    The counters of one server process. With C{[server] workers = N} each
    worker has its own, counting only the connections it accepted.

    @ivar started: the clock time (seconds since the epoch) the server started.
    @ivar initiated: requests received, by operation
        (L{ldapd.requests.Request.operation}: C{"search"}, C{"unbind"}, ...).
    @ivar completed: requests over (answered, abandoned, or, for Unbind and
        Abandon, carried out), by request class name.
    @ivar bytes: the bytes of the PDUs sent.
    @ivar pdus: the PDUs sent (every response, entry and reference).
    @ivar entries: the search result entries sent.
    @ivar referrals: the search result references sent.
    @ivar totalConnections: the connections accepted since start.
    @ivar connections: the open connections' protocols
        (L{ldapd.protocol.LDAPServerProtocol}), by connection id.
    @ivar throttledBinds: the binds refused unchecked by the bind throttle
        (L{ldapd.throttle}).
    @ivar listeners: the endpoint descriptions (C{tcp:10389:interface=...})
        the server listens on; empty for a Directory served another way.
    """

    __slots__ = ("bytes", "completed", "connections", "entries", "initiated", "listeners", "pdus",
                 "referrals", "started", "throttledBinds", "totalConnections")

    def __init__(self, started: float) -> None:
        """
        @param started: the clock time the server started.
        """
        self.started = started
        self.initiated: defaultdict[str, int] = defaultdict(int)
        self.completed: defaultdict[str, int] = defaultdict(int)
        self.bytes = 0
        self.pdus = 0
        self.entries = 0
        self.referrals = 0
        self.throttledBinds = 0
        self.totalConnections = 0
        self.connections: dict[int, Any] = {}
        self.listeners: list[str] = []
