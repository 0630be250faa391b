"""
Embedding ldapd in another Twisted program.

This program runs a small web service and, next to it on the same reactor, an
LDAP directory built in code (no configuration file): the web page counts the
people in the directory, and LDAP clients can search and bind.

    python examples/embedded.py tcp:10389:interface=127.0.0.1 tcp:8080:interface=127.0.0.1
    ldapsearch -x -H ldap://127.0.0.1:10389 -b dc=example,dc=com '(uid=ada)'
    ldapwhoami -x -H ldap://127.0.0.1:10389 -D uid=ada,ou=people,dc=example,dc=com -w lovelace
"""

import sys

from twisted.internet import endpoints, reactor, task
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web import resource, server

from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.passwords import hashPassword
from ldapd.protocol import LDAPServerFactory
from ldapd.schema import Schema


def buildDirectory() -> Directory:
    schema = Schema.standard()
    suffix = DN.parse("dc=example,dc=com")
    backend = MemoryBackend(schema.normalizeDN(suffix), schema, reactor)
    return Directory(
        [Database(suffix, backend, DN.parse("cn=admin,dc=example,dc=com"),
                  hashPassword(b"change-me", "{SSHA}"))],
        schema=schema,
        reactor=reactor,
    )


async def populate(directory: Directory) -> None:
    op = directory.internalOperation()
    people = [("ada", "Ada Lovelace", "Lovelace", b"lovelace"),
              ("grace", "Grace Hopper", "Hopper", b"cobol")]
    entries = [
        ("dc=example,dc=com", {"objectClass": [b"top", b"dcObject", b"organization"],
                               "dc": [b"example"], "o": [b"Example"]}),
        ("ou=people,dc=example,dc=com", {"objectClass": [b"organizationalUnit"],
                                         "ou": [b"people"]}),
    ] + [
        (f"uid={uid},ou=people,dc=example,dc=com",
         {"objectClass": [b"inetOrgPerson"], "uid": [uid.encode()], "cn": [cn.encode()],
          "sn": [sn.encode()], "userPassword": [hashPassword(password, "{SSHA}")]})
        for uid, cn, sn, password in people
    ]
    for dn, attributes in entries:
        await directory.add(op, Entry(DN.parse(dn), attributes, directory.schema))


class PeopleCount(resource.Resource):
    isLeaf = True

    def __init__(self, directory: Directory) -> None:
        super().__init__()
        self.directory = directory

    def render_GET(self, request):
        backend = self.directory.databases[0].backend
        return f"{len(backend)} entries in the directory\n".encode()


def main(reactor, ldapEndpoint="tcp:10389:interface=127.0.0.1",
         webEndpoint="tcp:8080:interface=127.0.0.1"):
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    directory = buildDirectory()

    async def start():
        await directory.open()
        await populate(directory)
        await endpoints.serverFromString(reactor, ldapEndpoint).listen(
            LDAPServerFactory(directory, reactor))
        await endpoints.serverFromString(reactor, webEndpoint).listen(
            server.Site(PeopleCount(directory)))

    from twisted.internet.defer import Deferred

    return Deferred.fromCoroutine(start()).addCallback(lambda _: Deferred())


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
