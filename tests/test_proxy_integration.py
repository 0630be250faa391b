"""
Integration tests of the proxy backend: the real C{twist ldapd} with
C{backend = "proxy"} in front of upstream ldapd processes (and private
slapds, one of them holding a referral object) that hold the example
organisation under C{dc=corp,dc=internal}, driven by OpenLDAP's
command-line clients and ldap3.
"""

from __future__ import annotations

import atexit
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import ldap3
from twisted.trial import unittest

from ldapd.testing import EXAMPLE_LDIF, ServerProcess, SlapdProcess

REMOTE_SUFFIX = "dc=corp,dc=internal"
SERVICE_DN = "cn=admin,dc=corp,dc=internal"
LOCAL_ROOT = "cn=admin,dc=example,dc=com"


def corpLDIF(marker: str) -> Path:
    """
    The example organisation moved to the remote suffix, with an entry
    C{cn=marker} whose description names the upstream that serves it.

    @param marker: the description of C{cn=marker}.
    @return: the path of the LDIF file.
    """
    text = EXAMPLE_LDIF.read_text().replace("dc=example,dc=com", REMOTE_SUFFIX)
    text = text.replace("\ndc: example\n", "\ndc: corp\n")
    text += (f"\ndn: cn=marker,{REMOTE_SUFFIX}\nobjectClass: organizationalRole\ncn: marker\n"
             f"description: {marker}\n")
    path = Path(tempfile.mkdtemp(prefix="ldapd-proxy-")) / "corp.ldif"
    path.write_text(text)
    return path


def upstreamServer(marker: str) -> ServerProcess:
    """
    @return: an ldapd holding L{corpLDIF}, not started.
    """
    return ServerProcess(f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{REMOTE_SUFFIX}"
backend = "memory"
root_dn = "{SERVICE_DN}"
root_password = "secret"
seed_ldif = "{corpLDIF(marker)}"
""")


def proxyServer(upstreams: Sequence[str], server: str = "", **extra: Any) -> ServerProcess:
    """
    @param server: more settings of the C{[server]} table, as TOML lines.
    @param extra: settings of the database, as TOML values.
    @return: an ldapd serving C{dc=example,dc=com} from C{upstreams}, not started.
    """
    settings = "".join(f"{key} = {value}\n" for key, value in extra.items())
    uris = ", ".join(f'"{u}"' for u in upstreams)
    return ServerProcess(f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]
{server}
[[database]]
suffix = "dc=example,dc=com"
backend = "proxy"
root_dn = "{LOCAL_ROOT}"
root_password = "secret"
upstreams = [{uris}]
remote_suffix = "{REMOTE_SUFFIX}"
bind_dn = "{SERVICE_DN}"
bind_password = "secret"
{settings}""")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    """
    Run an OpenLDAP client, with a generous limit so that a hang fails the test.
    """
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def search(url: str, base: str, *args: str) -> subprocess.CompletedProcess[str]:
    """
    An anonymous ldapsearch, in LDIF without wrapping.
    """
    return run("ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-b", base, *args)


def dns(output: str) -> list[str]:
    """
    @return: the DNs of ldapsearch's LDIF output.
    """
    return [line[4:] for line in output.splitlines() if line.startswith("dn: ")]


def marker(url: str) -> subprocess.CompletedProcess[str]:
    """
    Read C{cn=marker}'s description through the proxy.
    """
    return search(url, "cn=marker,dc=example,dc=com", "-s", "base", "description")


def waitForMarker(url: str, expected: str, limit: float = 20.0) -> str:
    """
    Read the marker until it names C{expected} (the proxy goes back to a
    recovered upstream once its retry interval has passed).

    @return: the last answer.
    """
    deadline = time.monotonic() + limit
    while True:
        result = marker(url)
        if f"description: {expected}" in result.stdout or time.monotonic() > deadline:
            return result.stdout + result.stderr
        time.sleep(0.2)


class ProxyServerTests(unittest.SynchronousTestCase):
    """
    Reads, binds and writes through the proxy, checked at both ends.
    """

    upstream: ServerProcess | None = None
    proxy: ServerProcess

    @classmethod
    def setUpClass(cls) -> None:
        cls.upstream = upstreamServer("primary")
        cls.upstream.start()
        cls.proxy = proxyServer([cls.upstream.url], page_size=3)
        try:
            cls.proxy.start()
        except BaseException:
            cls.upstream.stop()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.upstream is not None:
            cls.proxy.stop()
            cls.upstream.stop()
            cls.upstream = None

    def setUp(self) -> None:
        # pytest calls setUpClass; trial does not, so the first test does.
        if type(self).upstream is None:
            type(self).setUpClass()
            atexit.register(type(self).tearDownClass)

    def test_namesRewritten(self) -> None:
        """
        Search results come back under the local suffix, DN-valued
        attributes (member) included.
        """
        result = search(self.proxy.url, "dc=example,dc=com", "(cn=staff)", "member")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(dns(result.stdout), ["cn=staff,ou=groups,dc=example,dc=com"])
        self.assertIn("member: uid=alice,ou=people,dc=example,dc=com", result.stdout)
        self.assertNotIn("dc=corp", result.stdout)

    def test_matchedDN(self) -> None:
        """
        noSuchObject comes back with the matched DN under the local suffix.
        """
        result = search(self.proxy.url, "uid=zed,ou=nowhere,ou=people,dc=example,dc=com")
        self.assertEqual(result.returncode, 32)
        self.assertIn("Matched DN: ou=people,dc=example,dc=com", result.stdout + result.stderr)

    def test_pagedResults(self) -> None:
        """
        A paged search through the proxy (pages of 3 at the proxy, of 3 at
        the upstream) returns every entry exactly once, as an unpaged one does.
        """
        whole = search(self.proxy.url, "dc=example,dc=com", "(objectClass=*)", "1.1")
        paged = search(self.proxy.url, "dc=example,dc=com", "-E", "pr=3/noprompt",
                       "(objectClass=*)", "1.1")
        self.assertEqual(paged.returncode, 0, paged.stderr)
        self.assertEqual(len(dns(whole.stdout)), 21)
        self.assertEqual(sorted(dns(paged.stdout)), sorted(dns(whole.stdout)))

    def test_bindPassThrough(self) -> None:
        """
        A client's bind is checked by the upstream: the right password
        binds, a wrong one is invalidCredentials (49).
        """
        alice = "uid=alice,ou=people,dc=example,dc=com"
        right = run("ldapwhoami", "-x", "-H", self.proxy.url, "-D", alice, "-w", "alice-secret")
        self.assertEqual((right.returncode, right.stdout.strip()), (0, f"dn:{alice}"),
                         right.stderr)
        wrong = run("ldapwhoami", "-x", "-H", self.proxy.url, "-D", alice, "-w", "nope")
        self.assertEqual(wrong.returncode, 49)

    def test_writeRewritten(self) -> None:
        """
        An entry added through the proxy (by its root DN, with ldap3) is
        stored upstream under the remote suffix, with the case of its name
        kept and its member values rewritten, and reads back under the local one.
        """
        server = ldap3.Server(self.proxy.url)
        with ldap3.Connection(server, LOCAL_ROOT, "secret", auto_bind=True) as conn:
            added = conn.add("cn=Proxied,ou=groups,dc=example,dc=com", ["groupOfNames"], {
                "cn": "Proxied", "member": "uid=bob,ou=people,dc=example,dc=com"})
            self.assertTrue(added, conn.result)
            conn.search("cn=proxied,ou=groups,dc=example,dc=com", "(objectClass=*)",
                        ldap3.BASE, attributes=["member"])
            self.assertEqual(conn.entries[0].member.values,
                             ["uid=bob,ou=people,dc=example,dc=com"])
        with ldap3.Connection(ldap3.Server(self.upstream.url), SERVICE_DN, "secret",
                              auto_bind=True) as conn:
            conn.search(f"cn=proxied,ou=groups,{REMOTE_SUFFIX}", "(objectClass=*)", ldap3.BASE,
                        attributes=["member"])
            self.assertEqual(conn.entries[0].entry_dn, f"cn=Proxied,ou=groups,{REMOTE_SUFFIX}")
            self.assertEqual(conn.entries[0].member.values, [f"uid=bob,ou=people,{REMOTE_SUFFIX}"])


class ProxyFailoverTests(unittest.SynchronousTestCase):
    """
    Two upstreams, killed and restarted under a running proxy.
    """

    def setUp(self) -> None:
        self.primary = upstreamServer("primary")
        self.secondary = upstreamServer("secondary")
        for server in (self.primary, self.secondary):
            server.start()
            self.addCleanup(server.stop)
        self.proxy = proxyServer([self.primary.url, self.secondary.url], retry_interval=1,
                                 timeout=5)
        self.proxy.start()
        self.addCleanup(self.proxy.stop)

    def kill(self, server: ServerProcess) -> None:
        """
        SIGKILL an upstream by its PID, as a crash would.
        """
        assert server.process is not None
        server.process.kill()
        server.process.wait()

    def test_failover(self) -> None:
        """
        Requests go to the first upstream; when it is killed, to the next;
        when both are down, they fail with unavailable (52) at once; when
        an upstream is back, it serves again, the first one preferred.
        """
        self.assertIn("description: primary", marker(self.proxy.url).stdout)
        self.kill(self.primary)
        self.assertIn("description: secondary", marker(self.proxy.url).stdout)
        self.kill(self.secondary)
        down = marker(self.proxy.url)
        self.assertEqual(down.returncode, 52, down.stdout + down.stderr)
        self.secondary.start()
        self.assertIn("description: secondary", waitForMarker(self.proxy.url, "secondary"))
        self.primary.start()
        self.assertIn("description: primary", waitForMarker(self.proxy.url, "primary"))


class ProxyToSlapdTests(unittest.SynchronousTestCase):
    """
    The proxy in front of a private slapd, driven by ldapsearch.
    """

    def test_slapdUpstream(self) -> None:
        """
        Entries added through the proxy land in slapd under the remote
        suffix, and a paged search through the proxy returns them under the
        local one with matchedDN rewritten on a miss.
        """
        slapd = SlapdProcess(REMOTE_SUFFIX, SERVICE_DN, "secret")
        slapd.start()
        self.addCleanup(slapd.stop)
        proxy = proxyServer([slapd.url], page_size=2)
        proxy.start()
        self.addCleanup(proxy.stop)
        added = subprocess.run(
            ["ldapadd", "-x", "-H", proxy.url, "-D", LOCAL_ROOT, "-w", "secret"],
            input=(
                "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\n"
                "dc: example\no: Example\n\n"
                "dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n"
                + "".join(
                    f"dn: uid=u{i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n"
                    f"uid: u{i}\ncn: U{i}\nsn: User\nmanager: uid=u0,ou=people,dc=example,dc=com"
                    "\n\n" for i in range(5))
            ),
            capture_output=True, text=True, timeout=30, check=False,
        )
        self.assertEqual(added.returncode, 0, added.stderr)
        direct = search(slapd.url, f"uid=u3,ou=people,{REMOTE_SUFFIX}", "-s", "base", "manager")
        self.assertIn(f"manager: uid=u0,ou=people,{REMOTE_SUFFIX}", direct.stdout)
        paged = search(proxy.url, "ou=people,dc=example,dc=com", "-E", "pr=2/noprompt",
                       "(uid=*)", "manager")
        self.assertEqual(paged.returncode, 0, paged.stderr)
        self.assertEqual(sorted(dns(paged.stdout)),
                         [f"uid=u{i},ou=people,dc=example,dc=com" for i in range(5)])
        self.assertIn("manager: uid=u0,ou=people,dc=example,dc=com", paged.stdout)
        missing = search(proxy.url, "uid=zed,ou=people,dc=example,dc=com")
        self.assertEqual(missing.returncode, 32)
        self.assertIn("Matched DN: ou=people,dc=example,dc=com", missing.stdout + missing.stderr)


#: What the slapd upstream of L{ProxyReferralTests} holds: a person, and a
#: referral object for a subtree held by another server.
REFERRAL_LDIF = f"""dn: {REMOTE_SUFFIX}
objectClass: dcObject
objectClass: organization
dc: corp
o: Corp

dn: ou=people,{REMOTE_SUFFIX}
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,{REMOTE_SUFFIX}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Anderson
seeAlso: ou=people,{REMOTE_SUFFIX}
userPassword: alice-secret

dn: ou=remote,{REMOTE_SUFFIX}
objectClass: referral
objectClass: extensibleObject
ou: remote
ref: ldap://dir3.internal:389/ou=remote,{REMOTE_SUFFIX}
"""

ALICE = "uid=alice,ou=people,dc=example,dc=com"
REMOTE = "ou=remote,dc=example,dc=com"


class ProxyReferralTests(unittest.SynchronousTestCase):
    """
    A slapd upstream holding a referral object, through the proxy: clients
    that do not send ManageDsaIT get referrals and continuation references
    (their URLs rewritten to the local suffix), as from back-ldap; those
    that send it see the referral object as an entry. Compare is forwarded
    upstream.
    """

    slapd: SlapdProcess | None = None
    proxy: ServerProcess

    @classmethod
    def setUpClass(cls) -> None:
        cls.slapd = SlapdProcess(REMOTE_SUFFIX, SERVICE_DN, "secret")
        cls.slapd.start()
        try:
            added = subprocess.run(
                ["ldapadd", "-x", "-M", "-H", cls.slapd.url, "-D", SERVICE_DN, "-w", "secret"],
                input=REFERRAL_LDIF, capture_output=True, text=True, timeout=30, check=False)
            if added.returncode:
                raise RuntimeError(added.stderr)
            cls.proxy = proxyServer([cls.slapd.url], page_size=2)
            cls.proxy.start()
        except BaseException:
            cls.slapd.stop()
            cls.slapd = None
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.slapd is not None:
            cls.proxy.stop()
            cls.slapd.stop()
            cls.slapd = None

    def setUp(self) -> None:
        # pytest calls setUpClass; trial does not, so the first test does.
        if type(self).slapd is None:
            type(self).setUpClass()
            atexit.register(type(self).tearDownClass)

    def test_continuationReference(self) -> None:
        """
        Without ManageDsaIT, a search over the referral object returns a
        continuation reference in its place, its DN rewritten, paged or not.
        """
        expected = "ref: ldap://dir3.internal:389/ou=remote,dc=example,dc=com??sub"
        for paging in ([], ["-E", "pr=1/noprompt"]):
            result = run("ldapsearch", "-x", "-o", "ldif-wrap=no", "-H", self.proxy.url,
                         "-b", "dc=example,dc=com", *paging, "(objectClass=*)", "1.1")
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(sorted(dns(result.stdout)), sorted([
                "dc=example,dc=com", "ou=people,dc=example,dc=com", ALICE]))
            self.assertEqual([line for line in result.stdout.splitlines()
                              if line.startswith("ref: ")], [expected])

    def test_manageDsaIT(self) -> None:
        """
        With ManageDsaIT, the referral object is an entry, its ref value
        rewritten.
        """
        result = search(self.proxy.url, REMOTE, "-M", "-s", "base", "ref")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split("\n\n")[0].splitlines(), [
            f"dn: {REMOTE}", f"ref: ldap://dir3.internal:389/{REMOTE}"])

    def test_referralResult(self) -> None:
        """
        Without ManageDsaIT, a search and a delete below the referral object
        and a modify of it are answered with a referral (10), its URL and
        matched DN rewritten; with ManageDsaIT, the modify is applied.
        """
        below = search(self.proxy.url, f"uid=zed,{REMOTE}")
        self.assertEqual(below.returncode, 10, below.stderr)
        self.assertIn(f"Referral: ldap://dir3.internal:389/uid=zed,{REMOTE}??sub",
                      below.stdout + below.stderr)
        self.assertIn(f"Matched DN: {REMOTE}", below.stdout + below.stderr)
        deleted = run("ldapdelete", "-x", "-H", self.proxy.url, "-D", LOCAL_ROOT, "-w", "secret",
                      f"uid=zed,{REMOTE}")
        self.assertEqual(deleted.returncode, 10, deleted.stderr)
        self.assertEqual(deleted.stderr.split()[-1], f"ldap://dir3.internal:389/uid=zed,{REMOTE}")
        modified = [subprocess.run(
            ["ldapmodify", "-x", *flags, "-H", self.proxy.url, "-D", LOCAL_ROOT, "-w", "secret"],
            input=f"dn: {REMOTE}\nchangetype: modify\nreplace: description\ndescription: x\n",
            capture_output=True, text=True, timeout=30, check=False) for flags in ([], ["-M"])]
        self.assertEqual([m.returncode for m in modified], [10, 0], modified[1].stderr)
        self.assertEqual(
            [line.strip() for line in modified[0].stderr.splitlines()][-3:],
            [f"matched DN: {REMOTE}", "referrals:", f"ldap://dir3.internal:389/{REMOTE}"])

    def test_compare(self) -> None:
        """
        Compare is forwarded upstream: a client bound through the proxy gets
        compareTrue (6) and compareFalse (5) as the upstream answers, on a
        DN-valued assertion too; a compare of the referral object is a
        referral without ManageDsaIT, and compares the entry with it.
        """
        bound = ["-x", "-H", self.proxy.url, "-D", ALICE, "-w", "alice-secret"]
        true = run("ldapcompare", *bound, ALICE, "sn:anderson")
        self.assertEqual((true.returncode, true.stdout.strip()), (6, "TRUE"), true.stderr)
        false = run("ldapcompare", *bound, ALICE, "sn:Smith")
        self.assertEqual((false.returncode, false.stdout.strip()), (5, "FALSE"), false.stderr)
        seeAlso = run("ldapcompare", *bound, ALICE, "seeAlso:ou=people,dc=example,dc=com")
        self.assertEqual(seeAlso.returncode, 6, seeAlso.stdout + seeAlso.stderr)
        referral = run("ldapcompare", *bound, REMOTE, "ou:remote")
        self.assertEqual(referral.returncode, 10, referral.stdout + referral.stderr)
        self.assertIn(f"Referral: ldap://dir3.internal:389/{REMOTE}\n", referral.stdout)
        managed = run("ldapcompare", *bound, "-M", REMOTE, "ou:remote")
        self.assertEqual(managed.returncode, 6, managed.stdout + managed.stderr)
