"""
ldaptor's own in-memory LDAP server, for comparison: serves an LDIF file.

    python benchmarks/_ldaptor_server.py PORT DATA.ldif
"""

import sys

from ldaptor.inmemory import fromLDIFFile
from ldaptor.interfaces import IConnectedLDAPEntry
from ldaptor.protocols.ldap.ldapserver import LDAPServer
from twisted.internet import protocol, reactor
from twisted.python import components


class _Factory(protocol.ServerFactory):
    protocol = LDAPServer

    def __init__(self, root):
        self.root = root


components.registerAdapter(lambda factory: factory.root, _Factory, IConnectedLDAPEntry)


def main(port: int, path: str) -> None:
    with open(path, "rb") as f:
        d = fromLDIFFile(f)
    d.addCallback(lambda root: reactor.listenTCP(port, _Factory(root), interface="127.0.0.1"))
    d.addErrback(lambda failure: (failure.printTraceback(), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
