"""
Tests for L{ldapd.sasl} and the bind policy: SASL EXTERNAL and PLAIN, the
identity mappings, the TLS rule for simple binds, and what an anonymous
client may do when anonymous access is off. The directory is driven
directly, with connections whose transport facts (TLS, local socket, peer
credentials, client certificate) are set by each test.
"""

from __future__ import annotations

import datetime
import re
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldaptor.protocols import pureldap
from twisted.internet import task
from twisted.trial import unittest

from ldapd._codec import encodeMessage
from ldapd._framing import Framer
from ldapd.backends.memory import MemoryBackend
from ldapd.config import loadConfig
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Modification
from ldapd.operation import Connection, Operation
from ldapd.registry import ConfigContext, ConfigError
from ldapd.sasl import Authentication, IdentityMapping, externalIdentity, mappingsFromConfig
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, decodeResponse, wireFilter

SUFFIX = "dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"
WHO_AM_I = b"1.3.6.1.4.1.4203.1.11.3"
PEERCRED = "gidNumber=100+uidNumber=1000,cn=peercred,cn=external,cn=auth"

#: The mappings of the tests: PLAIN user names to people, uid 0 to the
#: root DN, uid 1000 to alice, certificates issued to people to themselves,
#: and uid 2000 to a person who does not exist.
MAPPINGS = [
    IdentityMapping.compile(r"^uid=([^,]+),cn=plain,cn=auth$", "uid=$1,ou=people," + SUFFIX),
    IdentityMapping.compile(r"^gidNumber=\d+\+uidNumber=0,cn=peercred,cn=external,cn=auth$", ROOT),
    IdentityMapping.compile(r"^gidNumber=\d+\+uidNumber=1000,cn=peercred,cn=external,cn=auth$",
                            ALICE),
    IdentityMapping.compile(r"^gidNumber=\d+\+uidNumber=2000,", "uid=nobody,ou=people," + SUFFIX),
    IdentityMapping.compile(r"^(uid=[^,]+,ou=people,dc=example,dc=com)$", "$1"),
]


def certificate(subject: x509.Name) -> x509.Certificate:
    """
    @return: a self-signed certificate with C{subject}.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )


def person(uid: str) -> x509.Name:
    """
    @return: the X.509 name of the person C{uid} (most general RDN first).
    """
    return x509.Name([
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "com"),
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "Example"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "People"),
        x509.NameAttribute(NameOID.USER_ID, uid),
    ])


def sasl(mechanism: bytes, credentials: bytes | None = None) -> pureldap.LDAPBindRequest:
    """
    @return: a SASL bind request.
    """
    return pureldap.LDAPBindRequest(dn=b"", auth=(mechanism, credentials), sasl=True)


class AuthenticationTestsBase(unittest.TestCase):
    """
    The example organisation in a memory backend, with L{MAPPINGS}.
    """

    allowAnonymous = True
    requireTLS = False
    authzPolicy = "none"

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema),
                      DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            schema=self.schema, reactor=self.clock, allowAnonymous=self.allowAnonymous,
            authzPolicy=self.authzPolicy,
            authentication=Authentication(MAPPINGS, requireTLSForSimpleBind=self.requireTLS),
        )
        self.successResultOf(self.directory.open())
        self.connection = Connection("test", self.clock)

    def execute(self, request: Any) -> list[Any]:
        """
        Execute a request on the test connection as it arrives from the wire.

        @return: the decoded responses.
        """
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, id=1).toWire())
        message = framer.next()
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        responses: list[Any] = []

        def reply(pdu: bytes, controls: Any = ()) -> None:
            responses.append(decodeResponse(encodeMessage(1, pdu, controls)).value)

        self.successResultOf(self.directory.execute(op, reply))
        return responses

    def result(self, request: Any) -> tuple[int, bytes]:
        """
        @return: the result code and message of a request's final response.
        """
        response = self.execute(request)[-1]
        return response.resultCode, response.errorMessage

    def whoAmI(self) -> bytes:
        """
        @return: the authorization identity WhoAmI reports.
        """
        [response] = self.execute(pureldap.LDAPExtendedRequest(requestName=WHO_AM_I))
        self.assertEqual(response.resultCode, 0)
        return response.response or b""

    def assertBind(self, request: Any, code: int, authzId: str) -> None:
        """
        Assert that a bind gives C{code} and leaves the connection as C{authzId}.
        """
        self.assertEqual(self.result(request)[0], code)
        self.assertEqual(self.whoAmI(), authzId.encode())


class IdentityMappingTests(unittest.TestCase):
    """
    L{IdentityMapping} rewrites a SASL identity with a regular expression.
    """

    def test_apply(self) -> None:
        """
        Groups replace C{$1} to C{$9}, C{$$} is a dollar sign, and the
        pattern matches whatever the case.
        """
        mapping = IdentityMapping.compile(r"^uid=([^,]+),cn=(\w+),cn=auth$", "uid=$1,ou=$2$$")
        self.assertEqual(mapping.apply("UID=Bob,cn=plain,cn=auth"), "uid=Bob,ou=plain$")
        self.assertIsNone(mapping.apply("uid=bob,cn=auth"))

    def test_invalid(self) -> None:
        """
        A pattern that is not a regular expression, or a template naming a
        group the pattern lacks, is refused.
        """
        with self.assertRaises(ValueError):
            IdentityMapping.compile("(", "x")
        with self.assertRaises(ValueError):
            IdentityMapping.compile("(a)", "$2")

    def test_linearTime(self) -> None:
        """
        The pattern is RE2's: one Python's C{re} would backtrack on for ever
        fails at once, and a backreference, which RE2 cannot match in linear
        time, is refused.
        """
        mapping = IdentityMapping.compile(r"^uid=(a|a)+x,cn=auth$", "uid=$1")
        self.assertIsNone(mapping.apply("uid=" + "a" * 100 + ",cn=auth"))
        self.assertEqual(mapping.apply("uid=aax,cn=auth"), "uid=a")
        with self.assertRaises(ValueError) as caught:
            IdentityMapping.compile(r"^(a)\1$", "$1")
        self.assertIn("RE2", str(caught.exception))

    def test_fromConfig(self) -> None:
        """
        C{sasl_map} is a list of C{{ match, dn }} tables; a wrong one is
        named in the error.
        """
        context = ConfigContext(Path("ldapd.toml"), "server", None, None)  # type: ignore[arg-type]
        [mapping] = mappingsFromConfig([{"match": "^(.*)$", "dn": "$1"}], context, "sasl_map")
        self.assertEqual(mapping.template, "$1")
        for value, where in [
            ({"match": "x"}, "sasl_map:"),
            ([{"match": "x"}], "sasl_map[0]:"),
            ([{"match": "x", "dn": "y", "z": "w"}], "sasl_map[0]:"),
            ([{"match": "(", "dn": "y"}], "sasl_map[0]: invalid regular expression"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                mappingsFromConfig(value, context, "sasl_map")
            self.assertIn(f"server.{where}", str(caught.exception))


class ExternalIdentityTests(unittest.TestCase):
    """
    L{externalIdentity} names what a connection proves outside LDAP.
    """

    def setUp(self) -> None:
        self.schema = Schema.standard()
        self.connection = Connection("test", task.Clock())

    def test_none(self) -> None:
        """
        A TCP connection without a client certificate proves nothing.
        """
        self.assertIsNone(externalIdentity(self.connection, self.schema))

    def test_peerCredentials(self) -> None:
        """
        A local client is named by its gid and uid as slapd names it.
        """
        self.connection.peerCredentials = (1000, 100)
        self.assertEqual(externalIdentity(self.connection, self.schema), PEERCRED)

    def test_certificate(self) -> None:
        """
        A client certificate's subject is its identity, most specific RDN
        first and normalised; it wins over peer credentials.
        """
        self.connection.peerCredentials = (1000, 100)
        self.connection.peerCertificate = certificate(person("Alice"))
        self.assertEqual(externalIdentity(self.connection, self.schema), ALICE)

    def test_unknownAttributeType(self) -> None:
        """
        A subject with an attribute type the schema lacks is taken as it is.
        """
        self.connection.peerCertificate = certificate(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, "Alice"),
            x509.NameAttribute(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), "42"),
        ]))
        self.assertEqual(externalIdentity(self.connection, self.schema),
                         "1.3.6.1.4.1.99999.1=42,CN=Alice")


class ExternalTests(AuthenticationTestsBase):
    """
    SASL EXTERNAL authenticates as what the connection proves.
    """

    def test_peerCredentialsUnmapped(self) -> None:
        """
        A local client no rule maps is its peercred DN, which WhoAmI
        reports exactly as slapd does.
        """
        self.connection.local = True
        self.connection.peerCredentials = (1000, 100)
        self.directory.authentication.mappings = []
        self.assertBind(sasl(b"EXTERNAL"), 0, "dn:" + PEERCRED)
        self.assertFalse(self.connection.identity.isRoot)

    def test_peerCredentialsMapped(self) -> None:
        """
        A rule maps a local client to an entry, with that entry's DN.
        """
        self.connection.peerCredentials = (1000, 100)
        self.assertBind(sasl(b"EXTERNAL"), 0, "dn:" + ALICE)

    def test_root(self) -> None:
        """
        A rule mapping to a root DN makes the client root, with no entry.
        """
        self.connection.peerCredentials = (0, 0)
        self.assertBind(sasl(b"EXTERNAL"), 0, "dn:" + ROOT)
        self.assertTrue(self.connection.identity.isRoot)

    def test_mappedToNothing(self) -> None:
        """
        A rule mapping to an entry that does not exist authenticates no one.
        """
        self.connection.peerCredentials = (2000, 100)
        self.assertBind(sasl(b"EXTERNAL"), 49, "")

    def test_certificate(self) -> None:
        """
        A TLS client certificate authenticates as the entry its subject maps to.
        """
        self.connection.secure = True
        self.connection.peerCertificate = certificate(person("alice"))
        self.assertBind(sasl(b"EXTERNAL"), 0, "dn:" + ALICE)

    def test_nothingProven(self) -> None:
        """
        EXTERNAL on a connection that proves nothing is authMethodNotSupported.
        """
        self.assertBind(sasl(b"EXTERNAL"), 7, "")

    def test_authorizationIdentity(self) -> None:
        """
        A client may ask for its own identity as authorization identity, but
        for no other.
        """
        self.connection.peerCredentials = (1000, 100)
        self.assertBind(sasl(b"EXTERNAL", b"dn:UID=Alice,ou=people,dc=example,dc=com"), 0,
                        "dn:" + ALICE)
        self.assertBind(sasl(b"EXTERNAL", b"dn:" + ROOT.encode()), 50, "")
        self.assertBind(sasl(b"EXTERNAL", b"u:alice"), 50, "")

    def test_unknownMechanism(self) -> None:
        """
        An unknown mechanism is authMethodNotSupported.
        """
        self.assertBind(sasl(b"GSSAPI"), 7, "")


class PlainTests(AuthenticationTestsBase):
    """
    SASL PLAIN checks a user's password, on protected connections only.
    """

    def setUp(self) -> None:
        super().setUp()
        self.connection.secure = True

    def test_userName(self) -> None:
        """
        A user name, bare or as C{u:}, is mapped to its entry and its
        password checked there.
        """
        self.assertBind(sasl(b"PLAIN", b"\0alice\0alice-secret"), 0, "dn:" + ALICE)
        self.assertBind(sasl(b"PLAIN", b"\0u:bob\0bob-secret"), 0,
                        "dn:uid=bob,ou=people,dc=example,dc=com")

    def test_dn(self) -> None:
        """
        A C{dn:} authentication identity needs no mapping; the root DN's
        password is checked against the configuration.
        """
        self.assertBind(sasl(b"PLAIN", b"\0dn:" + ROOT.encode() + b"\0secret"), 0, "dn:" + ROOT)
        self.assertTrue(self.connection.identity.isRoot)

    def test_wrongPassword(self) -> None:
        """
        A wrong or empty password is invalidCredentials.
        """
        self.assertBind(sasl(b"PLAIN", b"\0alice\0bob-secret"), 49, "")
        self.assertBind(sasl(b"PLAIN", b"\0alice\0"), 49, "")

    def test_unmapped(self) -> None:
        """
        A user name no rule maps is invalidCredentials, and so is one whose
        special characters would otherwise change the DN it maps to.
        """
        self.directory.authentication.mappings = []
        self.assertBind(sasl(b"PLAIN", b"\0alice\0alice-secret"), 49, "")
        self.directory.authentication.mappings = MAPPINGS
        self.assertBind(sasl(b"PLAIN", b"\0alice,ou=people\0alice-secret"), 49, "")

    def test_malformed(self) -> None:
        """
        Credentials that are not C{authzid NUL authcid NUL password} are
        invalidCredentials.
        """
        self.assertBind(sasl(b"PLAIN", b"alice-secret"), 49, "")
        self.assertBind(sasl(b"PLAIN"), 49, "")

    def test_authorizationIdentity(self) -> None:
        """
        The authorization identity may be the user's own, by name or DN.
        """
        self.assertBind(sasl(b"PLAIN", b"u:alice\0alice\0alice-secret"), 0, "dn:" + ALICE)
        self.assertBind(sasl(b"PLAIN", b"dn:" + ALICE.encode() + b"\0alice\0alice-secret"), 0,
                        "dn:" + ALICE)
        self.assertBind(sasl(b"PLAIN", b"u:bob\0alice\0alice-secret"), 50, "")

    def test_cleartext(self) -> None:
        """
        PLAIN on a cleartext TCP connection is confidentialityRequired; on a
        local socket it is allowed.
        """
        self.connection.secure = False
        self.assertBind(sasl(b"PLAIN", b"\0alice\0alice-secret"), 13, "")
        self.connection.local = True
        self.assertBind(sasl(b"PLAIN", b"\0alice\0alice-secret"), 0, "dn:" + ALICE)


class AuthorizationPolicyTests(AuthenticationTestsBase):
    """
    Under C{authz_policy = "to"}, a PLAIN authorization identity other than
    the user's own is allowed when the user's entry's authzTo names it (a
    C{u:} name is C{uid=<name>,cn=plain,cn=auth} to the mappings), and
    refused (insufficientAccessRights) otherwise; a root DN becomes anyone.
    """

    authzPolicy = "to"

    def setUp(self) -> None:
        super().setUp()
        self.connection.secure = True
        op = self.directory.internalOperation()
        self.successResultOf(self.directory.modify(
            op, self.schema.normalizeDN(DN.parse(ALICE)),
            [Modification("add", "authzTo", (b"dn:uid=bob,ou=people," + SUFFIX.encode(),))]))

    def test_authzTo(self) -> None:
        """
        alice may act as bob, by DN or user name, and not as carol.
        """
        bob = "dn:uid=bob,ou=people," + SUFFIX
        self.assertBind(sasl(b"PLAIN", bob.encode() + b"\0alice\0alice-secret"), 0, bob)
        self.assertBind(sasl(b"PLAIN", b"u:bob\0alice\0alice-secret"), 0, bob)
        self.assertBind(sasl(b"PLAIN", b"u:carol\0alice\0alice-secret"), 50, "")
        self.assertBind(sasl(b"PLAIN", b"u:alice\0bob\0bob-secret"), 50, "")
        self.assertBind(sasl(b"PLAIN", b"u:carol\0dn:" + ROOT.encode() + b"\0secret"), 0,
                        "dn:uid=carol,ou=people," + SUFFIX)


class RequireTLSTests(AuthenticationTestsBase):
    """
    With C{require_tls_for_simple_bind}, a simple bind with a password
    needs TLS or a local socket.
    """

    requireTLS = True

    def bind(self, dn: str, password: str) -> pureldap.LDAPBindRequest:
        return pureldap.LDAPBindRequest(dn=dn.encode(), auth=password.encode())

    def test_cleartext(self) -> None:
        """
        A simple bind in the clear is confidentialityRequired, whether or
        not the password is right.
        """
        code, message = self.result(self.bind(ALICE, "alice-secret"))
        self.assertEqual((code, message), (13, b"confidentiality required: use StartTLS or ldaps"))
        self.assertEqual(self.result(self.bind(ALICE, "wrong"))[0], 13)
        self.assertEqual(self.whoAmI(), b"")

    def test_protected(self) -> None:
        """
        Under TLS or on a local socket, the simple bind goes ahead.
        """
        self.connection.secure = True
        self.assertBind(self.bind(ALICE, "alice-secret"), 0, "dn:" + ALICE)
        self.connection.secure = False
        self.connection.local = True
        self.assertBind(self.bind(ALICE, "wrong"), 49, "")

    def test_anonymous(self) -> None:
        """
        An anonymous bind carries no password and is not refused.
        """
        self.assertBind(self.bind("", ""), 0, "")


class NoAnonymousTests(AuthenticationTestsBase):
    """
    With C{allow_anonymous = false}, an anonymous client may only
    authenticate: bind, StartTLS, WhoAmI, and read the root DSE.
    """

    allowAnonymous = False

    def search(self, base: str, scope: int) -> pureldap.LDAPSearchRequest:
        return pureldap.LDAPSearchRequest(baseObject=base.encode(), scope=scope,
                                          filter=wireFilter("(objectClass=*)"))

    def test_anonymousBind(self) -> None:
        """
        An anonymous bind is inappropriateAuthentication, as in slapd with
        C{disallow bind_anon}.
        """
        self.assertBind(pureldap.LDAPBindRequest(dn=b"", auth=b""), 48, "")

    def test_operationsRefused(self) -> None:
        """
        Searches, compares and writes are strongAuthRequired before
        anything is looked up; after a bind they are served.
        """
        for request in [
            self.search(SUFFIX, 2),
            self.search("cn=Subschema", 0),
            self.search("", 1),
            pureldap.LDAPCompareRequest(entry=ALICE.encode(),
                                        ava=pureldap.LDAPAttributeValueAssertion(
                                            pureldap.LDAPAttributeDescription(b"uid"),
                                            pureldap.LDAPAssertionValue(b"alice"))),
            pureldap.LDAPDelRequest(entry=b"uid=nobody," + SUFFIX.encode()),
            pureldap.LDAPExtendedRequest(requestName=b"1.3.6.1.4.1.4203.1.11.1"),
        ]:
            self.assertEqual(self.result(request),
                             (8, b"operation requires authentication"), request)
        self.assertEqual(self.result(pureldap.LDAPBindRequest(dn=ALICE.encode(),
                                                              auth=b"alice-secret"))[0], 0)
        self.assertEqual(self.result(self.search(SUFFIX, 0))[0], 0)

    def test_allowed(self) -> None:
        """
        The root DSE and WhoAmI are served to an anonymous client.
        """
        responses = self.execute(self.search("", 0))
        self.assertEqual(len(responses), 2)
        self.assertEqual(responses[-1].resultCode, 0)
        self.assertEqual(self.whoAmI(), b"")


class ConfigTests(unittest.TestCase):
    """
    The authentication keys of C{[server]}.
    """

    def load(self, server: str) -> Any:
        config = Path(tempfile.mkdtemp(prefix="ldapd-sasl-")) / "ldapd.toml"
        config.write_text(
            f'[server]\nlisten = ["tcp:10389"]\n{server}\n[[database]]\nsuffix = "{SUFFIX}"\n'
        )
        return loadConfig(config, task.Clock())

    def test_keys(self) -> None:
        """
        C{sasl_map} and C{require_tls_for_simple_bind} reach the directory.
        """
        config = self.load('require_tls_for_simple_bind = true\n'
                           'sasl_map = [{ match = "^uid=(.*),cn=plain,cn=auth$", dn = "uid=$1" }]')
        authentication = config.directory.authentication
        self.assertTrue(authentication.requireTLSForSimpleBind)
        self.assertEqual([m.pattern.pattern for m in authentication.mappings],
                         ["^uid=(.*),cn=plain,cn=auth$"])

    def test_defaults(self) -> None:
        """
        By default there are no mappings and simple binds may be in the clear.
        """
        authentication = self.load("").directory.authentication
        self.assertEqual((authentication.mappings, authentication.requireTLSForSimpleBind),
                         ([], False))

    def test_errors(self) -> None:
        """
        Wrong values are named.
        """
        for server, expected in [
            ("require_tls_for_simple_bind = 1", "server.require_tls_for_simple_bind: must be"),
            ('sasl_map = [{ match = "(", dn = "x" }]', "server.sasl_map[0]: invalid regular"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                self.load(server)
            self.assertRegex(str(caught.exception), re.escape(expected))
