"""
What the syncrepl provider's persist phase and persistent search share: a
L{Watch} that an operation waits on between changes, and the test of whether
an entry is one a search would return.
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet import defer

from ldapd._codec import Control
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.operation import Operation, Scope

__all__ = ["Watch", "inScope", "visible", "withControls"]

_STYLES = {Scope.BASE: "base", Scope.ONE: "one", Scope.SUB: "subtree"}


def inScope(op: Operation, ndn: DN) -> bool:
    """
    @param op: a search.
    @param ndn: a normalised DN.
    @return: whether C{ndn} is in the search's scope.
    """
    assert op.search is not None
    return ndn.inScope(op.search.base, _STYLES[op.search.scope])


def visible(directory: Any, op: Operation, entry: Entry) -> Entry | None:
    """
    @param directory: the L{ldapd.directory.Directory}.
    @param op: a search.
    @param entry: an entry as stored.
    @return: the entry as the search would return it (filtered by the
        plugins: access control), or C{None} when it is out of the search's
        scope, does not match its filter, or is withheld.
    """
    assert op.search is not None
    if not inScope(op, entry.ndn) or op.search.filter.match(entry) is not True:
        return None
    return directory.plugins.filterEntry(op, entry)  # type: ignore[no-any-return]


def withControls(reply: Any, controls: Sequence[Control]) -> Any:
    """
    @param reply: an operation's reply function.
    @param controls: response controls.
    @return: a reply function that sends each PDU with C{controls}.
    """

    def send(pdu: bytes, _: Sequence[Control] = ()) -> None:
        reply(pdu, controls)

    return send


class Watch:
    """
    What a persistent operation waits on: woken when told (a change was
    committed), every C{interval} seconds if there is one (to see changes
    other processes commit), and when the operation is abandoned or its
    connection closes. L{fail} ends it with an error instead.
    """

    def __init__(self, op: Operation, interval: float | None = None) -> None:
        """
        @param op: the operation; it is woken when abandoned.
        @param interval: the longest wait in L{wait}, in seconds, or C{None}.
        """
        self._op = op
        self._interval = interval
        self._waiting: defer.Deferred[None] | None = None
        self._woken = False
        self._error: Exception | None = None
        op.onAbandon(self.wake)

    def wake(self) -> None:
        """
        End the current wait, or the next one if none is under way.
        """
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting.callback(None)
        else:
            self._woken = True

    def fail(self, error: Exception) -> None:
        """
        End the operation: the current or next wait raises C{error}.
        """
        if self._error is None:
            self._error = error
        self.wake()

    def _check(self) -> None:
        self._op.check()
        if self._error is not None:
            raise self._error

    async def wait(self) -> None:
        """
        Wait until woken (or C{interval} passes).

        @raise ldapd.operation.Abandoned: if the operation was abandoned.
        @raise Exception: what L{fail} was given.
        """
        self._check()
        if not self._woken:
            waiting = self._waiting = defer.Deferred()
            timer = None
            if self._interval is not None:
                timer = self._op.clock.callLater(self._interval, self.wake)
            try:
                await waiting
            finally:
                if timer is not None and timer.active():
                    timer.cancel()
        self._woken = False
        self._check()

    async def writable(self) -> None:
        """
        Wait until the client can take more responses (back-pressure: it is
        reading what was sent). A wake that comes meanwhile is kept for the
        next L{wait}.

        @raise ldapd.operation.Abandoned: if the operation was abandoned.
        @raise Exception: what L{fail} was given.
        """
        while True:
            self._check()
            ready = self._op.connection.whenWritable()
            if ready.called:
                return
            stop = self._waiting = defer.Deferred()
            winner, _ = await defer.race([ready, stop])
            if self._waiting is stop:
                self._waiting = None
            if winner == 0:
                self._check()
                return
            self._woken = True
