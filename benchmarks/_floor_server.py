"""
The floor: the least a Twisted LDAP server can do for a request.

It reads each message's frame and message id and answers with a fixed
success result of the matching response type (a SearchResultDone for a
search, with no entry; a BindResponse for a bind; ...), with no decoding
beyond that, no directory and no log. What ldapd costs above this is ldapd's
own work; what this costs is Twisted's (a reactor wake-up, a read, a write).

    python benchmarks/_floor_server.py PORT
"""

from __future__ import annotations

import sys

from twisted.internet import protocol, reactor

#: The response tag of each request tag (application, constructed).
_RESPONSES = {0x60: 0x61, 0x63: 0x65, 0x66: 0x67, 0x68: 0x69, 0x4A: 0x6B, 0x6C: 0x6D, 0x6E: 0x6F,
              0x77: 0x78}
#: An LDAPResult: success, empty matchedDN and diagnosticMessage.
_SUCCESS = b"\x0a\x01\x00\x04\x00\x04\x00"


class Floor(protocol.Protocol):
    def __init__(self) -> None:
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        buf = self.buffer + data
        pos = 0
        out = []
        while len(buf) - pos >= 2:
            first = buf[pos + 1]
            head, length = 2, first
            if first & 0x80:
                n = first & 0x7F
                head = 2 + n
                length = int.from_bytes(buf[pos + 2 : pos + head], "big")
            if len(buf) - pos < head + length:
                break
            idEnd = pos + head + 2 + buf[pos + head + 1]
            messageId = buf[pos + head : idEnd]
            tag = buf[idEnd]
            pos += head + length
            if tag == 0x42:  # Unbind
                self.transport.loseConnection()
                break
            body = messageId + bytes((_RESPONSES.get(tag, 0x78), len(_SUCCESS))) + _SUCCESS
            out.append(b"\x30" + bytes((len(body),)) + body)
        self.buffer = buf[pos:]
        if out:
            self.transport.write(b"".join(out))


def main() -> None:
    factory = protocol.Factory.forProtocol(Floor)
    reactor.listenTCP(int(sys.argv[1]), factory, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
