"""
The context of a request: the L{Connection} it arrived on and the L{Operation}
itself, which is what the Directory, backends and plugins see.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from ldapd.dn import DN
from ldapd.requests import RawControl, Request

__all__ = [
    "ANONYMOUS",
    "Abandoned",
    "Canceled",
    "Connection",
    "Identity",
    "Operation",
    "Scope",
    "SearchParameters",
]


class Abandoned(Exception):
    """
    The operation was abandoned (or its connection closed); no response is sent.
    """


class Canceled(ldaperrors.LDAPException):
    """
    The operation was canceled by a Cancel request (RFC 3909): it ends with
    the result canceled (118).
    """

    resultCode = 118
    name = b"canceled"


@dataclass(frozen=True)
class Identity:
    """
    Who is asking: the authorization identity of a connection.

    @ivar dn: the bound DN, or C{None} for anonymous.
    @ivar ndn: the normalised bound DN, or C{None}.
    @ivar isRoot: whether this is a database's root DN, to which no limits
        or access rules apply.
    """

    dn: DN | None = None
    ndn: DN | None = None
    isRoot: bool = False

    @property
    def anonymous(self) -> bool:
        """
        Whether this is the anonymous identity.
        """
        return self.dn is None

    @property
    def authzId(self) -> str:
        """
        The authorization identity as WhoAmI reports it (RFC 4532): C{dn:...} or empty.
        """
        return "" if self.dn is None else f"dn:{self.dn}"


#: The identity of a connection that has not bound (or bound anonymously).
ANONYMOUS = Identity()

_connectionIds = itertools.count(1)


class Connection:
    """
    The state of one client connection that operations may read.

    @ivar id: a number unique in this process, for logs.
    @ivar peer: the client's address, as text.
    @ivar address: the client's IP address, or C{None} (a C{unix:} socket,
        the server's own operations).
    @ivar identity: the current authorization identity.
    @ivar secure: whether the connection is protected by TLS.
    @ivar clock: the reactor's clock.
    @ivar local: whether it came through a local (C{unix:}) socket, which
        is as confidential as TLS.
    @ivar peerCredentials: the client process's C{(uid, gid)} on a local
        socket, when the system tells them; C{None} otherwise.
    @ivar peerCertificate: the client's TLS certificate (a C{cryptography}
        C{x509.Certificate}), once the handshake has verified one; or C{None}.
    @ivar startTLS: when the server has TLS, called with the StartTLS
        operation to switch the connection to TLS right after its response;
        it raises C{LDAPOperationsError} if other requests are outstanding.
        C{None} when the server has no TLS.
    @ivar started: the clock time the connection was made.
    @ivar activity: the clock time its last operation started.
    @ivar opsReceived: the requests it has received.
    @ivar opsCompleted: those that are over.
    @ivar transaction: the LDAP transaction under way on the connection
        (RFC 5805; an L{ldapd.transactions.Transaction}), or C{None}: one at
        a time, and forgotten with its updates when the connection closes.
    """

    def __init__(self, peer: str, clock: IReactorTime, secure: bool = False) -> None:
        self.id = next(_connectionIds)
        self.started = self.activity = clock.seconds()
        self.opsReceived = 0
        self.opsCompleted = 0
        self.peer = peer
        self.address: str | None = None
        self.clock = clock
        self.secure = secure
        self.local = False
        self.peerCredentials: tuple[int, int] | None = None
        self.peerCertificate: Any = None
        self.startTLS: Callable[[Operation], None] | None = None
        self.identity: Identity = ANONYMOUS
        self.pagedSearches: dict[bytes, Any] = {}
        self.transaction: Any = None
        self._paused = False
        self._waiting: list[defer.Deferred[None]] = []

    def pause(self) -> None:
        """
        The transport's buffer is full: operations that call
        L{Operation.cooperate} wait until L{resume}.
        """
        self._paused = True

    def resume(self) -> None:
        """
        The transport can take more data.
        """
        self._paused = False
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def whenWritable(self) -> defer.Deferred[None]:
        """
        @return: a Deferred that fires when the transport can take more data.
        """
        if not self._paused:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d


class Scope(IntEnum):
    """
    The scope of a search (RFC 4511 §4.5.1.2).
    """

    BASE = 0
    ONE = 1
    SUB = 2


@dataclass
class SearchParameters:
    """
    A decoded search request, as backends need it.

    @ivar base: the normalised base DN.
    @ivar filter: the compiled filter (an L{ldapd.filters.Filter}) backends
        select entries with.
    @ivar subordinateFilter: when the request's filter tests hasSubordinates
        or numSubordinates, which no backend stores, that filter: C{filter}
        is then a looser one without those assertions, and this one is
        tested on each entry it selects, with its children counted.
    @ivar matchedValues: the compiled filter items of the Matched Values
        control, or C{None} without it.
    @ivar counted: whether each entry gets its subordinate counts as
        attributes before the plugins filter it (the filter tests them, or
        the attribute list asks for them), so that access rules apply to
        them as to stored attributes.
    """

    base: DN
    scope: Scope
    filter: Any
    attributes: list[str] = field(default_factory=list)
    typesOnly: bool = False
    subordinateFilter: Any = None
    matchedValues: Any = None
    counted: bool = False


class Operation:
    """
    One request being processed.

    @ivar connection: the connection it arrived on.
    @ivar messageId: the request's message id.
    @ivar request: the request (one of L{ldapd.requests}' types); C{None}
        for the server's own operations that stand for no request.
    @ivar rawControls: the request's controls as the client sent them.
    @ivar controls: the controls the Directory decoded and will honour, by
        OID: the typed objects their registrations decode
        (L{ldapd.extensions.ControlType}).
    @ivar responseControls: controls plugins add to the final response
        (L{ldapd._codec.Control} tuples), e.g. the password policy control.
    @ivar identity: who the operation runs as, which access rules, limits
        and logs see: the connection's identity when the request arrived,
        or the one it assumed through proxied authorization (L{ldapd.authz}).
    @ivar authenticatedIdentity: the connection's identity when the request
        arrived: under proxied authorization, who asked to act as
        C{identity}.
    @ivar sizeLimit: the number of entries a search may return; 0 is no limit.
    @ivar deadline: the clock time by which the operation must end, or C{None}.
    @ivar search: the search parameters, for searches.
    @ivar internal: whether the server itself issued this operation (plugins'
        own reads and writes), to which access rules do not apply.
    @ivar replicated: whether this is a syncrepl consumer applying a change
        its provider made (L{ldapd.directory.Directory.writeReplicated}).
    @ivar originCSN: for a replicated delete, the CSN its origin gave it,
        when the provider sent it (no entry is left to carry it), so that
        the changelog records the change with it; else C{None}.
    @ivar abandoned: whether it was abandoned: it sends nothing more.
    @ivar canceled: whether a Cancel request asked it to stop.
    @ivar cancelTookEffect: whether it stopped for that, answering canceled
        (118), rather than ending first.
    """

    def __init__(
        self,
        connection: Connection,
        messageId: int,
        request: Request | None,
        rawControls: Sequence[RawControl] = (),
        internal: bool = False,
    ) -> None:
        self.connection = connection
        self.messageId = messageId
        self.request = request
        self.rawControls = rawControls
        self.controls: dict[str, Any] = {}
        self.responseControls: list[Any] = []
        self.identity = self.authenticatedIdentity = connection.identity
        self.internal = internal
        self.replicated = False
        self.originCSN: bytes | None = None
        self.sizeLimit = 0
        self.deadline: float | None = None
        self.search: SearchParameters | None = None
        self.abandoned = False
        self.canceled = False
        self.cancelTookEffect = False
        self.timedOut = False
        self._onAbandon: list[Callable[[], None]] = []

    @property
    def clock(self) -> IReactorTime:
        """
        The reactor's clock.
        """
        return self.connection.clock

    def abandon(self) -> None:
        """
        Mark the operation abandoned and run what was registered with
        L{onAbandon}.
        """
        if self.abandoned:
            return
        self.abandoned = True
        callbacks, self._onAbandon = self._onAbandon, []
        for cb in callbacks:
            cb()

    def cancel(self) -> None:
        """
        Mark the operation canceled (RFC 3909): it stops where it next
        checks (L{check}) and answers canceled (118). What was registered
        with L{onAbandon} runs, to wake it where it waits.
        """
        if self.abandoned or self.canceled:
            return
        self.canceled = True
        callbacks, self._onAbandon = self._onAbandon, []
        for cb in callbacks:
            cb()

    def onAbandon(self, callback: Callable[[], None]) -> None:
        """
        @param callback: called once if the operation is abandoned or
            canceled.
        """
        if self.abandoned or self.canceled:
            callback()
        else:
            self._onAbandon.append(callback)

    def check(self) -> None:
        """
        Raise if the operation must stop: backends call this while they work.

        @raise Abandoned: if it was abandoned.
        @raise Canceled: if it was canceled.
        @raise ldaperrors.LDAPTimeLimitExceeded: if its deadline has passed.
        """
        if self.abandoned:
            raise Abandoned()
        if self.canceled:
            self.cancelTookEffect = True
            raise Canceled("canceled")
        if self.timedOut or (self.deadline is not None and self.clock.seconds() >= self.deadline):
            self.timedOut = True
            raise ldaperrors.LDAPTimeLimitExceeded("time limit exceeded")

    def cooperate(self) -> defer.Deferred[None]:
        """
        Let the reactor serve others, and wait while the client is not reading.
        Long-running backend loops await this every few hundred entries.

        @return: a Deferred that fires when the operation may go on.
        """
        d = task.deferLater(self.clock, 0, lambda: None)
        d.addCallback(lambda _: self.connection.whenWritable())
        return d
