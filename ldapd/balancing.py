"""
Least-connections placement of the connections of C{[server] workers = N}.

The supervisor accepts every connection itself and hands it to the worker
that holds the fewest, as nginx's and 389 DS's users expect of a server of
several processes. Left to the kernel (every worker accepting on one
inherited socket), 8 connections opened at once were split 7/1 or 5/3;
with one request outstanding per connection, the busier worker set the pace
and two workers served little more than one.

Each worker has one channel to the supervisor: an C{AF_UNIX}
C{SOCK_SEQPACKET} socket pair, whose message boundaries keep each
descriptor with its own header. The supervisor sends a connection as one
message: the listener's index in the worker's C{[server] listen} (two
bytes) with the connected socket (C{SCM_RIGHTS}), and closes its copy. The
worker sends one byte per event: L{ACCEPTING} when it starts taking
connections, L{PAUSED} when it stops, L{CLOSED} when a connection it was
handed has closed. The supervisor counts each worker's open connections
from these, reads every report already sent before it places a connection,
and stops accepting (connections wait in the listen backlog) while no
worker takes them. A worker that dies closes its end: it gets no more
connections, and the one started in its place begins at zero.

The request path is untouched: once handed over, a connection is the
worker's own socket, as if it had accepted it.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any, Callable, Iterable, Sequence

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from twisted.python import failure
from zope.interface import implementer

__all__ = ["ACCEPTING", "CLOSED", "PAUSED", "ConnectionBalancer", "HandedEndpoint",
           "WorkerChannel", "channelPair"]

#: A worker's report: it takes connections (its listeners are reading).
ACCEPTING = b"a"
#: A worker's report: it takes no more connections for now.
PAUSED = b"p"
#: A worker's report: a connection handed to it has closed.
CLOSED = b"c"

#: The header of a connection handed to a worker: the listener's index.
_HEADER = struct.Struct("!H")

#: Connections accepted on one wake-up of a listener, as Twisted's ports.
_ACCEPTS_PER_READ = 100

#: accept() errors after which the listener is tried again on its next wake-up.
_ACCEPT_AGAIN = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EMFILE, errno.ENFILE,
                           errno.ENOBUFS, errno.ENOMEM})


def channelPair() -> tuple[socket.socket, socket.socket]:
    """
    @return: a new channel: the supervisor's end (not blocking) and the
        worker's end, which the worker inherits.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    return ours, theirs


@implementer(IReadDescriptor)
class _WorkerLink:
    """
    The supervisor's end of one worker's channel, and what it knows of the
    worker: whether it takes connections, and how many it holds.

    @ivar number: the worker's number.
    @ivar listen: the worker's listeners as configured, in its order.
    @ivar accepting: whether the worker said it takes connections.
    @ivar connections: the connections handed to it that it has not
        reported closed.
    """

    def __init__(self, balancer: ConnectionBalancer, number: int, channel: socket.socket,
                 listen: Sequence[str]) -> None:
        self._balancer = balancer
        self._channel: socket.socket | None = channel
        self.number = number
        self.listen = tuple(listen)
        self.accepting = False
        self.connections = 0

    def fileno(self) -> int:
        return self._channel.fileno() if self._channel is not None else -1

    def logPrefix(self) -> str:
        return f"worker {self.number} channel"

    def doRead(self) -> None:
        """
        Take in every report the worker has sent.
        """
        while self._channel is not None:
            try:
                report = self._channel.recv(16)
            except BlockingIOError:
                return
            except OSError:
                report = b""
            if not report:
                self._balancer.remove(self)
                return
            for event in report:
                self._reported(bytes((event,)))

    def _reported(self, event: bytes) -> None:
        if event == CLOSED:
            self.connections = max(0, self.connections - 1)
        elif event in (ACCEPTING, PAUSED):
            self.accepting = event == ACCEPTING
            self._balancer.update()

    def hand(self, connection: socket.socket, description: str) -> bool:
        """
        Send the worker a connection accepted on a listener.

        @return: whether it was sent; if not, the worker cannot be reached
            (it ended, or it has a full queue of connections not yet taken).
        """
        if self._channel is None:
            return False
        try:
            sent = socket.send_fds(self._channel, [_HEADER.pack(self.listen.index(description))],
                                   [connection.fileno()])
        except BlockingIOError:
            return False
        except OSError:
            self._balancer.remove(self)
            return False
        if sent:
            self.connections += 1
        return bool(sent)

    def connectionLost(self, reason: failure.Failure) -> None:
        """
        The reactor dropped this descriptor: the worker gets no more
        connections.
        """
        self._balancer.remove(self)

    def close(self) -> None:
        """
        Close the supervisor's end: the worker sees its channel end.
        """
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self.accepting = False


@implementer(IReadDescriptor)
class _Acceptor:
    """
    Accepts on one of the supervisor's listening ports and has each
    connection placed.
    """

    _log = Logger()

    def __init__(self, balancer: ConnectionBalancer, description: str, port: Any) -> None:
        self._balancer = balancer
        self.description = description
        self.port = port
        self.reading = False

    def fileno(self) -> int:
        return int(self.port.socket.fileno())

    def logPrefix(self) -> str:
        return f"acceptor of {self.description}"

    def doRead(self) -> None:
        listening = self.port.socket
        for _ in range(_ACCEPTS_PER_READ):
            try:
                connection, _ = listening.accept()
            except OSError as e:
                if e.errno not in _ACCEPT_AGAIN and e.errno != errno.ECONNABORTED:
                    self._log.error("accept on {listener}: {error}",
                                              listener=self.description, error=e)
                if e.errno != errno.ECONNABORTED:
                    return
                continue
            with connection:
                self._balancer.place(connection, self.description)
            if not self.reading:
                return

    def connectionLost(self, reason: failure.Failure) -> None:
        """
        The reactor dropped this descriptor (its port is closed by its
        owner).
        """
        self.reading = False


class ConnectionBalancer:
    """
    The supervisor's side: accepts on the listening ports and hands each
    connection to the worker, among those that take connections from that
    listener, with the fewest open (the lowest number among equals).
    """

    _log = Logger()

    def __init__(self, reactor: Any) -> None:
        """
        @param reactor: an C{IReactorFDSet}.
        """
        self._reactor = reactor
        self._links: list[_WorkerLink] = []
        self._acceptors: dict[str, _Acceptor] = {}

    def listen(self, ports: Iterable[tuple[str, Any]]) -> None:
        """
        Accept on these listening ports (not reading themselves: the
        balancer reads their sockets), and no longer on any other. Call it
        before a port it accepted on is closed.

        @param ports: listeners as configured, with their listening ports.
        """
        wanted = dict(ports)
        for description, acceptor in list(self._acceptors.items()):
            if wanted.get(description) is not acceptor.port:
                self._stopAccepting(acceptor)
                del self._acceptors[description]
        for description, port in wanted.items():
            if description not in self._acceptors:
                self._acceptors[description] = _Acceptor(self, description, port)
        self.update()

    def add(self, number: int, channel: socket.socket, listen: Sequence[str]) -> _WorkerLink:
        """
        Start reading a new worker's reports; it gets connections once it
        says it takes them.

        @param number: the worker's number.
        @param channel: the supervisor's end of its channel (L{channelPair}).
        @param listen: its listeners as configured, in its order: a
            connection is handed with its listener's index in them.
        @return: the worker's link, for L{forget}.
        """
        link = _WorkerLink(self, number, channel, listen)
        self._links.append(link)
        self._reactor.addReader(link)
        return link

    def remove(self, link: _WorkerLink) -> None:
        """
        Close a worker's channel (it ended, or its channel did) and give it
        no more connections.

        @param link: what L{add} returned for it.
        """
        if link in self._links:
            self._links.remove(link)
            self._reactor.removeReader(link)
            link.close()
            self.update()

    def connections(self) -> dict[int, int]:
        """
        @return: the open connections of each worker that has a channel, by
            number, as the reports read so far give them.
        """
        return {link.number: link.connections for link in self._links}

    def place(self, connection: socket.socket, description: str) -> None:
        """
        Hand a connection to the worker with the fewest, after reading the
        reports every worker has sent so far; close it if no worker can
        take it.

        @param connection: the accepted socket; the caller closes its copy.
        @param description: the listener that accepted it, as configured.
        """
        for link in list(self._links):
            link.doRead()
        candidates = sorted((link for link in self._links
                             if link.accepting and description in link.listen),
                            key=lambda link: (link.connections, link.number))
        for link in candidates:
            if link.hand(connection, description):
                return
        self._log.warn("no worker could take a connection on {listener}; closed",
                       listener=description)

    def update(self) -> None:
        """
        Read each listening port while some worker takes its connections,
        and leave them in its backlog while none does.
        """
        for description, acceptor in self._acceptors.items():
            wanted = any(link.accepting and description in link.listen for link in self._links)
            if wanted and not acceptor.reading:
                acceptor.reading = True
                self._reactor.addReader(acceptor)
            elif not wanted and acceptor.reading:
                self._stopAccepting(acceptor)

    def _stopAccepting(self, acceptor: _Acceptor) -> None:
        if acceptor.reading:
            acceptor.reading = False
            self._reactor.removeReader(acceptor)

    def close(self) -> None:
        """
        Stop accepting and close every channel.
        """
        self.listen([])
        for link in list(self._links):
            self.remove(link)


class _HandedPort:
    """
    What L{HandedEndpoint.listen} returns: stands for a listening port of
    the worker's (start and stop reading, stop listening).
    """

    def __init__(self, channel: WorkerChannel, index: int, factory: Any) -> None:
        self._channel = channel
        self.index = index
        self.factory = factory
        self.reading = False

    def startReading(self) -> None:
        self.reading = True
        self._channel.update()

    def stopReading(self) -> None:
        self.reading = False
        self._channel.update()

    def stopListening(self) -> None:
        self.reading = False
        self._channel.forget(self)


@implementer(IReadDescriptor)
class WorkerChannel:
    """
    A worker's end of its channel to the supervisor: takes the connections
    handed to it, serves each with its listener's factory, and reports
    what the supervisor counts.
    """

    _log = Logger()

    def __init__(self, reactor: Any, fileno: int) -> None:
        """
        @param reactor: an C{IReactorFDSet} and C{IReactorSocket}.
        @param fileno: the inherited descriptor of the channel.
        """
        self._reactor = reactor
        self._socket: socket.socket | None = socket.socket(fileno=fileno)
        self._socket.setblocking(False)
        # Inherited, it is no process's but this one's.
        self._socket.set_inheritable(False)
        self._ports: dict[int, _HandedPort] = {}
        self._reading = False

    def endpoint(self, index: int) -> HandedEndpoint:
        """
        @param index: a listener's index in C{[server] listen}.
        @return: the endpoint of that listener's connections.
        """
        return HandedEndpoint(self, index)

    def _listen(self, index: int, factory: Any) -> _HandedPort:
        port = self._ports[index] = _HandedPort(self, index, factory)
        return port

    def fileno(self) -> int:
        return self._socket.fileno() if self._socket is not None else -1

    def logPrefix(self) -> str:
        return "supervisor channel"

    def update(self) -> None:
        """
        Read the channel while one of the listeners is reading, and tell
        the supervisor when that changes.
        """
        reading = any(port.reading for port in self._ports.values())
        if reading == self._reading or self._socket is None:
            return
        self._reading = reading
        if reading:
            self._reactor.addReader(self)
        else:
            self._reactor.removeReader(self)
        self._report(ACCEPTING if reading else PAUSED)

    def forget(self, port: _HandedPort) -> None:
        """
        A listener stopped listening: once none is left, close the channel,
        which the supervisor takes as this worker taking no more.
        """
        self._ports.pop(port.index, None)
        if self._ports:
            self.update()
        else:
            self._close()

    def doRead(self) -> None:
        """
        Take every connection the supervisor has handed over.
        """
        while self._socket is not None:
            try:
                header, fds, _, _ = socket.recv_fds(self._socket, _HEADER.size, 1)
            except BlockingIOError:
                return
            except OSError:
                header, fds = b"", []
            if not header and not fds:
                self._log.error("the supervisor closed the channel")
                self.connectionLost(failure.Failure(ConnectionError("channel closed")))
                return
            if not fds:
                # The descriptor did not reach this process (out of file
                # descriptors): the connection is gone, but counted.
                self._log.error("a connection handed over was lost: no descriptor came with it")
                self._report(CLOSED)
            for fd in fds:
                self._serve(fd, _HEADER.unpack(header)[0] if len(header) == _HEADER.size else -1)

    def _serve(self, fd: int, index: int) -> None:
        connection = socket.socket(fileno=fd)
        with connection:
            port = self._ports.get(index)
            if port is None or not port.reading:
                self._report(CLOSED)
                return
            connection.setblocking(False)
            try:
                # The reactor takes a copy of the descriptor.
                self._reactor.adoptStreamConnection(
                    connection.fileno(), connection.family, _Reporting(port.factory, self))
            except OSError:
                # The client went away before the connection was handed over.
                self._report(CLOSED)

    def closed(self) -> None:
        """
        A connection handed to this worker has closed.
        """
        self._report(CLOSED)

    def _report(self, event: bytes) -> None:
        if self._socket is None:
            return
        try:
            self._socket.send(event)
        except OSError as e:
            self._log.error("cannot report to the supervisor: {error}", error=e)

    def connectionLost(self, reason: failure.Failure) -> None:
        """
        The supervisor is gone: take no more connections.
        """
        self._close()

    def _close(self) -> None:
        """
        Stop reading the channel and close it.
        """
        if self._socket is None:
            return
        if self._reading:
            self._reactor.removeReader(self)
            self._reading = False
        self._socket.close()
        self._socket = None


class HandedEndpoint:
    """
    A worker's stream server endpoint for one listener: the connections the
    supervisor accepted on it and handed to this worker.
    """

    def __init__(self, channel: WorkerChannel, index: int) -> None:
        """
        @param channel: the worker's channel.
        @param index: the listener's index in C{[server] listen}.
        """
        self._channel = channel
        self._index = index

    def listen(self, protocolFactory: Any) -> defer.Deferred[Any]:
        """
        @return: a Deferred that has fired with the listening port (not
            reading: connections are taken once it starts reading).
        """
        return defer.succeed(self._channel._listen(self._index, protocolFactory))


class _Reporting(protocol.Factory):
    """
    Builds a handed connection's protocol with its listener's factory, and
    reports its end to the supervisor.
    """

    def __init__(self, wrapped: Any, channel: WorkerChannel) -> None:
        self._wrapped = wrapped
        self._channel = channel

    def buildProtocol(self, addr: Any) -> Any:
        built = self._wrapped.buildProtocol(addr)
        if built is None:
            self._channel.closed()
            return None
        lost: Callable[[failure.Failure], None] = built.connectionLost

        # The protocol's own, so that the bytes of the connection pass
        # through nothing more than they would on an accepting worker.
        def connectionLost(reason: failure.Failure) -> None:
            try:
                lost(reason)
            finally:
                self._channel.closed()

        built.connectionLost = connectionLost
        return built
