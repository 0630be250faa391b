"""
Integration tests of transport security and authentication: the real
C{twist ldapd} with an C{ssl:} listener, StartTLS and an ldapi socket,
driven by OpenLDAP's clients, python-ldap and ldap3. The CA, the server's
certificate and alice's client certificate are made for each run in a
temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import ClassVar

import pytest
from twisted.trial import unittest

from ldapd.testing import ServerProcess, ServerTestsMixin, exampleConfig, freePort
from ldapd.testing_tls import CertificateAuthority

try:
    import ldap
except ImportError:
    ldap = None

try:
    import ldap3
except ImportError:
    ldap3 = None

pytestmark = pytest.mark.integration

ALICE = "uid=alice,ou=people,dc=example,dc=com"


class SecureServerMixin(ServerTestsMixin):
    """
    One server for the class (see L{ServerTestsMixin}), with TLS from a
    fresh CA, listening on TCP (StartTLS), TLS (LDAPS) and a local socket
    (ldapi).

    @cvar extraServer: more C{[server]} keys for the class's server.
    """

    extraServer = ""
    server: ClassVar[ServerProcess | None] = None
    folder: ClassVar[Path]
    ca: ClassVar[CertificateAuthority]
    ldapsURL: ClassVar[str]
    ldapiURL: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        for tool in ("ldapsearch", "ldapwhoami"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest(f"{tool} not installed (Debian/Ubuntu package ldap-utils)")
        cls.folder = Path(tempfile.mkdtemp(prefix="ldapd-security-"))
        cls.ca = CertificateAuthority(cls.folder)
        certificate, key = cls.ca.issue("server", "cn=localhost", server=True)
        cls.ca.issue("alice", ALICE)
        sslPort = freePort()
        socketPath = cls.folder / "ldapi"
        tls = ", ".join([
            f'certificate = "{certificate}"', f'private_key = "{key}"',
            f'ca_certificates = "{cls.ca.caCertificate}"', 'client_certificates = "optional"',
        ])
        server = f"""
listen = ["tcp:{{port}}:interface=127.0.0.1", "ssl:{sslPort}:interface=127.0.0.1",
          "unix:{socketPath}"]
tls = {{ {tls} }}
sasl_map = [
    {{ match = '^uid=([^,]+),cn=plain,cn=auth$', dn = 'uid=$1,ou=people,dc=example,dc=com' }},
    {{ match = '^(uid=[^,]+,ou=people,dc=example,dc=com)$', dn = '$1' }},
]
{cls.extraServer}
"""
        config = exampleConfig().replace('listen = ["tcp:{port}:interface=127.0.0.1"]\n', server)
        cls.ldapsURL = f"ldaps://127.0.0.1:{sslPort}"
        cls.ldapiURL = "ldapi://" + urllib.parse.quote(str(socketPath), safe="")
        cls.server = ServerProcess(config, cls.folder)
        cls.server.start()

    @classmethod
    def tearDownClass(cls) -> None:
        """
        Stop the class's server and remove its folder, the CA's keys with it.
        """
        super().tearDownClass()
        folder = cls.__dict__.get("folder")
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            del cls.folder

    def client(self, tool: str, *args: str, ca: Path | None = None,
            certificate: str | None = None) -> subprocess.CompletedProcess[str]:
        """
        Run an OpenLDAP client that trusts the test CA (or C{ca}), ignoring
        this machine's ldap.conf.

        @param certificate: the base name of a client certificate to present.
        """
        env = dict(os.environ, LDAPCONF=os.devnull, LDAPRC="ldapd-test-no-ldaprc",
                   LDAPTLS_REQCERT="demand",
                   LDAPTLS_CACERT=str(ca or self.ca.caCertificate))
        if certificate is not None:
            env["LDAPTLS_CERT"] = str(self.folder / f"{certificate}.pem")
            env["LDAPTLS_KEY"] = str(self.folder / f"{certificate}.key")
        return subprocess.run([tool, *args], capture_output=True, text=True, env=env,
                              timeout=30, check=False)

    def assertWhoAmI(self, completed: subprocess.CompletedProcess[str], authzId: str) -> None:
        """
        Assert that ldapwhoami succeeded and printed C{authzId}.
        """
        self.assertEqual(completed.returncode, 0, completed.stderr)  # type: ignore[attr-defined]
        self.assertEqual(completed.stdout.strip(), authzId)  # type: ignore[attr-defined]


class TransportTests(SecureServerMixin, unittest.SynchronousTestCase):
    """
    StartTLS, LDAPS and ldapi with OpenLDAP's clients.
    """

    def test_startTLS(self) -> None:
        """
        C{ldapsearch -ZZ} starts TLS, checking the server's certificate
        against the CA; the root DSE then offers PLAIN. A client that does
        not trust the CA gives up.
        """
        assert self.server is not None
        args = ("-x", "-ZZ", "-H", self.server.url, "-LLL", "-b", "", "-s", "base",
                "supportedSASLMechanisms")
        completed = self.client("ldapsearch", *args)
        self.assertEqual(completed.returncode, 0, completed.stderr)
        self.assertIn("supportedSASLMechanisms: PLAIN", completed.stdout)
        stranger = CertificateAuthority(Path(tempfile.mkdtemp(dir=self.folder)), "stranger")
        self.assertNotEqual(self.client("ldapsearch", *args, ca=stranger.caCertificate).returncode, 0)

    def test_cleartextRootDSE(self) -> None:
        """
        In the clear, the root DSE lists StartTLS and offers no SASL mechanism.
        """
        assert self.server is not None
        completed = self.client("ldapsearch", "-x", "-H", self.server.url, "-LLL", "-b", "",
                             "-s", "base", "supportedExtension", "supportedSASLMechanisms")
        self.assertIn("supportedExtension: 1.3.6.1.4.1.1466.20037", completed.stdout)
        self.assertNotIn("supportedSASLMechanisms", completed.stdout)

    def test_ldaps(self) -> None:
        """
        A simple bind over ldaps:// works.
        """
        self.assertWhoAmI(
            self.client("ldapwhoami", "-x", "-H", self.ldapsURL, "-D", ALICE, "-w", "alice-secret"),
            "dn:" + ALICE)

    def test_ldapsThenStartTLS(self) -> None:
        """
        StartTLS over ldaps:// is operationsError, as in slapd.
        """
        completed = self.client("ldapwhoami", "-x", "-ZZ", "-H", self.ldapsURL)
        self.assertIn("Operations error (1)", completed.stderr)
        self.assertIn("TLS already started", completed.stderr)

    def test_ldapiExternal(self) -> None:
        """
        SASL EXTERNAL on the local socket authenticates as the client's uid
        and gid, in slapd's form.
        """
        self.assertWhoAmI(
            self.client("ldapwhoami", "-Q", "-Y", "EXTERNAL", "-H", self.ldapiURL),
            f"dn:gidNumber={os.getgid()}+uidNumber={os.getuid()},cn=peercred,cn=external,cn=auth")

    def test_certificateExternal(self) -> None:
        """
        SASL EXTERNAL with alice's client certificate, after StartTLS or
        over LDAPS, authenticates as alice.
        """
        assert self.server is not None
        for args in (("-ZZ", "-H", self.server.url), ("-H", self.ldapsURL)):
            self.assertWhoAmI(
                self.client("ldapwhoami", "-Q", "-Y", "EXTERNAL", *args, certificate="alice"),
                "dn:" + ALICE)

    def test_plain(self) -> None:
        """
        SASL PLAIN after StartTLS checks the password of the entry the user
        name maps to.
        """
        assert self.server is not None
        self.assertWhoAmI(
            self.client("ldapwhoami", "-Q", "-Y", "PLAIN", "-U", "alice", "-w", "alice-secret",
                     "-ZZ", "-H", self.server.url),
            "dn:" + ALICE)
        completed = self.client("ldapwhoami", "-Q", "-Y", "PLAIN", "-U", "alice", "-w", "wrong",
                             "-ZZ", "-H", self.server.url)
        self.assertEqual(completed.returncode, 49, completed.stderr)

    def test_pythonLDAP(self) -> None:
        """
        python-ldap starts TLS with C{start_tls_s} and binds.
        """
        if ldap is None:
            raise unittest.SkipTest("python-ldap is not installed")
        assert self.server is not None
        connection = ldap.initialize(self.server.url)
        connection.set_option(ldap.OPT_X_TLS_CACERTFILE, str(self.ca.caCertificate))
        connection.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        connection.start_tls_s()
        connection.simple_bind_s(ALICE, "alice-secret")
        self.assertEqual(connection.whoami_s(), "dn:" + ALICE)
        connection.unbind_s()

    def test_ldap3(self) -> None:
        """
        ldap3 with a C{Tls} that checks the certificate: StartTLS, and LDAPS.
        """
        if ldap3 is None:
            raise unittest.SkipTest("ldap3 is not installed")
        assert self.server is not None
        tls = ldap3.Tls(ca_certs_file=str(self.ca.caCertificate), validate=ssl.CERT_REQUIRED)
        plain = ldap3.Server("127.0.0.1", port=self.server.port, tls=tls)
        connection = ldap3.Connection(plain, ALICE, "alice-secret")
        connection.open()
        self.assertTrue(connection.start_tls())
        self.assertTrue(connection.bind())
        self.assertEqual(connection.extend.standard.who_am_i(), "dn:" + ALICE)
        connection.unbind()
        port = int(self.ldapsURL.rsplit(":", 1)[1])
        secure = ldap3.Server("127.0.0.1", port=port, use_ssl=True, tls=tls)
        connection = ldap3.Connection(secure, ALICE, "alice-secret", auto_bind=True)
        self.assertEqual(connection.extend.standard.who_am_i(), "dn:" + ALICE)
        connection.unbind()


class WorkersTransportTests(TransportTests):
    """
    The same with C{workers = 2}: LDAPS, StartTLS, ldapi (with its peer's
    credentials for SASL EXTERNAL) and client certificates on connections
    the supervisor accepted and handed to a worker.
    """

    extraServer = "workers = 2"


class RequireTLSTests(SecureServerMixin, unittest.SynchronousTestCase):
    """
    C{require_tls_for_simple_bind = true} and C{allow_anonymous = false}.
    """

    extraServer = "require_tls_for_simple_bind = true\nallow_anonymous = false"

    def test_cleartextSimpleBind(self) -> None:
        """
        A simple bind in the clear is confidentialityRequired (13); after
        StartTLS it succeeds.
        """
        assert self.server is not None
        args = ("-x", "-H", self.server.url, "-D", ALICE, "-w", "alice-secret")
        completed = self.client("ldapwhoami", *args)
        self.assertEqual(completed.returncode, 13, completed.stderr)
        self.assertWhoAmI(self.client("ldapwhoami", "-ZZ", *args), "dn:" + ALICE)

    def test_anonymous(self) -> None:
        """
        ldapsearch's anonymous bind is inappropriateAuthentication (48); a
        search on a connection that never bound is strongAuthRequired (8);
        an authenticated search is served.
        """
        assert self.server is not None
        args = ("-x", "-ZZ", "-H", self.server.url, "-LLL", "-b", ALICE, "-s", "base", "1.1")
        completed = self.client("ldapsearch", *args)
        self.assertEqual(completed.returncode, 48, completed.stderr)
        completed = self.client("ldapsearch", *args, "-D", ALICE, "-w", "alice-secret")
        self.assertEqual(completed.returncode, 0, completed.stderr)
        self.assertEqual(completed.stdout.strip(), "dn: " + ALICE)
        if ldap is None:
            raise unittest.SkipTest("python-ldap is not installed")
        connection = ldap.initialize(self.server.url)
        with self.assertRaises(ldap.STRONG_AUTH_REQUIRED):
            connection.search_s(ALICE, ldap.SCOPE_BASE)
        connection.unbind_s()


class ReloadTests(SecureServerMixin, unittest.SynchronousTestCase):
    """
    SIGHUP makes the server read its configuration, and so its certificate
    and key, again.
    """

    def waitForLog(self, text: str, timeout: float = 20.0) -> None:
        """
        Wait until the server has logged C{text}.
        """
        assert self.server is not None
        deadline = time.monotonic() + timeout
        while text not in self.server.log():
            if time.monotonic() > deadline:
                self.fail(f"the server did not log {text!r}:\n{self.server.log()}")
            time.sleep(0.05)

    def test_sighup(self) -> None:
        """
        After the files are replaced with a certificate from another CA and
        the server gets SIGHUP, new connections present the new certificate:
        clients trusting only the new CA connect, those trusting only the
        old one no longer do. A SIGHUP with unusable files changes nothing,
        and the one line it logs names the file and C{server.tls}.
        """
        assert self.server is not None and self.server.process is not None
        renewed = CertificateAuthority(Path(tempfile.mkdtemp(dir=self.folder)), "renewed CA")
        certificate, key = renewed.issue("server", "cn=localhost", server=True)
        args = ("-x", "-H", self.ldapsURL, "-D", ALICE, "-w", "alice-secret")
        self.assertWhoAmI(self.client("ldapwhoami", *args), "dn:" + ALICE)
        self.assertNotEqual(
            self.client("ldapwhoami", *args, ca=renewed.caCertificate).returncode, 0)
        (self.folder / "server.pem").write_bytes(certificate.read_bytes())
        (self.folder / "server.key").write_bytes(key.read_bytes())
        self.server.process.send_signal(signal.SIGHUP)
        self.waitForLog("reload: TLS certificate and key reloaded")
        self.assertWhoAmI(self.client("ldapwhoami", *args, ca=renewed.caCertificate), "dn:" + ALICE)
        self.assertNotEqual(self.client("ldapwhoami", *args).returncode, 0)
        (self.folder / "server.key").write_bytes(b"not a key")
        self.server.process.send_signal(signal.SIGHUP)
        self.waitForLog("server.tls: ")
        self.assertIn("; nothing changed", self.server.log())
        self.assertWhoAmI(self.client("ldapwhoami", *args, ca=renewed.caCertificate), "dn:" + ALICE)
