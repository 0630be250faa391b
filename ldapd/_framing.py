"""
Framing of the client's byte stream into LDAP messages, with no I/O.

The protocol feeds received bytes to a L{Framer} and pulls messages out. The
length of each PDU is read from its header and checked against the maximum
before any of it is buffered beyond what has arrived, so a client cannot make
the server allocate what it claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldaptor.protocols import pureber, pureldap

from ldapd._codec import DECODER, checkBER, checkRequest, decodeRequest, lengthAt

__all__ = ["BadRequest", "Framer", "MalformedPDU", "DEFAULT_MAX_PDU_SIZE"]

#: The default largest PDU accepted, in bytes.
DEFAULT_MAX_PDU_SIZE = 16 * 1024 * 1024


class MalformedPDU(Exception):
    """
    The stream is not a sequence of well-framed LDAPMessages; the connection
    cannot continue (a Notice of Disconnection is due).
    """


@dataclass(frozen=True)
class BadRequest:
    """
    A well-framed PDU whose operation could not be decoded. The connection
    survives: the request gets protocolError in the response of its type.

    @ivar messageId: the message id from the envelope.
    @ivar tag: the protocolOp's identifier octet.
    @ivar reason: why decoding failed.
    """

    messageId: int
    tag: int
    reason: str


class Framer:
    """
    Splits a byte stream into decoded L{pureldap.LDAPMessage}s.
    """

    def __init__(self, maxPDUSize: int = DEFAULT_MAX_PDU_SIZE) -> None:
        """
        @param maxPDUSize: the largest PDU accepted, header included.
        """
        self.maxPDUSize = maxPDUSize
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
        """
        self._buffer += data

    def next(self) -> pureldap.LDAPMessage | BadRequest | None:
        """
        Take the next complete message from the buffer.

        @return: the message, a L{BadRequest}, or C{None} if more bytes are needed.
        @raise MalformedPDU: if the stream is not LDAP or a PDU is too large.
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
        total = header + length
        if total > self.maxPDUSize:
            raise MalformedPDU(f"PDU of {total} bytes exceeds the limit of {self.maxPDUSize}")
        if len(buf) < total:
            return None
        pdu = bytes(buf[:total])
        del buf[:total]
        return _decode(pdu, header)


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


def _decode(pdu: bytes, header: int) -> pureldap.LDAPMessage | BadRequest:
    """
    Decode one complete PDU.

    @raise MalformedPDU: if not even the envelope (message id, operation tag)
        can be read.
    """
    messageId, tag = _envelope(pdu, header)
    try:
        message = decodeRequest(pdu)
        if message is None:
            # ldaptor's decoder takes any form of any element: the
            # encoding is checked first.
            checkBER(pdu)
            message, _ = pureber.berDecodeObject(DECODER, pdu)
            if not isinstance(message.value, pureldap.LDAPProtocolRequest):
                raise ValueError("not a request")
        checkRequest(message.value)
        return message
    except Exception as e:
        return BadRequest(messageId, tag, str(e) or type(e).__name__)
