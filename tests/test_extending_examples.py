"""
Tests for the examples of C{docs/extending.md} (C{examples/extending/}): each
one in process, through a L{Directory} as requests arrive from the wire, and
all of them together in the real C{twist ldapd}, driven by OpenLDAP's
clients, ldap3 and python-ldap.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import ldap
import ldap3
import pytest
from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from examples.extending.authzid import (
    AUTHZID_REQUEST,
    AUTHZID_RESPONSE,
    AuthorizationIdentityFactory,
)
from examples.extending.clock import CURRENT_TIME, CurrentTime, CurrentTimeFactory
from examples.extending.dictbackend import DictBackend, DictBackendFactory
from examples.extending.protect import ProtectEntriesFactory
from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.extensions import RegistrationError
from ldapd.gentime import formatTime, parseTime
from ldapd.interfaces import IOperationPlugin
from ldapd.operation import Connection
from ldapd.passwords import hashPassword
from ldapd.registry import ConfigContext, ConfigError
from ldapd.schema import Schema
from ldapd.testing import (
    EXAMPLE_LDIF,
    BackendTestsMixin,
    DirectoryTestsMixin,
    ServerTestsMixin,
    executeRequest,
    installDistribution,
)

SUFFIX = "dc=example,dc=com"
ROOT_DN = "cn=admin,dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"
ORG = "dc=example,dc=org"
ZOE = "uid=zoe,ou=people,dc=example,dc=org"

#: Zoe's password, "zoe-secret", as the dict backend stores it.
ZOE_PASSWORD = hashPassword(b"zoe-secret", "{SSHA}")

#: The entries of the dict backend in the tests: an organisation and a person.
ORG_ENTRIES: dict[str, dict[str, list[str | bytes]]] = {
    ORG: {"objectClass": ["top", "dcObject", "organization"], "dc": ["example"],
          "o": ["Example"]},
    "ou=people,dc=example,dc=org": {"objectClass": ["organizationalUnit"], "ou": ["people"]},
    ZOE: {"objectClass": ["inetOrgPerson"], "uid": ["zoe"], "cn": ["Zoe"], "sn": ["Example"],
          "userPassword": [ZOE_PASSWORD]},
}


def configContext(schema: Schema, suffix: str | None = None) -> ConfigContext:
    """
    @return: the context a factory gets for a table of C{ldapd.toml}.
    """
    return ConfigContext(Path("ldapd.toml"), "database[1]" if suffix else "plugin[0]", schema,
                         task.Clock(), schema.normalizeDN(DN.parse(suffix)) if suffix else None)


class DictBackendConformanceTests(unittest.TestCase):
    """
    The dict backend keeps the rules of L{BackendTestsMixin} that a
    read-only backend can: its tests of reads and binds run here, on the
    suite's own entries. The suite as a whole cannot run, since it adds
    its entries through the backend.
    """

    suffixText = BackendTestsMixin.suffixText
    entry = BackendTestsMixin.entry
    person = BackendTestsMixin.person
    suiteEntries = BackendTestsMixin.suiteEntries
    search = BackendTestsMixin.search
    ndn = BackendTestsMixin.ndn  # type: ignore[assignment]
    assertNoSuchObject = BackendTestsMixin.assertNoSuchObject

    test_interface = BackendTestsMixin.test_interface
    test_get = BackendTestsMixin.test_get
    test_getMissing = BackendTestsMixin.test_getMissing
    test_searchScopes = BackendTestsMixin.test_searchScopes
    test_searchFilters = BackendTestsMixin.test_searchFilters
    test_searchMissingBase = BackendTestsMixin.test_searchMissingBase
    test_searchEmitRaises = BackendTestsMixin.test_searchEmitRaises
    test_searchEmitSuspends = BackendTestsMixin.test_searchEmitSuspends
    test_authenticate = BackendTestsMixin.test_authenticate

    def setUp(self) -> Any:
        self.schema = Schema.standard()
        self.suffix = self.schema.normalizeDN(DN.parse(self.suffixText))
        entries = {str(e.dn): {a.description: list(a.values) for a in e}
                   for e in self.suiteEntries()}
        self.backend = DictBackend(self.suffix, self.schema, entries)
        return self.backend.open()


class DictBackendTests(unittest.TestCase):
    """
    What the dict backend does beyond the conformance rules: it refuses
    writes, and its factory reads and checks its table.
    """

    def setUp(self) -> None:
        self.schema = Schema.standard()

    def test_readOnly(self) -> None:
        """
        Every write fails with unwillingToPerform.
        """
        backend = DictBackend(self.schema.normalizeDN(DN.parse(ORG)), self.schema, ORG_ENTRIES)
        ndn = self.schema.normalizeDN(DN.parse(ZOE))
        for write in [lambda: backend.add(None, None, None),  # type: ignore[arg-type]
                      lambda: backend.delete(None, ndn, None),  # type: ignore[arg-type]
                      lambda: backend.modify(None, ndn, [], None),  # type: ignore[arg-type]
                      lambda: backend.rename(None, ndn, ndn, True, None)]:  # type: ignore[arg-type]
            self.failureResultOf(write(), ldaperrors.LDAPUnwillingToPerform)

    def test_orphan(self) -> None:
        """
        An entry whose superior is not among the entries is refused.
        """
        e = self.assertRaises(ValueError, DictBackend, self.schema.normalizeDN(DN.parse(ORG)),
                              self.schema, {ORG: ORG_ENTRIES[ORG], ZOE.replace("dc=org", "dc=net"):
                                            ORG_ENTRIES[ZOE]})
        self.assertIn("not within", str(e))
        self.assertRaises(ValueError, DictBackend, self.schema.normalizeDN(DN.parse(ORG)),
                          self.schema, {ORG: ORG_ENTRIES[ORG], "cn=x,ou=gone," + ORG:
                                        {"objectClass": ["device"], "cn": ["x"]}})

    def test_factory(self) -> None:
        """
        The factory builds the backend from the C{entries} table, a string
        standing for a list of one.
        """
        backend = DictBackendFactory.fromConfig(
            {"entries": {ORG: {"objectClass": ["top", "dcObject", "organization"],
                               "dc": "example", "o": "Example"}}},
            configContext(self.schema, ORG))
        entry = self.successResultOf(
            backend.get(None, self.schema.normalizeDN(DN.parse(ORG))))  # type: ignore[arg-type]
        self.assertEqual(entry.get("dc"), (b"example",))

    def test_factoryErrors(self) -> None:
        """
        A missing or wrong C{entries}, or another key, is a configuration
        error naming the key.
        """
        context = configContext(self.schema, ORG)
        for table, key in [({}, "database[1].entries"),
                           ({"entries": {ORG: {"dc": 1}}}, "database[1].entries"),
                           ({"entries": {ORG: {"nosuchType": "x"}}}, "database[1].entries"),
                           ({"entries": {"not a DN": {"dc": "x"}}}, "database[1].entries"),
                           ({"entries": {}, "entires": {}}, "database[1].entires")]:
            e = self.assertRaises(ConfigError, DictBackendFactory.fromConfig, table, context)
            self.assertIn(f"ldapd.toml: {key}:", str(e))


class ProtectEntriesTests(DirectoryTestsMixin, unittest.TestCase):
    """
    The protect plugin refuses to delete the entries that carry its flag,
    and counts the outcomes of deletes.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        self.plugin = ProtectEntriesFactory.fromConfig({"attribute": "businessCategory"},
                                                       configContext(schema))
        return [self.plugin]

    async def test_protected(self) -> None:
        """
        A delete of an entry with the flag is unwillingToPerform, whatever
        the case of the value (the type's equality rule compares them);
        one without it is deleted. Each outcome is counted.
        """
        for name, flag in [("keep", b"protected"), ("keepToo", b"PROTECTED"), ("scratch", b"x")]:
            self.assertEqual(await self.add(f"ou={name},{SUFFIX}", [
                ("objectClass", [b"organizationalUnit"]), ("businessCategory", [flag])]), 0)
        self.assertEqual(await self.delete(f"ou=keep,{SUFFIX}"), 53)
        self.assertEqual(await self.delete(f"ou=keepToo,{SUFFIX}"), 53)
        self.assertEqual(await self.delete(f"ou=scratch,{SUFFIX}"), 0)
        self.assertIsNotNone(await self.read(f"ou=keep,{SUFFIX}"))
        self.assertIsNone(await self.read(f"ou=scratch,{SUFFIX}"))
        self.assertEqual(self.plugin.outcomes, {53: 2, 0: 1})

    async def test_missing(self) -> None:
        """
        A delete of an entry that does not exist gets noSuchObject from the
        backend, with its matched DN.
        """
        [response] = await self.request(pureldap.LDAPDelRequest(entry=f"ou=gone,{SUFFIX}"))
        self.assertEqual((response.value.resultCode, response.value.matchedDN),
                         (32, SUFFIX.encode()))
        self.assertEqual(self.plugin.outcomes, {32: 1})

    def test_interface(self) -> None:
        """
        The plugin provides L{IOperationPlugin}.
        """
        self.assertTrue(verifyObject(IOperationPlugin, self.plugin))

    def test_factoryErrors(self) -> None:
        """
        An undefined attribute type, a value its rule refuses, or an unknown
        key is a configuration error naming the key.
        """
        for table, key in [({"attribute": "nosuchType"}, "attribute"),
                           ({"attribute": "createTimestamp", "value": "soon"}, "value"),
                           ({"atribute": "description"}, "atribute")]:
            e = self.assertRaises(ConfigError, ProtectEntriesFactory.fromConfig, table,
                                  configContext(self.schema))
            self.assertIn(f"ldapd.toml: plugin[0].{key}:", str(e))


class _ExecuteMixin:
    """
    A directory with the example organisation on the memory backend and a
    L{task.Clock}, to which requests are sent as they arrive from the wire.
    """

    def makeDirectory(self, plugins: list[Any]) -> Directory:
        self.clock = task.Clock()
        self.schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema),
                      DN.parse(ROOT_DN), b"secret", EXAMPLE_LDIF)],
            plugins, schema=self.schema, reactor=self.clock)
        self.connection = Connection("test", self.clock)
        return self.directory

    def responses(self, request: Any, controls: Any = None) -> list[Any]:
        """
        @return: the responses to C{request}, decoded as a client would.
        """
        responses, d = executeRequest(self.directory, self.connection, request, 1, controls)
        self.successResultOf(d)  # type: ignore[attr-defined]
        return responses

    def execute(self, request: Any, controls: Any = None) -> Any:
        """
        @return: the final response to C{request}.
        """
        return self.responses(request, controls)[-1]

    def rootDSE(self, attribute: str) -> list[bytes]:
        """
        @return: the values of an attribute of the root DSE.
        """
        entry = self.responses(pureldap.LDAPSearchRequest(
            baseObject="", scope=0, filter=pureldap.LDAPFilter_present("objectClass"),
            attributes=[attribute]))[0]
        return [v for _, values in entry.value.attributes for v in values]


class AuthorizationIdentityTests(_ExecuteMixin, unittest.TestCase):
    """
    The authzid plugin answers the Authorization Identity Request control
    of a Bind.
    """

    def setUp(self) -> None:
        self.makeDirectory([AuthorizationIdentityFactory.fromConfig({}, configContext(
            Schema.standard()))])
        self.successResultOf(self.directory.open())
        self.addCleanup(self.directory.close)

    def bind(self, dn: str, password: bytes, value: bytes | None = None,
             critical: bool = False) -> Any:
        """
        @return: the response of a Bind with the request control.
        """
        return self.execute(pureldap.LDAPBindRequest(dn=dn, auth=password),
                            [(AUTHZID_REQUEST, critical, value)])

    def responseControls(self, response: Any) -> list[tuple[bytes, Any, Any]]:
        return [tuple(c) for c in response.controls or ()]  # type: ignore[misc]

    def test_bound(self) -> None:
        """
        A successful Bind gets the response control with the identity it
        bound as, C{dn:...}; the root DN too, though it has no entry.
        """
        for dn, password in [(ALICE, b"alice-secret"), (ROOT_DN, b"secret")]:
            response = self.bind(dn, password, critical=True)
            self.assertEqual(response.value.resultCode, 0)
            self.assertEqual(self.responseControls(response),
                             [(AUTHZID_RESPONSE.encode(), None, f"dn:{dn}".encode())])

    def test_anonymous(self) -> None:
        """
        An anonymous Bind gets the control with an empty value.
        """
        response = self.bind("", b"")
        self.assertEqual(self.responseControls(response), [(AUTHZID_RESPONSE.encode(), None, b"")])

    def test_failed(self) -> None:
        """
        A failed Bind gets no control.
        """
        response = self.bind(ALICE, b"wrong")
        self.assertEqual(response.value.resultCode, 49)
        self.assertEqual(self.responseControls(response), [])

    def test_notAsked(self) -> None:
        """
        A Bind without the request control gets no response control.
        """
        response = self.execute(pureldap.LDAPBindRequest(dn=ALICE, auth=b"alice-secret"))
        self.assertEqual(response.value.resultCode, 0)
        self.assertEqual(self.responseControls(response), [])

    def test_withValue(self) -> None:
        """
        The request control has no value: one with a value fails the Bind
        with protocolError.
        """
        self.assertEqual(self.bind(ALICE, b"alice-secret", b"x").value.resultCode, 2)

    def test_otherOperations(self) -> None:
        """
        The control is registered for Bind alone: critical on a Search, it
        is unavailableCriticalExtension.
        """
        response = self.execute(pureldap.LDAPSearchRequest(
            baseObject=SUFFIX, scope=0, filter=pureldap.LDAPFilter_present("objectClass")),
            [(AUTHZID_REQUEST, True, None)])
        self.assertEqual(response.value.resultCode, 12)

    def test_advertised(self) -> None:
        """
        The root DSE lists the request control.
        """
        self.assertIn(AUTHZID_REQUEST.encode(), self.rootDSE("supportedControl"))

    def test_withoutPlugin(self) -> None:
        """
        Without the plugin, the control is unknown: critical, it fails the
        Bind with unavailableCriticalExtension, and the root DSE does not
        list it.
        """
        self.makeDirectory([])
        self.assertEqual(self.bind(ALICE, b"alice-secret", critical=True).value.resultCode, 12)
        self.assertNotIn(AUTHZID_REQUEST.encode(), self.rootDSE("supportedControl"))


class CurrentTimeTests(_ExecuteMixin, unittest.TestCase):
    """
    The current time extended operation, registered by a plugin or by an
    entry point, answers the time of the directory's clock.
    """

    def test_plugin(self) -> None:
        """
        Registered by the plugin, it answers the clock's time as a
        GeneralizedTime, names itself in the response, and the root DSE
        lists it.
        """
        self.makeDirectory([CurrentTimeFactory.fromConfig({}, configContext(Schema.standard()))])
        self.clock.advance(1_800_000_000)
        response = self.execute(pureldap.LDAPExtendedRequest(requestName=CURRENT_TIME))
        self.assertEqual((response.value.resultCode, response.value.responseName,
                          response.value.response),
                         (0, CURRENT_TIME.encode(), b"20270115080000Z"))
        self.assertEqual(formatTime(self.clock.seconds()), b"20270115080000Z")
        self.assertIn(CURRENT_TIME.encode(), self.rootDSE("supportedExtension"))

    def test_value(self) -> None:
        """
        A request with a value is a protocolError.
        """
        self.makeDirectory([CurrentTime()])
        response = self.execute(pureldap.LDAPExtendedRequest(requestName=CURRENT_TIME,
                                                             requestValue=b"x"))
        self.assertEqual(response.value.resultCode, 2)

    def installEntryPoint(self) -> None:
        """
        Install a distribution whose C{ldapd.extended} entry point names
        the example's registration, into a temporary folder on
        C{sys.path}, as pip would.
        """
        installDistribution(
            self, "ldapd-clock",
            "[ldapd.extended]\nclock = examples.extending.clock:CURRENT_TIME_OPERATION\n")

    def test_entryPoint(self) -> None:
        """
        Registered by an installed package's entry point, with no plugin, it
        answers and is listed.
        """
        self.installEntryPoint()
        self.makeDirectory([])
        response = self.execute(pureldap.LDAPExtendedRequest(requestName=CURRENT_TIME))
        self.assertEqual((response.value.resultCode, response.value.response),
                         (0, formatTime(self.clock.seconds())))
        self.assertIn(CURRENT_TIME.encode(), self.rootDSE("supportedExtension"))

    def test_registeredTwice(self) -> None:
        """
        The plugin and the entry point cannot both register it: the
        directory is not built.
        """
        self.installEntryPoint()
        e = self.assertRaises(RegistrationError, self.makeDirectory, [CurrentTime()])
        self.assertIn(CURRENT_TIME, str(e))


class DocumentTests(unittest.SynchronousTestCase):
    """
    C{docs/extending.md} quotes the examples as they are.
    """

    def test_excerpts(self) -> None:
        """
        Every excerpt the document says it takes from an example file
        (C{<!-- from examples/... -->} before a code block) is in that file.
        """
        root = Path(__file__).resolve().parent.parent
        text = (root / "docs" / "extending.md").read_text()
        excerpts = re.findall(r"<!-- from (\S+) -->\n```python\n(.*?)```", text, re.DOTALL)
        self.assertGreaterEqual(len(excerpts), 6)
        for path, excerpt in excerpts:
            self.assertIn(excerpt, (root / path).read_text(), path)


_PEOPLE = "ou=people,dc=example,dc=org"

#: All the examples in one server: the example organisation on the memory
#: backend with the three plugins, and the dict backend's organisation.
_CONFIG = f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{SUFFIX}"
backend = "memory"
root_dn = "{ROOT_DN}"
root_password = "{hashPassword(b"secret", "{SSHA}").decode()}"
seed_ldif = "{{example_ldif}}"

[[database]]
suffix = "{ORG}"
backend = "examples.extending.dictbackend:DictBackendFactory"

[database.entries."{ORG}"]
objectClass = ["top", "dcObject", "organization"]
dc = "example"
o = "Example"

[database.entries."{_PEOPLE}"]
objectClass = "organizationalUnit"
ou = "people"

[database.entries."{ZOE}"]
objectClass = "inetOrgPerson"
uid = "zoe"
cn = "Zoe"
sn = "Example"
userPassword = "{ZOE_PASSWORD.decode()}"

[[plugin]]
name = "examples.extending.protect:ProtectEntriesFactory"

[[plugin]]
name = "examples.extending.authzid:AuthorizationIdentityFactory"

[[plugin]]
name = "examples.extending.clock:CurrentTimeFactory"
"""


@pytest.mark.integration
class ExamplesServerTests(ServerTestsMixin, unittest.SynchronousTestCase):
    """
    The examples in the real server, named in its configuration by their
    import paths, with real clients.
    """

    serverConfig = _CONFIG

    @classmethod
    def setUpClass(cls) -> None:
        missing = [c for c in ("ldapsearch", "ldapwhoami", "ldapdelete", "ldapadd")
                   if shutil.which(c) is None]
        if missing:
            raise unittest.SkipTest(f"OpenLDAP clients not installed: {', '.join(missing)}")
        super().setUpClass()

    def run_(self, tool: str, *args: str, bind: tuple[str, str] | None = None,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """
        Run one of OpenLDAP's clients against the server.

        @param bind: a DN and password for a simple bind; anonymous by default.
        """
        assert self.server is not None
        command = [tool, "-x", "-H", self.server.url]
        if bind is not None:
            command += ["-D", bind[0], "-w", bind[1]]
        # LDAPNOINIT: ignore ldap.conf and ~/.ldaprc, whatever this machine has in them.
        return subprocess.run(command + list(args), input=stdin, capture_output=True, text=True,
                              env=dict(os.environ, LDAPNOINIT="1"), timeout=30, check=False)

    def test_dictBackendSearch(self) -> None:
        """
        ldapsearch finds the dict backend's entries by scope and filter, and
        gets sizeLimitExceeded (4) past its size limit.
        """
        result = self.run_("ldapsearch", "-LLL", "-b", ORG, "(objectClass=*)", "1.1")
        self.assertEqual((result.returncode, result.stdout.split()),
                         (0, ["dn:", ORG, "dn:", _PEOPLE, "dn:", ZOE]))
        result = self.run_("ldapsearch", "-LLL", "-b", _PEOPLE, "(objectClass=*)", "1.1")
        self.assertEqual(result.stdout.split(), ["dn:", _PEOPLE, "dn:", ZOE])
        result = self.run_("ldapsearch", "-LLL", "-b", ORG, "-s", "one", "(ou=*)", "ou")
        self.assertEqual(result.stdout.split(), ["dn:", _PEOPLE, "ou:", "people"])
        result = self.run_("ldapsearch", "-LLL", "-b", ORG, "-z", "1", "(objectClass=*)", "1.1")
        self.assertEqual(result.returncode, 4, result.stderr)

    def test_dictBackendBindAndWrite(self) -> None:
        """
        A person of the dict backend binds with the password stored there
        (a wrong one is 49); writes to it are unwillingToPerform (53).
        """
        result = self.run_("ldapwhoami", bind=(ZOE, "zoe-secret"))
        self.assertEqual((result.returncode, result.stdout.strip()), (0, f"dn:{ZOE}"))
        self.assertEqual(self.run_("ldapwhoami", bind=(ZOE, "wrong")).returncode, 49)
        result = self.run_("ldapdelete", ZOE, bind=(ROOT_DN, "secret"))
        self.assertEqual(result.returncode, 53, result.stderr)

    def test_protect(self) -> None:
        """
        ldapdelete of an entry with C{description: protected} is refused
        (53), of another one done.
        """
        ldif = "".join(f"dn: ou={name},{SUFFIX}\nobjectClass: organizationalUnit\n"
                       f"description: {flag}\n\n"
                       for name, flag in [("keep", "Protected"), ("scratch", "temporary")])
        self.assertEqual(self.run_("ldapadd", bind=(ROOT_DN, "secret"), stdin=ldif).returncode, 0)
        result = self.run_("ldapdelete", f"ou=keep,{SUFFIX}", bind=(ROOT_DN, "secret"))
        self.assertEqual(result.returncode, 53)
        self.assertIn(f"ou=keep,{SUFFIX} is protected", result.stderr)
        result = self.run_("ldapdelete", f"ou=scratch,{SUFFIX}", bind=(ROOT_DN, "secret"))
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_authzidWhoAmI(self) -> None:
        """
        ldapwhoami with C{-e bauthzid} (RFC 3829's control; OpenLDAP 2.5
        calls it so, its C{authzid} being RFC 4370's proxied authorization)
        prints the identity the response control carries: the DN bound as,
        in either naming context, or C{anonymous}.
        """
        for bind, expected in [((ALICE, "alice-secret"), f"dn:{ALICE}"),
                               ((ZOE, "zoe-secret"), f"dn:{ZOE}"),
                               (None, "anonymous")]:
            result = self.run_("ldapwhoami", "-e", "bauthzid", bind=bind)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(f"authzid: {expected}\n", result.stdout)

    def test_authzidSearch(self) -> None:
        """
        ldapsearch with C{-e bauthzid} prints it too, as a comment before
        the results in LDIF.
        """
        result = self.run_("ldapsearch", "-LLL", "-e", "bauthzid", "-b", ALICE, "-s", "base", "1.1",
                           bind=(ALICE, "alice-secret"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[:2], [f"# authzid: dn:{ALICE}", f"dn: {ALICE}"])

    def test_authzidRootDSE(self) -> None:
        """
        The root DSE lists the control and the extended operation.
        """
        result = self.run_("ldapsearch", "-LLL", "-b", "", "-s", "base", "(objectClass=*)",
                           "supportedControl", "supportedExtension")
        self.assertIn(f"supportedControl: {AUTHZID_REQUEST}\n", result.stdout)
        self.assertIn(f"supportedExtension: {CURRENT_TIME}\n", result.stdout)

    def test_currentTimeLdap3(self) -> None:
        """
        ldap3 gets the server's time, as a GeneralizedTime within a minute
        of this process's.
        """
        assert self.server is not None
        connection = ldap3.Connection(ldap3.Server(self.server.url), auto_bind=True)
        self.addCleanup(connection.unbind)
        connection.extended(CURRENT_TIME)
        result = connection.result
        self.assertEqual((result["result"], result["responseName"]), (0, CURRENT_TIME))
        self.assertLess(abs(parseTime(result["responseValue"]).timestamp() - time.time()), 60)

    def test_currentTimePythonLdap(self) -> None:
        """
        python-ldap's C{extop_s} gets it too.
        """
        assert self.server is not None
        connection = ldap.initialize(self.server.url)
        self.addCleanup(connection.unbind_s)
        name, value = connection.extop_s(ldap.extop.ExtendedRequest(CURRENT_TIME, None))
        self.assertEqual(name, CURRENT_TIME)
        parseTime(value)
