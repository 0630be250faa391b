"""
A small, efficient LDAP load generator, run as its own process.

It sends pre-encoded requests (read from a file, one hex-encoded LDAPMessage
per line, in rotation; line N must have message id N, and the window must be
smaller than the number of lines) over several connections, keeping a window of
outstanding requests on each, and counts the final response of every request
(SearchResultDone, BindResponse, ModifyResponse, ...: any response whose
protocolOp is not a SearchResultEntry or SearchResultReference), and among them
those whose result code is not success. It prints one JSON line: operations,
errors, seconds, p50 and p99 latency in microseconds, and its own CPU seconds,
so that a benchmark can tell whether the client was the bottleneck.

With C{--prelude}, each connection first sends that request (a Bind, say) and
waits for its response before the measured requests start. With
C{--reconnect}, every operation is a connection of its own: connect, send one
request (a Bind), wait for its response, send an Unbind and close; the
latency is that of the whole exchange.

    python benchmarks/_loadgen.py PORT REQUESTS_FILE --seconds 5 --connections 4 --window 16
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import selectors
import socket
import time

_PARTIAL = (0x64, 0x73)  # SearchResultEntry, SearchResultReference
_UNBIND = bytes.fromhex("300502017f4200")  # UnbindRequest, message id 127


def _resultCode(buf: bytearray, op: int) -> int:
    """
    @param op: the offset of a response's protocolOp.
    @return: its LDAPResult's resultCode (0 for responses that have none).
    """
    first = buf[op + 1]
    content = op + 2 + (first & 0x7F if first & 0x80 else 0)
    if buf[content] != 0x0A:
        return 0
    return buf[content + 2]


class _Connection:
    def __init__(self, port: int, requests: list[bytes], window: int, offset: int,
                 prelude: bytes | None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if prelude is not None:
            self.sock.sendall(prelude)
            if not self.sock.recv(1 << 16):
                raise ConnectionError("server closed the connection")
        self.sock.setblocking(False)
        self.requests = requests
        self.window = window
        self.next = offset
        self.inFlight: dict[int, float] = {}
        self.buffer = bytearray()

    def fill(self, now: float, sending: bool, pairs: bool = False) -> None:
        """
        Send requests until the window is full, while C{sending}; with
        C{pairs}, a connection that stops between the two requests of a
        pair (an add and its delete) sends the second one still.
        """
        batch = []
        if sending:
            count = self.window - len(self.inFlight)
        else:
            count = 1 if pairs and self.next % 2 else 0
        for _ in range(count):
            index = self.next % len(self.requests)
            batch.append(self.requests[index])
            self.next += 1
            self.inFlight[index + 1] = now
        if batch:
            self.sock.sendall(b"".join(batch))

    def read(self, latencies: list[float]) -> tuple[int, int]:
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return 0, 0
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data
        buf = self.buffer
        done = errors = 0
        pos = 0
        now = time.perf_counter()
        while len(buf) - pos >= 2:
            first = buf[pos + 1]
            if first < 0x80:
                head, length = 2, first
            else:
                n = first & 0x7F
                if len(buf) - pos < 2 + n:
                    break
                head, length = 2 + n, int.from_bytes(buf[pos + 2 : pos + 2 + n], "big")
            if len(buf) - pos < head + length:
                break
            idLength = buf[pos + head + 1]
            op = pos + head + 2 + idLength
            if buf[op] not in _PARTIAL:
                messageId = int.from_bytes(buf[pos + head + 2 : op], "big")
                latencies.append(now - self.inFlight.pop(messageId))
                done += 1
                errors += _resultCode(buf, op) != 0
            pos += head + length
        del buf[:pos]
        return done, errors


class _Reconnecting:
    """
    One slot of the C{--reconnect} mode: a new connection for every request.
    """

    def __init__(self, port: int, requests: list[bytes], offset: int,
                 selector: selectors.BaseSelector) -> None:
        self.port = port
        self.requests = requests
        self.next = offset
        self.selector = selector
        self.sock: socket.socket | None = None
        self.started = 0.0
        self.buffer = bytearray()

    @property
    def busy(self) -> bool:
        return self.sock is not None

    def connect(self, now: float) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", self.port))
        if code not in (0, errno.EINPROGRESS):
            raise ConnectionError(os.strerror(code))
        self.sock = sock
        self.started = now
        self.buffer.clear()
        self.selector.register(sock, selectors.EVENT_WRITE, self)

    def writable(self) -> None:
        assert self.sock is not None
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise ConnectionError(os.strerror(code))
        self.sock.sendall(self.requests[self.next % len(self.requests)])
        self.next += 1
        self.selector.modify(self.sock, selectors.EVENT_READ, self)

    def read(self, latencies: list[float]) -> tuple[int, int]:
        assert self.sock is not None
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data
        buf = self.buffer
        if len(buf) < 2 or len(buf) < 2 + buf[1]:
            return 0, 0
        error = _resultCode(buf, 2 + 2 + buf[3]) != 0
        self.sock.sendall(_UNBIND)
        self.selector.unregister(self.sock)
        self.sock.close()
        self.sock = None
        latencies.append(time.perf_counter() - self.started)
        return 1, int(error)


def _offset(connection: int, total: int, count: int) -> int:
    """
    Where a connection starts in the requests: connections (of all the load
    generator processes) start evenly apart, at an even index, so that
    requests that go in pairs (an add and its delete) stay paired and no two
    connections send the same request at once.
    """
    return connection * count // total & ~1


def run(port: int, requests: list[bytes], seconds: float, connections: int,
        window: int, prelude: bytes | None = None, reconnect: bool = False,
        first: int = 0, total: int = 0, pairs: bool = False) -> dict[str, float]:
    """
    Drive the server and measure.

    @param first: the number of this process's first connection among those
        of all the load generator processes.
    @param total: how many connections they have together (C{connections}
        when 0).
    @param pairs: whether the requests go in pairs (an add and its delete),
        each connection ending on a whole pair.
    """
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    done = errors = 0
    total = total or connections
    offsets = [_offset(first + i, total, len(requests)) for i in range(connections)]
    if reconnect:
        slots = [_Reconnecting(port, requests, offset, selector) for offset in offsets]
    else:
        conns = [_Connection(port, requests, window, offset, prelude) for offset in offsets]
        for c in conns:
            selector.register(c.sock, selectors.EVENT_READ, c)
    cpu0 = time.process_time()
    start = time.perf_counter()
    end = start + seconds
    if reconnect:
        for s in slots:
            s.connect(start)
    else:
        for c in conns:
            c.fill(start, True)
    while True:
        now = time.perf_counter()
        sending = now < end
        if reconnect:
            if not sending and not any(s.busy for s in slots):
                break
        elif not sending and all(not c.inFlight for c in conns):
            break
        for key, events in selector.select(timeout=1.0):
            c = key.data
            if reconnect and events & selectors.EVENT_WRITE:
                c.writable()
                continue
            n, e = c.read(latencies)
            done += n
            errors += e
            if reconnect:
                if n and time.perf_counter() < end:
                    c.connect(time.perf_counter())
            else:
                c.fill(time.perf_counter(), time.perf_counter() < end, pairs)
    elapsed = time.perf_counter() - start
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1e6 if latencies else 0.0

    return {
        "operations": done,
        "errors": errors,
        "seconds": elapsed,
        "p50_us": percentile(0.50),
        "p99_us": percentile(0.99),
        "client_cpu_s": time.process_time() - cpu0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("requests")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--prelude", help="a hex-encoded request each connection sends first")
    parser.add_argument("--reconnect", action="store_true",
                        help="a new connection for every request, closed with an Unbind")
    parser.add_argument("--first", type=int, default=0,
                        help="the number of the first connection among all load generators'")
    parser.add_argument("--pairs", action="store_true",
                        help="requests go in pairs; each connection ends on a whole pair")
    parser.add_argument("--total", type=int, default=0,
                        help="the connections of all load generators together")
    args = parser.parse_args()
    with open(args.requests) as f:
        requests = [bytes.fromhex(line.strip()) for line in f if line.strip()]
    prelude = bytes.fromhex(args.prelude) if args.prelude else None
    result = run(args.port, requests, args.seconds, args.connections, args.window, prelude,
                 args.reconnect, args.first, args.total, args.pairs)
    result["pid"] = os.getpid()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
