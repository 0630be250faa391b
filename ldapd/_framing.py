"""
Framing of the client's byte stream into LDAP messages, with no I/O.

The protocol feeds received bytes to a L{Framer} and pulls messages out. The
length of each PDU is read from its header and checked against the maximum
before any of it is buffered beyond what has arrived, so a client cannot make
the server allocate what it claims. The protocol sets the maximum for who the
client is (as slapd's C{sockbuf_max_incoming} and C{sockbuf_max_incoming_auth}),
and every framer of a server counts what it holds against one L{BufferBudget}.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldaptor.protocols.ldap import ldaperrors

from ldapd._codec import decodeMessage, filterShape, lengthAt
from ldapd.filters import MAX_DEPTH, nestedTooDeep
from ldapd.limits import tooManyComponents
from ldapd.requests import Message

__all__ = [
    "BadRequest",
    "BufferBudget",
    "Framer",
    "MalformedPDU",
    "Oversized",
    "DEFAULT_MAX_ANONYMOUS_PDU_SIZE",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_PDU_SIZE",
]

#: The default largest PDU accepted from a bound client: the length its
#: header announces, in bytes (slapd's C{sockbuf_max_incoming_auth}).
DEFAULT_MAX_PDU_SIZE = 4194303

#: The default largest PDU accepted from an anonymous client (slapd's
#: C{sockbuf_max_incoming}).
DEFAULT_MAX_ANONYMOUS_PDU_SIZE = 262143

#: The default for the bytes all connections together may hold in requests
#: not yet received in full.
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024


class MalformedPDU(Exception):
    """
    The stream is not a sequence of well-framed LDAPMessages; the connection
    cannot continue (a Notice of Disconnection is due).
    """


class Oversized(Exception):
    """
    A PDU announces more than the connection may send, or the bytes received
    would take the server past its L{BufferBudget}. The connection is closed
    without a word, as slapd closes it when C{sockbuf_max_incoming} is passed.
    """


class BufferBudget:
    """
    The bytes all the connections of a server may hold together in requests
    they have not yet received in full. Each L{Framer} charges what it
    buffers and releases what it takes out or drops, so that many clients
    each sending a large PDU slowly cannot exhaust memory between them.

    @ivar limit: the most bytes (0: no limit).
    @ivar used: the bytes held now.
    """

    def __init__(self, limit: int = DEFAULT_MAX_BUFFERED_BYTES) -> None:
        """
        @param limit: the most bytes (0: no limit).
        """
        self.limit = limit
        self.used = 0

    def charge(self, n: int) -> bool:
        """
        Take C{n} bytes from the budget, if it has them.

        @return: whether it had them; if not, nothing was taken.
        """
        if self.limit and self.used + n > self.limit:
            return False
        self.used += n
        return True

    def release(self, n: int) -> None:
        """
        Give C{n} bytes back.
        """
        self.used -= n


@dataclass(frozen=True)
class BadRequest:
    """
    A well-framed PDU whose operation could not be decoded. The connection
    survives: the request gets protocolError in the response of its type.

    @ivar messageId: the message id from the envelope.
    @ivar tag: the protocolOp's identifier octet.
    @ivar reason: why decoding failed.
    @ivar error: the error the request gets in place of protocolError with
        "decoding error": that of the limit its filter passed
        (adminLimitExceeded, or protocolError saying it is nested too
        deeply); or C{None}.
    """

    messageId: int
    tag: int
    reason: str
    error: ldaperrors.LDAPException | None = None


class Framer:
    """
    Splits a byte stream into decoded L{Message}s.

    @ivar maxPDUSize: the largest PDU accepted: the length its header
        announces, as slapd counts it. The protocol changes it when the
        client binds.
    @ivar maxFilterComponents: the most components a search filter may have
        (0: no limit, nor a check of depth); a search with more, or nested
        deeper than L{ldapd.filters.MAX_DEPTH}, is refused without its
        filter being decoded.
    """

    def __init__(self, maxPDUSize: int = DEFAULT_MAX_PDU_SIZE, budget: BufferBudget | None = None,
                 maxFilterComponents: int = 0) -> None:
        """
        @param maxPDUSize: the largest PDU accepted.
        @param budget: what all the server's framers may buffer together;
            a budget of its own, without limit, by default.
        @param maxFilterComponents: the most components a search filter may have.
        """
        self.maxPDUSize = maxPDUSize
        self.maxFilterComponents = maxFilterComponents
        self._budget = budget if budget is not None else BufferBudget(0)
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """
        The number of bytes received and not yet taken as messages.
        """
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """
        Add received bytes.

        @param data: the bytes.
        @raise Oversized: if the budget cannot hold them; they are not added.
        """
        if not self._budget.charge(len(data)):
            raise Oversized(
                f"{len(data)} more bytes would pass the server's buffer budget of {self._budget.limit}"
            )
        self._buffer += data

    def close(self) -> None:
        """
        Drop what is buffered and give it back to the budget: the connection
        is over.
        """
        self._take(len(self._buffer))

    def _take(self, n: int) -> None:
        """
        Remove the first C{n} bytes of the buffer. An emptied buffer is
        replaced, so that the memory a large PDU took is freed at once
        rather than kept with the framer.
        """
        if n == len(self._buffer):
            self._buffer = bytearray()
        else:
            del self._buffer[:n]
        self._budget.release(n)

    def next(self) -> Message | BadRequest | None:
        """
        Take the next complete message from the buffer.

        @return: the message, a L{BadRequest}, or C{None} if more bytes are needed.
        @raise MalformedPDU: if the stream is not LDAP.
        @raise Oversized: if the PDU is larger than C{maxPDUSize}.
        """
        buf = self._buffer
        if len(buf) < 2:
            return None
        if buf[0] != 0x30:
            raise MalformedPDU(f"expected an LDAPMessage SEQUENCE, got tag 0x{buf[0]:02x}")
        try:
            found = lengthAt(buf, 1)
        except ValueError as e:
            raise MalformedPDU(f"unsupported length encoding: {e}") from None
        if found is None:
            return None
        length, header = found
        if length > self.maxPDUSize:
            raise Oversized(f"PDU of {length} bytes exceeds the limit of {self.maxPDUSize}")
        total = header + length
        if len(buf) < total:
            return None
        with memoryview(buf) as view:
            pdu = view[:total].tobytes()
        self._take(total)
        return _decode(pdu, header, self.maxFilterComponents)


def _envelope(pdu: bytes, header: int) -> tuple[int, int]:
    """
    Read a PDU's message id and protocolOp tag without decoding the rest.

    @param pdu: one complete PDU.
    @param header: the length of its SEQUENCE header.
    @return: the message id and the protocolOp's identifier octet.
    @raise MalformedPDU: if the PDU does not start with a message id in
        range (RFC 4511 §4.1.1.1) followed by an operation.
    """
    if len(pdu) < header + 3 or pdu[header] != 0x02:
        raise MalformedPDU("the message does not start with a message id")
    try:
        found = lengthAt(pdu, header + 1)
    except ValueError:
        found = None
    if found is None:
        raise MalformedPDU("the message does not start with a message id")
    idLength, start = found
    # 0 .. 2**31 - 1 takes one to four octets.
    if not 1 <= idLength <= 4 or len(pdu) < start + idLength + 1:
        raise MalformedPDU("message id out of range")
    messageId = int.from_bytes(pdu[start : start + idLength], "big", signed=True)
    if messageId < 0:
        raise MalformedPDU("message id out of range")
    return messageId, pdu[start + idLength]


def _decode(pdu: bytes, header: int, maxFilterComponents: int) -> Message | BadRequest:
    """
    Decode one complete PDU, after measuring its search filter, if it has
    one, without decoding it: decoding a million-way OR from a 4 MiB PDU
    would take seconds and hundreds of megabytes. A filter with too many
    components, or nested deeper than L{MAX_DEPTH}, gets the error compiling
    it would give.

    @param maxFilterComponents: the most components a search filter may have
        (0: no limit).
    @raise MalformedPDU: if not even the envelope (message id, operation tag)
        can be read.
    """
    messageId, tag = _envelope(pdu, header)
    try:
        # Without a limit (root DNs, or none configured) the walk is
        # skipped: it would cost as much as decoding. So it is for a PDU
        # too short to pass either bound: each component of a filter
        # takes two octets at least, and each level of nesting one more
        # component.
        walk = maxFilterComponents and len(pdu) > 2 * min(maxFilterComponents, MAX_DEPTH)
        shape = filterShape(pdu, maxFilterComponents, MAX_DEPTH) if walk else None
        if shape is not None and (
            shape.depth > MAX_DEPTH or shape.components > maxFilterComponents
        ):
            error = (nestedTooDeep() if shape.depth > MAX_DEPTH
                     else tooManyComponents(maxFilterComponents))
            return BadRequest(messageId, tag, error.message, error)
        return decodeMessage(pdu)
    except ldaperrors.LDAPException as e:
        return BadRequest(messageId, tag, _text(e.message), e)
    except Exception as e:
        return BadRequest(messageId, tag, str(e) or type(e).__name__)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
