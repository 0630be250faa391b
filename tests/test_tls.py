"""
Tests for L{ldapd.tls} and the protocol's side of TLS: the C{[server] tls}
configuration, C{ssl:} listeners, the handshakes L{ServerTLS} accepts and
refuses (driven in memory with pyOpenSSL), reloading, and StartTLS on a
L{LDAPServerProtocol} over an in-memory transport.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from ldaptor.protocols import pureldap
from OpenSSL import SSL, crypto
from twisted.internet import defer, interfaces, task
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface import implementer

from ldapd.backends.memory import MemoryBackend
from ldapd.config import loadConfig
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.operation import ANONYMOUS, Identity
from ldapd.protocol import LDAPServerFactory
from ldapd.registry import ConfigContext, ConfigError
from ldapd.sasl import Authentication
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, decodeResponses
from ldapd.testing_tls import CertificateAuthority
from ldapd.tls import (
    START_TLS,
    ClientCertificates,
    ServerTLS,
    TLSError,
    TLSServerEndpoint,
    TLSSettings,
    serverEndpoint,
    tlsFromConfig,
)

SUFFIX = "dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"


class PKITestsMixin:
    """
    A CA, a server certificate for 127.0.0.1 and a client certificate for
    alice, in a temporary folder.
    """

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-tls-test-"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.ca = CertificateAuthority(self.folder)
        self.certificate, self.key = self.ca.issue("server", "cn=localhost", server=True)
        self.clientCertificate, self.clientKey = self.ca.issue("alice", ALICE)
        super().setUp()  # type: ignore[misc]

    def settings(self, **kw: Any) -> TLSSettings:
        """
        @return: settings for the server certificate, with C{kw} changed.
        """
        return TLSSettings(self.certificate, self.key, **kw)

    def clientContext(
        self, certificate: bool = False, maximum: int | None = None, ciphers: bytes | None = None
    ) -> SSL.Context:
        """
        A client context that trusts the test CA and is otherwise willing to
        speak anything, so that whatever is refused is refused by the server.

        @param certificate: whether to present alice's certificate.
        @param maximum: the newest protocol version to offer.
        @param ciphers: the TLS 1.2 cipher suites to offer.
        """
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_VERSION)
        if maximum is not None:
            context.set_max_proto_version(maximum)
        context.set_cipher_list(ciphers or b"ALL:@SECLEVEL=0")
        context.load_verify_locations(str(self.ca.caCertificate))
        context.set_verify(SSL.VERIFY_PEER, lambda *args: bool(args[-1]))
        if certificate:
            context.use_certificate_file(str(self.clientCertificate))
            context.use_privatekey_file(str(self.clientKey))
        return context

    def handshake(self, tls: ServerTLS, client: SSL.Context) -> SSL.Connection:
        """
        Run a TLS handshake in memory between a new server connection and a
        client, then exchange one byte each way (with TLS 1.3 the server
        refuses a client certificate only after the client has finished).

        @return: the server side.
        @raise SSL.Error: if either side gives up.
        """
        server = tls.serverConnectionForTLS(None)
        server.set_accept_state()
        connection = SSL.Connection(client, None)
        connection.set_connect_state()
        connection.set_tlsext_host_name(b"localhost")
        sent = False
        for _ in range(20):
            for side in (connection, server):
                try:
                    side.do_handshake()
                    if side is connection and not sent:
                        connection.send(b"x")
                        sent = True
                    if side is server:
                        server.recv(1)
                except SSL.WantReadError:
                    pass
            moved = False
            for source, target in ((connection, server), (server, connection)):
                try:
                    data = source.bio_read(65536)
                except SSL.WantReadError:
                    continue
                target.bio_write(data)
                moved = True
            if not moved:
                break
        return server


class ConfigTests(PKITestsMixin, unittest.TestCase):
    """
    C{[server] tls} is checked when the configuration is loaded.
    """

    def build(self, table: dict[str, Any]) -> ServerTLS:
        context = ConfigContext(self.folder / "ldapd.toml", "server.tls", None, None)  # type: ignore[arg-type]
        return tlsFromConfig(table, context)

    def assertConfigError(self, table: dict[str, Any], key: str, problem: str) -> None:
        with self.assertRaises(ConfigError) as caught:
            self.build(table)
        self.assertIn(f"server.tls.{key}: ", str(caught.exception))
        self.assertIn(problem, str(caught.exception))

    def test_relativePaths(self) -> None:
        """
        Relative paths are taken from the configuration file's folder, and
        the defaults are TLS 1.2 and no client certificates.
        """
        tls = self.build({"certificate": "server.pem", "private_key": "server.key"})
        self.assertEqual(tls.settings, TLSSettings(self.certificate, self.key))

    def test_clientCertificates(self) -> None:
        """
        Client certificates need the CAs that issue them.
        """
        tls = self.build({"certificate": "server.pem", "private_key": "server.key",
                          "client_certificates": "required",
                          "ca_certificates": str(self.ca.caCertificate)})
        self.assertIs(tls.settings.clientCertificates, ClientCertificates.REQUIRED)
        self.assertConfigError(
            {"certificate": "server.pem", "private_key": "server.key",
             "client_certificates": "optional"},
            "ca_certificates", "is required with client_certificates = 'optional'",
        )

    def test_errors(self) -> None:
        """
        A missing, unknown or wrong key is named.
        """
        base = {"certificate": "server.pem", "private_key": "server.key"}
        self.assertConfigError({"private_key": "server.key"}, "certificate", "is required")
        self.assertConfigError(dict(base, cert="x"), "cert", "unknown key")
        self.assertConfigError(dict(base, client_certificates="demand"),
                               "client_certificates", '"none", "optional" or "required"')
        self.assertConfigError(dict(base, min_version="TLSv1.1"), "min_version", "TLSv1.2")
        self.assertConfigError(dict(base, ciphers=3), "ciphers", "must be a string")

    def test_unusableFiles(self) -> None:
        """
        A file that is missing, not PEM, or a key of another certificate
        stops start-up with a line saying which.
        """
        _, otherKey = self.ca.issue("other", "cn=other", server=True)
        for table, problem in [
            ({"certificate": "missing.pem", "private_key": "server.key"}, "cannot read"),
            ({"certificate": "server.key", "private_key": "server.key"}, "no PEM certificate"),
            ({"certificate": "server.pem", "private_key": "server.pem"}, "private key"),
            ({"certificate": "server.pem", "private_key": str(otherKey)}, "cannot use"),
            ({"certificate": "server.pem", "private_key": "server.key", "ciphers": "RC4-MD5"},
             "no cipher suite OpenSSL knows"),
            ({"certificate": "server.pem", "private_key": "server.key",
              "client_certificates": "optional", "ca_certificates": "server.key"},
             "no PEM certificate in the CA certificates"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                self.build(table)
            self.assertIn("server.tls: ", str(caught.exception))
            self.assertIn(problem, str(caught.exception))

    def test_loadConfig(self) -> None:
        """
        A configuration with C{tls} and an C{ssl:} listener loads, and the
        server's TLS is the one the listener uses.
        """
        path = self.folder / "ldapd.toml"
        path.write_text(
            '[server]\nlisten = ["ssl:10636:interface=127.0.0.1"]\n'
            'tls = { certificate = "server.pem", private_key = "server.key" }\n'
            f'[[database]]\nsuffix = "{SUFFIX}"\n'
        )
        config = loadConfig(path, task.Clock())
        assert config.tls is not None
        self.assertEqual(config.tls.settings.certificate, self.certificate)

    def test_sslListenerNeedsTLS(self) -> None:
        """
        An C{ssl:} listener without C{tls} is a configuration error naming it.
        """
        path = self.folder / "ldapd.toml"
        path.write_text(
            '[server]\nlisten = ["ssl:10636"]\n'
            f'[[database]]\nsuffix = "{SUFFIX}"\n'
        )
        with self.assertRaises(ConfigError) as caught:
            loadConfig(path, task.Clock())
        self.assertIn("server.listen[0]: ", str(caught.exception))
        self.assertIn("needs [server] tls", str(caught.exception))


class ServerEndpointTests(PKITestsMixin, unittest.TestCase):
    """
    L{serverEndpoint} wraps C{ssl:} listeners with the configured TLS.
    """

    def test_ssl(self) -> None:
        """
        An C{ssl:} listener is a TCP endpoint with the server's TLS around it.
        """
        tls = ServerTLS(self.settings())
        endpoint = serverEndpoint(task.Clock(), "ssl:10636:interface=127.0.0.1", tls)
        self.assertIsInstance(endpoint, TLSServerEndpoint)
        self.assertEqual(endpoint._wrapped._port, 10636)
        self.assertIs(endpoint._tls, tls)

    def test_sslWithFiles(self) -> None:
        """
        Certificate arguments in an C{ssl:} string are refused: the
        certificate comes from C{[server] tls} alone.
        """
        tls = ServerTLS(self.settings())
        with self.assertRaises(ValueError) as caught:
            serverEndpoint(task.Clock(), f"ssl:10636:privateKey={self.key}", tls)
        self.assertIn("[server] tls", str(caught.exception))

    def test_others(self) -> None:
        """
        Other listeners are Twisted's own endpoints, TLS or not.
        """
        endpoint = serverEndpoint(task.Clock(), "tcp:10389", None)
        self.assertNotIsInstance(endpoint, TLSServerEndpoint)
        self.assertTrue(interfaces.IStreamServerEndpoint.providedBy(endpoint))
        with self.assertRaises(ValueError):
            serverEndpoint(task.Clock(), "nosuch:10389", None)


class HandshakeTests(PKITestsMixin, unittest.TestCase):
    """
    What L{ServerTLS} accepts: TLS 1.2 and newer, forward-secret AEAD
    ciphers, and client certificates as configured.
    """

    def test_modern(self) -> None:
        """
        A client offering everything gets TLS 1.3.
        """
        server = self.handshake(ServerTLS(self.settings()), self.clientContext())
        self.assertEqual(server.get_protocol_version_name(), "TLSv1.3")

    def test_oldVersionsRefused(self) -> None:
        """
        TLS 1.1 is refused; TLS 1.2 is accepted unless C{min_version} is TLS 1.3.
        """
        tls = ServerTLS(self.settings())
        with self.assertRaises(SSL.Error):
            self.handshake(tls, self.clientContext(maximum=SSL.TLS1_1_VERSION))
        server = self.handshake(tls, self.clientContext(maximum=SSL.TLS1_2_VERSION))
        self.assertEqual(server.get_protocol_version_name(), "TLSv1.2")
        strict = ServerTLS(self.settings(minimumVersion="TLSv1.3"))
        with self.assertRaises(SSL.Error):
            self.handshake(strict, self.clientContext(maximum=SSL.TLS1_2_VERSION))

    def test_weakCiphersRefused(self) -> None:
        """
        A TLS 1.2 client offering only a CBC suite is refused; one offering
        an AEAD suite is served.
        """
        tls = ServerTLS(self.settings())
        with self.assertRaises(SSL.Error):
            self.handshake(tls, self.clientContext(
                maximum=SSL.TLS1_2_VERSION, ciphers=b"ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"))
        server = self.handshake(tls, self.clientContext(
            maximum=SSL.TLS1_2_VERSION, ciphers=b"ECDHE-ECDSA-AES128-GCM-SHA256"))
        self.assertEqual(server.get_cipher_name(), "ECDHE-ECDSA-AES128-GCM-SHA256")

    def test_noClientCertificates(self) -> None:
        """
        By default clients are not asked for a certificate.
        """
        server = self.handshake(ServerTLS(self.settings()), self.clientContext(certificate=True))
        self.assertIsNone(server.get_peer_certificate())

    def test_optionalClientCertificate(self) -> None:
        """
        With optional client certificates, a client may send one, which the
        server sees, or none.
        """
        tls = ServerTLS(self.settings(caCertificates=self.ca.caCertificate,
                                      clientCertificates=ClientCertificates.OPTIONAL))
        server = self.handshake(tls, self.clientContext(certificate=True))
        certificate = server.get_peer_certificate()
        assert certificate is not None
        self.assertEqual(certificate.to_cryptography().subject.rfc4514_string(),
                         "UID=alice,OU=people,DC=example,DC=com")
        self.assertIsNone(self.handshake(tls, self.clientContext()).get_peer_certificate())

    def test_requiredClientCertificate(self) -> None:
        """
        With required client certificates, a client without one is refused,
        as is one whose certificate another CA issued.
        """
        tls = ServerTLS(self.settings(caCertificates=self.ca.caCertificate,
                                      clientCertificates=ClientCertificates.REQUIRED))
        self.assertIsNotNone(
            self.handshake(tls, self.clientContext(certificate=True)).get_peer_certificate())
        with self.assertRaises(SSL.Error):
            self.handshake(tls, self.clientContext())
        stranger = CertificateAuthority(self.folder, "another CA")
        self.clientCertificate, self.clientKey = stranger.issue("mallory", "cn=mallory")
        with self.assertRaises(SSL.Error):
            self.handshake(tls, self.clientContext(certificate=True))


class ReloadTests(PKITestsMixin, unittest.TestCase):
    """
    L{ServerTLS.reload} reads the files again for new connections.
    """

    def subject(self, tls: ServerTLS) -> str:
        certificate = tls.serverConnectionForTLS(None).get_certificate()
        assert certificate is not None
        return certificate.to_cryptography().subject.rfc4514_string()

    def test_reload(self) -> None:
        """
        After the files are replaced and reloaded, new connections present
        the new certificate.
        """
        tls = ServerTLS(self.settings())
        self.assertEqual(self.subject(tls), "CN=localhost")
        renewed, renewedKey = self.ca.issue("renewed", "cn=renewed", server=True)
        self.certificate.write_bytes(renewed.read_bytes())
        self.key.write_bytes(renewedKey.read_bytes())
        self.assertEqual(self.subject(tls), "CN=localhost")
        tls.reload()
        self.assertEqual(self.subject(tls), "CN=renewed")

    def test_badReload(self) -> None:
        """
        If the new files cannot be used, L{ServerTLS.reload} raises and the
        current certificate stays in use.
        """
        tls = ServerTLS(self.settings())
        self.key.write_bytes(b"not a key")
        with self.assertRaises(TLSError):
            tls.reload()
        self.assertEqual(self.subject(tls), "CN=localhost")
        self.handshake(tls, self.clientContext())


@implementer(interfaces.ITLSTransport)
class TLSStringTransport(StringTransport):
    """
    A L{StringTransport} that can start TLS, for the protocol's side of
    StartTLS.

    @ivar started: for each C{startTLS} call, its argument and what had been
        written before it.
    @ivar peerCertificate: what C{getPeerCertificate} returns once TLS is on.
    @ivar peerCredentials: the C{(pid, uid, gid)} C{SO_PEERCRED} reports.
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.started: list[tuple[Any, bytes]] = []
        self.peerCertificate: crypto.X509 | None = None
        self.peerCredentials = (4242, 1000, 100)

    def startTLS(self, contextFactory: Any) -> None:
        self.started.append((contextFactory, self.value()))

    def getPeerCertificate(self) -> crypto.X509 | None:
        return self.peerCertificate

    def getHandle(self) -> Any:
        return _Handle(self)


class _Handle:
    """
    What C{getHandle} returns: enough of a socket and a TLS connection.
    """

    def __init__(self, transport: TLSStringTransport) -> None:
        self._transport = transport

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        return struct.pack("3i", *self._transport.peerCredentials)

    def get_protocol_version_name(self) -> str:
        return "TLSv1.3"

    def get_cipher_name(self) -> str:
        return "TLS_AES_256_GCM_SHA384"


def startTLS(requestValue: bytes | None = None) -> pureldap.LDAPExtendedRequest:
    """
    @return: a StartTLS request.
    """
    return pureldap.LDAPExtendedRequest(requestName=START_TLS.encode(), requestValue=requestValue)


def message(messageId: int, value: Any) -> bytes:
    """
    @return: an encoded LDAPMessage.
    """
    return pureldap.LDAPMessage(value, id=messageId).toWire()


class _Holding:
    """
    A plugin whose C{pre_search} hook waits until the test releases it,
    so that a search stays outstanding; and whose C{post_extended} hook
    returns C{postWaiting}, which has fired unless a test says otherwise.
    """

    name = "holding"

    def __init__(self) -> None:
        self.waiting: defer.Deferred[None] = defer.Deferred()
        self.postWaiting: defer.Deferred[None] = defer.succeed(None)

    def pre_search(self, op: Any, base: Any) -> Any:
        return self.waiting

    def post_extended(self, op: Any, resultCode: int) -> Any:
        return self.postWaiting


class ProtocolTestsBase(PKITestsMixin, unittest.TestCase):
    """
    A protocol over an in-memory transport serving a real directory, whose
    searches wait for C{self.holding}.

    @cvar tlsEnabled: whether the server has TLS.
    """

    tlsEnabled = True

    def setUp(self) -> None:
        super().setUp()
        self.clock = task.Clock()
        self.schema = Schema.standard()
        self.holding = _Holding()
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema,
                                            reactor=self.clock),
                      DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            [self.holding], schema=self.schema, reactor=self.clock,
            authentication=Authentication(),
        )
        self.successResultOf(self.directory.open())
        self.tls = ServerTLS(self.settings()) if self.tlsEnabled else None
        self.factory = LDAPServerFactory(self.directory, reactor=self.clock, tls=self.tls)
        self.connect(IPv4Address("TCP", "127.0.0.1", 10389))

    def connect(self, host: Any) -> None:
        """
        Connect a new protocol to a new transport whose local address is C{host}.
        """
        self.protocol = self.factory.buildProtocol(host)
        self.transport = TLSStringTransport(
            hostAddress=host, peerAddress=IPv4Address("TCP", "192.0.2.7", 40000))
        self.protocol.makeConnection(self.transport)

    def responses(self) -> list[pureldap.LDAPMessage]:
        data = self.transport.value()
        self.transport.clear()
        return decodeResponses(data)

    def rootDSE(self) -> dict[bytes, list[bytes]]:
        """
        @return: the root DSE's operational attributes as this connection sees them.
        """
        self.protocol.dataReceived(message(9, pureldap.LDAPSearchRequest(
            baseObject=b"", scope=0, filter=pureldap.LDAPFilter_present("objectClass"),
            attributes=[b"+"])))
        entry, done = self.responses()
        self.assertEqual(done.value.resultCode, 0)
        return dict(entry.value.attributes)


class StartTLSTests(ProtocolTestsBase):
    """
    StartTLS (RFC 4511 §4.14) with TLS configured.
    """

    def test_success(self) -> None:
        """
        StartTLS is answered with success and the StartTLS OID, in the
        clear; then the transport switches to the server's TLS, and the
        handshake makes the connection secure.
        """
        self.protocol.dataReceived(message(1, startTLS()))
        [(contextFactory, before)] = self.transport.started
        self.assertIs(contextFactory, self.tls)
        [response] = decodeResponses(before)
        self.assertEqual((response.id, response.value.resultCode, response.value.responseName),
                         (1, 0, START_TLS.encode()))
        assert self.protocol.connection is not None
        self.assertFalse(self.protocol.connection.secure)
        self.protocol.handshakeCompleted()
        self.assertTrue(self.protocol.connection.secure)
        self.assertIsNone(self.protocol.connection.peerCertificate)

    def test_becomesAnonymous(self) -> None:
        """
        As in slapd, a bound connection that starts TLS is anonymous again.
        """
        assert self.protocol.connection is not None
        self.protocol.connection.identity = Identity(DN.parse(ALICE), DN.parse(ALICE))
        self.protocol.dataReceived(message(1, startTLS()))
        self.assertIs(self.protocol.connection.identity, ANONYMOUS)

    def test_clientCertificate(self) -> None:
        """
        The client's certificate, when the handshake verified one, is the
        connection's.
        """
        self.protocol.dataReceived(message(1, startTLS()))
        self.transport.peerCertificate = crypto.X509.from_cryptography(
            x509.load_pem_x509_certificate(self.clientCertificate.read_bytes()))
        self.protocol.handshakeCompleted()
        assert self.protocol.connection is not None
        self.assertEqual(self.protocol.connection.peerCertificate.subject.rfc4514_string(),
                         "UID=alice,OU=people,DC=example,DC=com")

    def test_alreadySecure(self) -> None:
        """
        StartTLS on a connection already under TLS is operationsError.
        """
        self.protocol.dataReceived(message(1, startTLS()))
        self.protocol.handshakeCompleted()
        self.transport.clear()
        self.protocol.dataReceived(message(2, startTLS()))
        [response] = self.responses()
        self.assertEqual((response.value.resultCode, response.value.errorMessage),
                         (1, b"TLS already started"))
        self.assertEqual(len(self.transport.started), 1)

    def test_outstanding(self) -> None:
        """
        StartTLS while another request is running is operationsError, and
        the connection stays in the clear.
        """
        self.protocol.dataReceived(message(1, pureldap.LDAPSearchRequest(
            baseObject=SUFFIX.encode(), scope=0, filter=pureldap.LDAPFilter_present("objectClass"))))
        self.protocol.dataReceived(message(2, startTLS()))
        [response] = self.responses()
        self.assertEqual((response.id, response.value.resultCode), (2, 1))
        self.assertEqual(self.transport.started, [])
        self.holding.waiting.callback(None)
        self.assertEqual([r.id for r in self.responses()], [1, 1])

    def test_pipelined(self) -> None:
        """
        A request sent right behind StartTLS, before its response, would be
        read as if it had come over TLS: StartTLS is refused with
        operationsError and the request is answered in the clear.
        """
        self.holding.waiting.callback(None)
        self.protocol.dataReceived(
            message(1, startTLS())
            + message(2, pureldap.LDAPExtendedRequest(requestName=b"1.3.6.1.4.1.4203.1.11.3")))
        first, second = self.responses()
        self.assertEqual((first.id, first.value.resultCode), (1, 1))
        self.assertEqual((second.id, second.value.resultCode), (2, 0))
        self.assertEqual(self.transport.started, [])

    def test_sentDuringSwitch(self) -> None:
        """
        A request that arrives after StartTLS was accepted, before the
        response, came in the clear: the connection is closed instead of
        switching to TLS.
        """
        self.holding.postWaiting = defer.Deferred()
        self.protocol.dataReceived(message(1, startTLS()))
        self.protocol.dataReceived(message(2, pureldap.LDAPExtendedRequest(
            requestName=b"1.3.6.1.4.1.4203.1.11.3")))
        self.holding.postWaiting.callback(None)
        [response] = self.responses()
        self.assertEqual((response.id, response.value.resultCode), (1, 0))
        self.assertEqual(self.transport.started, [])
        self.assertTrue(self.transport.disconnecting)

    def test_laterRequestsWait(self) -> None:
        """
        Requests after StartTLS start only once it is over.
        """
        self.holding.waiting.callback(None)
        self.protocol.dataReceived(message(1, startTLS()))
        self.protocol.dataReceived(message(2, pureldap.LDAPExtendedRequest(
            requestName=b"1.3.6.1.4.1.4203.1.11.3")))
        [(_, before)] = self.transport.started
        self.assertEqual([m.id for m in decodeResponses(before)], [1])

    def test_requestValue(self) -> None:
        """
        StartTLS with a request value is protocolError.
        """
        self.protocol.dataReceived(message(1, startTLS(b"x")))
        [response] = self.responses()
        self.assertEqual(response.value.resultCode, 2)
        self.assertEqual(self.transport.started, [])

    def test_rootDSE(self) -> None:
        """
        The root DSE lists StartTLS; on a cleartext TCP connection it offers
        no SASL mechanism, under TLS it offers PLAIN.
        """
        attributes = self.rootDSE()
        self.assertIn(START_TLS.encode(), attributes[b"supportedExtension"])
        self.assertNotIn(b"supportedSASLMechanisms", attributes)
        self.protocol.dataReceived(message(1, startTLS()))
        self.protocol.handshakeCompleted()
        self.transport.clear()
        self.assertEqual(self.rootDSE()[b"supportedSASLMechanisms"], [b"PLAIN"])

    def test_local(self) -> None:
        """
        A connection on a local socket is local, carries the client's uid
        and gid, and is offered EXTERNAL and PLAIN.
        """
        self.connect(UNIXAddress(b"/run/ldapi"))
        assert self.protocol.connection is not None
        self.assertTrue(self.protocol.connection.local)
        self.assertEqual(self.protocol.connection.peerCredentials, (1000, 100))
        self.assertEqual(self.rootDSE()[b"supportedSASLMechanisms"], [b"EXTERNAL", b"PLAIN"])


class NoTLSTests(ProtocolTestsBase):
    """
    Without C{[server] tls}, StartTLS is not offered.
    """

    tlsEnabled = False

    def test_refused(self) -> None:
        """
        StartTLS is protocolError, as an unsupported extended operation is.
        """
        self.protocol.dataReceived(message(1, startTLS()))
        [response] = self.responses()
        self.assertEqual((response.value.resultCode, response.value.errorMessage),
                         (2, b"TLS is not configured"))
        self.assertEqual(self.transport.started, [])

    def test_rootDSE(self) -> None:
        """
        The root DSE does not list StartTLS.
        """
        self.assertNotIn(START_TLS.encode(), self.rootDSE()[b"supportedExtension"])
