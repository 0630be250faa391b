"""
Server-side sorting and VLV side by side with OpenLDAP: a private slapd with
its C{sssvlv} overlay and the real C{twist ldapd} (the example
configuration: the sql backend), serving the same example organisation, get
the same requests from real clients — python-ldap, ldap3, OpenLDAP's
ldapsearch, Java's JNDI and Perl's Net::LDAP — and must answer alike: the
same entries in the same order, the same result codes, the same positions
and sizes in the VLV responses.

Where ldapd differs on purpose (docs/compatibility.md), the tests say so:
the VLV response's virtualListViewResult is the draft's (sortControlMissing
60, offsetRangeError 61) where slapd sends 76 and 77; ldapd sends the
sortResult control on every search whose sort it took on (slapd leaves it
out of errors).

Each client's check would fail if the control were ignored: the orders
asked for are not the order entries are stored in, and VLV windows are
smaller than the list.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import ldap
import ldap3
import pytest
from ldap.controls import RequestControl, SimplePagedResultsControl
from ldap.controls.sss import SSSRequestControl, SSSResponseControl
from ldap.controls.vlv import VLVRequestControl, VLVResponseControl
from twisted.trial import unittest

from ldapd import sorting
from ldapd.testing import SLAPD, ServerProcess, SlapdProcess, exampleConfig

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "secret"
#: The people of the example organisation by uidNumber, 10001 to 10008.
BY_NUMBER = ["alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi"]

#: slapd's virtualListViewResult codes for ldapd's (the draft's).
_SLAPD_VLV_RESULTS = {76: sorting.SORT_CONTROL_MISSING, 77: sorting.OFFSET_RANGE_ERROR}


def _sss(*keys: str, critical: bool = True) -> SSSRequestControl:
    return SSSRequestControl(critical, list(keys))


def _vlv(before: int, after: int, critical: bool = True, **target: Any) -> VLVRequestControl:
    if "offset" in target:
        target.setdefault("content_count", 0)
    return VLVRequestControl(critical, before, after, **target)


def _name(dn: str) -> str:
    return dn.split(",")[0].split("=")[1]


#: The battery: a name, the controls, and the search's base, filter and size limit.
CASES: list[tuple[str, list[Any], str, str, int]] = [
    ("orderingRule", [_sss("-uidNumber")], PEOPLE, "(objectClass=*)", 0),
    ("namedRule", [_sss("-sn:2.5.13.3")], PEOPLE, "(uid=*)", 0),
    ("namedRuleByName", [_sss("sn:caseIgnoreOrderingMatch")], PEOPLE, "(uid=*)", 0),
    ("severalKeys", [_sss("-sn:2.5.13.3", "uidNumber")], BASE, "(|(uid=a*)(ou=people))", 0),
    ("missingLast", [_sss("cn:2.5.13.3")], BASE, "(|(cn=*)(ou=people))", 0),
    ("leastValueReversed", [_sss("-cn:2.5.13.3")], BASE, "(cn=*)", 0),
    ("telephone", [_sss("telephoneNumber:2.5.13.3")], PEOPLE,
     "(|(telephoneNumber=*)(uid=carol))", 0),
    ("noOrderingRule", [_sss("sn")], PEOPLE, "(uid=*)", 0),
    ("noOrderingRuleNonCritical", [_sss("sn", critical=False)], PEOPLE, "(uid=*)", 0),
    ("unknownRule", [_sss("sn:2.5.13.99")], PEOPLE, "(uid=*)", 0),
    ("undefinedAttribute", [_sss("noSuchAttr", critical=False)], PEOPLE, "(uid=*)", 0),
    ("tooManyKeys", [_sss(*["uidNumber"] * 6)], PEOPLE, "(uid=*)", 0),
    ("noKey", [RequestControl(sorting.SORT_REQUEST, True, b"\x30\x00")], PEOPLE, "(uid=*)", 0),
    ("sizeLimit", [_sss("-uidNumber")], PEOPLE, "(uid=*)", 3),
    ("noSuchBase", [_sss("uidNumber")], f"ou=nowhere,{BASE}", "(uid=*)", 0),
    *(
        (name, [_sss(key), _vlv(before, after, **target)], PEOPLE, query, size)
        for name, key, before, after, target, query, size in [
            ("vlvOffset", "uidNumber", 1, 1, {"offset": 2}, "(objectClass=*)", 0),
            ("vlvFirst", "uidNumber", 1, 1, {"offset": 1}, "(uid=*)", 0),
            ("vlvLast", "uidNumber", 1, 1, {"offset": 9, "content_count": 9},
             "(objectClass=*)", 0),
            ("vlvOffsetZero", "uidNumber", 1, 1, {"offset": 0}, "(uid=*)", 0),
            ("vlvEstimate", "uidNumber", 1, 1, {"offset": 3, "content_count": 5}, "(uid=*)", 0),
            ("vlvEstimateSmall", "uidNumber", 0, 0, {"offset": 2, "content_count": 100},
             "(uid=*)", 0),
            ("vlvRange", "uidNumber", 1, 1, {"offset": 10}, "(uid=*)", 0),
            ("vlvRangeEstimate", "uidNumber", 1, 1, {"offset": 6, "content_count": 5},
             "(uid=*)", 0),
            ("vlvValue", "uidNumber", 1, 2, {"greater_than_or_equal": "10004"}, "(uid=*)", 0),
            ("vlvValueReversed", "-uidNumber", 0, 2, {"greater_than_or_equal": "10004"},
             "(uid=*)", 0),
            ("vlvValuePastEnd", "sn:2.5.13.3", 2, 2, {"greater_than_or_equal": "zz"},
             "(uid=*)", 0),
            ("vlvBigWindow", "uidNumber", 5, 20, {"offset": 2}, "(objectClass=*)", 0),
            ("vlvEmpty", "uidNumber", 1, 1, {"offset": 3}, "(uid=nobody)", 0),
            ("vlvSizeLimit", "uidNumber", 1, 3, {"offset": 3}, "(uid=*)", 2),
        ]
    ),
    ("vlvWithoutSort", [_vlv(1, 1, offset=2, content_count=0)], PEOPLE, "(uid=*)", 0),
    ("vlvWithoutSortNonCritical", [_vlv(1, 1, False, offset=2, content_count=0)], PEOPLE,
     "(uid=*)", 0),
    ("vlvWithPaging", [_sss("uidNumber"), _vlv(1, 1, offset=2, content_count=0),
                       SimplePagedResultsControl(True, 2, b"")], PEOPLE, "(uid=*)", 0),
]


class BothServers:
    """
    The class's slapd (with sssvlv) and ldapd, started once.
    """

    slapd: ClassVar[Any] = None
    ldapd: ClassVar[Any] = None

    @classmethod
    def setUpClass(cls) -> None:
        if not SLAPD.is_file():
            raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        slapd = SlapdProcess(modules=["sssvlv"], databaseConfig="overlay sssvlv\n")
        slapd.loadExample()
        slapd.start()
        cls.slapd = slapd
        try:
            server = ServerProcess(exampleConfig())
            server.start()
        except BaseException:
            slapd.stop()
            raise
        cls.ldapd = server

    @classmethod
    def tearDownClass(cls) -> None:
        for server in (cls.ldapd, cls.slapd):
            if server is not None:
                server.stop()

    @property
    def urls(self) -> dict[str, str]:
        """
        The servers' URLs, by name.
        """
        return {"slapd": self.slapd.url, "ldapd": self.ldapd.url}


def _pythonLDAP(url: str, controls: list[Any], base: str, query: str, size: int
                ) -> tuple[Any, ...]:
    """
    Search with python-ldap; return what both servers must agree on.
    """
    connection = ldap.initialize(url)
    connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
    try:
        msgid = connection.search_ext(base, ldap.SCOPE_SUBTREE, query, ["1.1"],
                                      serverctrls=controls, sizelimit=size)
        names: list[str] = []
        while True:
            try:
                kind, data, _, responseControls = connection.result3(msgid, all=0)
            except ldap.LDAPError as e:
                code = e.args[0]["result"]
                responseControls = e.args[0].get("ctrls", [])
                break
            if kind == ldap.RES_SEARCH_RESULT:
                code = 0
                break
            names += [_name(dn) for dn, _ in data]
    finally:
        connection.unbind_s()
    sort = vlv = None
    for control in responseControls:
        if isinstance(control, SSSResponseControl):
            sort = control.result
        elif isinstance(control, VLVResponseControl):
            vlv = (control.target_position, control.content_count,
                   _SLAPD_VLV_RESULTS.get(control.result, control.result))
        elif isinstance(control, tuple) and control[0] == sorting.VLV_RESPONSE:
            decoded = VLVResponseControl()
            decoded.decodeControlValue(control[2])
            vlv = (decoded.target_position, decoded.content_count,
                   _SLAPD_VLV_RESULTS.get(decoded.result, decoded.result))
    # ldapd also sends the sortResult with the errors of the sort it took
    # on; slapd only with its successes.
    return code, names, sort if code == 0 else None, vlv


class PythonLDAPSideBySideTests(BothServers, unittest.SynchronousTestCase):
    """
    The battery, through python-ldap, on both servers.
    """

    def test_battery(self) -> None:
        """
        Every case of L{CASES} gets the same entries in the same order, the
        same result code, sortResult and VLV response from both servers.
        """
        differences = []
        for name, controls, base, query, size in CASES:
            outcomes = {server: _pythonLDAP(url, controls, base, query, size)
                        for server, url in self.urls.items()}
            if outcomes["slapd"] != outcomes["ldapd"]:
                differences.append(f"{name}: {outcomes}")
        self.assertEqual(differences, [])

    def test_sorted(self) -> None:
        """
        The battery sorts: a reversed sort is not the stored order.
        """
        code, names, sort, _ = _pythonLDAP(self.ldapd.url, [_sss("-uidNumber")], PEOPLE,
                                           "(uid=*)", 0)
        self.assertEqual((code, names, sort), (0, BY_NUMBER[::-1], 0))

    def test_pagedSorted(self) -> None:
        """
        Sort with paged results: the pages go through the sorted set, with
        the same estimates of what is left as slapd's.
        """
        pages = {}
        for server, url in self.urls.items():
            connection = ldap.initialize(url)
            connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
            paged = SimplePagedResultsControl(True, 3, b"")
            got = []
            while True:
                msgid = connection.search_ext(PEOPLE, ldap.SCOPE_SUBTREE, "(objectClass=*)",
                                              ["1.1"], serverctrls=[_sss("-uidNumber"), paged])
                _, data, _, controls = connection.result3(msgid)
                response = next(c for c in controls if isinstance(c, SimplePagedResultsControl))
                got.append(([_name(dn) for dn, _ in data], response.size))
                if not response.cookie:
                    break
                paged.cookie = response.cookie
            connection.unbind_s()
            pages[server] = got
        self.assertEqual(pages["ldapd"], pages["slapd"])
        self.assertEqual([n for names, _ in pages["ldapd"] for n in names],
                         ["people", *BY_NUMBER[::-1]])

    def test_vlvContext(self) -> None:
        """
        The next window, asked for with the contextID of the last response,
        is answered by both servers alike.
        """
        windows = {}
        for server, url in self.urls.items():
            connection = ldap.initialize(url)
            connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
            got = []
            context = None
            for offset in (1, 4, 7):
                vlv = _vlv(0, 2, offset=offset, content_count=8, context_id=context)
                msgid = connection.search_ext(PEOPLE, ldap.SCOPE_SUBTREE, "(uid=*)", ["1.1"],
                                              serverctrls=[_sss("-uidNumber"), vlv])
                _, data, _, controls = connection.result3(msgid)
                response = next(c for c in controls if isinstance(c, VLVResponseControl))
                context = response.context_id
                got.append(([_name(dn) for dn, _ in data], response.target_position))
            connection.unbind_s()
            windows[server] = got
        self.assertEqual(windows["ldapd"], windows["slapd"])
        self.assertEqual(windows["ldapd"][1], (["eve", "dave", "carol"], 4))


def _ldapsearch(url: str, *args: str) -> str:
    """
    Run ldapsearch as the root DN; return its output and exit status, with
    the cookies and contextIDs (which differ between servers) left out.
    """
    result = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, *args],
        capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    text = (result.stdout + result.stderr).decode()
    text = re.sub(r"(cookie|context)=\S*", r"\1=...", text)
    return f"{text}exit {result.returncode}"


class LDAPSearchTests(BothServers, unittest.SynchronousTestCase):
    """
    OpenLDAP's ldapsearch with C{-E sss=...}, C{-E vlv=...} and C{-E pr=...}.
    """

    def assertSame(self, *args: str, firstWindow: bool = False) -> str:
        """
        Assert both servers give ldapsearch the same output.

        @param firstWindow: compare only the first VLV window: ldapsearch
            then asks its terminal for the next, and with none it goes on
            by itself, into slapd's quirks.
        @return: ldapd's.
        """
        outputs = {server: _ldapsearch(url, *args) for server, url in self.urls.items()}
        if firstWindow:
            outputs = {server: output.split("Press")[0] for server, output in outputs.items()}
        self.assertEqual(outputs["ldapd"], outputs["slapd"])
        return outputs["ldapd"]

    def test_sort(self) -> None:
        """
        C{-E '!sss=-uidNumber'}: sorted, reversed, and the sortResult printed.
        """
        output = self.assertSame("-b", PEOPLE, "-E", "!sss=-uidNumber", "(uid=*)", "1.1")
        self.assertEqual(re.findall(r"dn: uid=(\w+)", output), BY_NUMBER[::-1])
        self.assertIn("# sortResult: (0) Success", output)

    def test_sortKeys(self) -> None:
        """
        C{-E sss=sn:2.5.13.3/-cn:2.5.13.3}: a named rule and two keys.
        """
        output = self.assertSame("-b", BASE, "-E", "sss=-sn:2.5.13.3/cn:2.5.13.3",
                                 "(|(uid=*)(cn=staff))", "1.1")
        self.assertTrue(output.startswith("dn: cn=staff"), output)

    def test_noOrderingRule(self) -> None:
        """
        C{-E sss=sn}: sn has no ORDERING rule; inappropriateMatching. ldapd
        also sends the sortResult, naming the key; slapd does not.
        """
        outputs = {server: _ldapsearch(url, "-b", PEOPLE, "-E", "!sss=sn", "(uid=*)", "1.1")
                   for server, url in self.urls.items()}
        sortResult = "# sortResult: (18) Inappropriate matching sn\n"
        self.assertIn(sortResult, outputs["ldapd"])
        self.assertEqual(outputs["ldapd"].replace(sortResult, ""), outputs["slapd"])
        self.assertIn("Inappropriate matching (18)", outputs["slapd"])

    def test_sortPaged(self) -> None:
        """
        C{-E sss=... -E pr=3/noprompt}: the pages follow the sort.
        """
        output = self.assertSame("-b", PEOPLE, "-E", "sss=-uidNumber", "-E", "pr=3/noprompt",
                                 "(uid=*)", "1.1")
        self.assertEqual(re.findall(r"dn: uid=(\w+)", output), BY_NUMBER[::-1])
        self.assertIn("# pagedresults: estimate=5 cookie=...", output)

    def test_vlv(self) -> None:
        """
        C{-E vlv=1/1/4/0 -E sss=uidNumber}: the first window is the same
        (ldapsearch then asks for more on its terminal; with none, it stops).
        """
        first = self.assertSame("-b", PEOPLE, "-E", "sss=uidNumber", "-E", "vlv=1/1/4/0",
                                "(uid=*)", "1.1", firstWindow=True)
        self.assertEqual(re.findall(r"dn: uid=(\w+)", first), ["carol", "dave", "eve"])
        self.assertIn("# vlvResultpos=4 count=8 context=...", first)

    def test_vlvValue(self) -> None:
        """
        C{-E vlv=0/2:Davis} with C{-E sss=sn:2.5.13.3}: a greaterThanOrEqual target.
        """
        first = self.assertSame("-b", PEOPLE, "-E", "sss=sn:2.5.13.3", "-E", "vlv=0/2:Davis",
                                "(uid=*)", "1.1", firstWindow=True)
        self.assertEqual(re.findall(r"dn: uid=(\w+)", first), ["dave", "eve", "frank"])


def _ldap3(url: str, controls: list[Any]) -> tuple[int, list[str], dict[str, Any]]:
    """
    Search the people with ldap3, the control values encoded by python-ldap.
    """
    connection = ldap3.Connection(ldap3.Server(url, get_info=ldap3.NONE), ROOT_DN,
                                  ROOT_PASSWORD, auto_bind=True, raise_exceptions=False,
                                  receive_timeout=10)
    try:
        connection.search(PEOPLE, "(uid=*)", attributes=["1.1"], controls=[
            (c.controlType, c.criticality, c.encodeControlValue()) for c in controls])
        names = [_name(item["dn"]) for item in connection.response or ()
                 if item.get("type") == "searchResEntry"]
        return connection.result["result"], names, connection.result.get("controls") or {}
    finally:
        connection.unbind()


class LDAP3Tests(BothServers, unittest.SynchronousTestCase):
    """
    ldap3 with the sort and VLV controls (its own encoder has none: the
    values are python-ldap's).
    """

    def test_sort(self) -> None:
        """
        A reversed sort, and its sortResult, as slapd answers.
        """
        outcomes = {server: _ldap3(url, [_sss("-sn:2.5.13.3")])
                    for server, url in self.urls.items()}
        code, names, controls = outcomes["ldapd"]
        self.assertEqual((code, names), outcomes["slapd"][:2])
        self.assertEqual(names, BY_NUMBER[::-1])
        self.assertEqual(controls[sorting.SORT_RESPONSE]["value"],
                         outcomes["slapd"][2][sorting.SORT_RESPONSE]["value"])

    def test_vlv(self) -> None:
        """
        A VLV window, and the target and size of the response.
        """
        outcomes = {server: _ldap3(url, [_sss("uidNumber"), _vlv(2, 0, offset=8,
                                                                 content_count=0)])
                    for server, url in self.urls.items()}
        code, names, controls = outcomes["ldapd"]
        self.assertEqual((code, names), outcomes["slapd"][:2])
        self.assertEqual(names, ["frank", "grace", "heidi"])
        decoded = VLVResponseControl()
        decoded.decodeControlValue(controls[sorting.VLV_RESPONSE]["value"])
        self.assertEqual((decoded.target_position, decoded.content_count, decoded.result),
                         (8, 8, 0))


JAVA_CLIENT = """\
import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.NamingEnumeration;
import javax.naming.NamingException;
import javax.naming.directory.SearchControls;
import javax.naming.directory.SearchResult;
import javax.naming.ldap.BasicControl;
import javax.naming.ldap.Control;
import javax.naming.ldap.InitialLdapContext;
import javax.naming.ldap.LdapContext;
import javax.naming.ldap.PagedResultsControl;
import javax.naming.ldap.PagedResultsResponseControl;
import javax.naming.ldap.SortControl;
import javax.naming.ldap.SortKey;
import javax.naming.ldap.SortResponseControl;

/** Sorts, pages and windows the example people through JNDI; prints what comes back. */
public class SortClient {
    public static void main(String[] args) throws Exception {
        Hashtable<String, String> env = new Hashtable<>();
        env.put(Context.INITIAL_CONTEXT_FACTORY, "com.sun.jndi.ldap.LdapCtxFactory");
        env.put(Context.PROVIDER_URL, args[0]);
        env.put(Context.SECURITY_AUTHENTICATION, "simple");
        env.put(Context.SECURITY_PRINCIPAL, "cn=admin,dc=example,dc=com");
        env.put(Context.SECURITY_CREDENTIALS, "secret");
        LdapContext ctx = new InitialLdapContext(env, null);
        SortControl sort = new SortControl(
            new SortKey[] {new SortKey("sn", false, "2.5.13.3")}, Control.CRITICAL);
        String mode = args[1];
        if (mode.equals("sort")) {
            ctx.setRequestControls(new Control[] {sort});
            search(ctx);
        } else if (mode.equals("paged")) {
            byte[] cookie = null;
            do {
                ctx.setRequestControls(new Control[] {
                    sort, new PagedResultsControl(3, cookie, Control.CRITICAL)});
                search(ctx);
                cookie = null;
                for (Control c : ctx.getResponseControls()) {
                    if (c instanceof PagedResultsResponseControl) {
                        cookie = ((PagedResultsResponseControl) c).getCookie();
                    }
                }
                System.out.println("page");
            } while (cookie != null && cookie.length > 0);
        } else if (mode.equals("vlv")) {
            // JNDI has no VLV class: the request's value, before 1, after 1,
            // byOffset { offset 3, contentCount 0 }, written by hand.
            byte[] vlv = {0x30, 0x0e, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01,
                          (byte) 0xa0, 0x06, 0x02, 0x01, 0x03, 0x02, 0x01, 0x00};
            ctx.setRequestControls(new Control[] {
                sort, new BasicControl("2.16.840.1.113730.3.4.9", true, vlv)});
            search(ctx);
        } else {
            ctx.setRequestControls(new Control[] {new SortControl("sn", Control.CRITICAL)});
            try {
                search(ctx);
            } catch (NamingException e) {
                System.out.println("error " + e.getClass().getSimpleName());
            }
        }
        Control[] response = ctx.getResponseControls();
        for (Control c : response == null ? new Control[0] : response) {
            if (c instanceof SortResponseControl) {
                System.out.println("sorted " + ((SortResponseControl) c).isSorted()
                                   + " " + ((SortResponseControl) c).getResultCode());
            } else if (c.getID().equals("2.16.840.1.113730.3.4.10")) {
                StringBuilder hex = new StringBuilder();
                for (byte b : c.getEncodedValue()) hex.append(String.format("%02x", b));
                System.out.println("vlv " + hex);
            }
        }
        ctx.close();
    }

    static void search(LdapContext ctx) throws NamingException {
        SearchControls controls = new SearchControls();
        controls.setSearchScope(SearchControls.SUBTREE_SCOPE);
        controls.setReturningAttributes(new String[] {"1.1"});
        NamingEnumeration<SearchResult> results =
            ctx.search("ou=people,dc=example,dc=com", "(uid=*)", controls);
        while (results.hasMore()) {
            System.out.println("entry " + results.next().getName());
        }
    }
}
"""


class JNDITests(BothServers, unittest.SynchronousTestCase):
    """
    Java's JNDI: C{SortControl}, C{PagedResultsControl}, and a VLV request
    written as a C{BasicControl}.
    """

    @classmethod
    def setUpClass(cls) -> None:
        if shutil.which("javac") is None or shutil.which("java") is None:
            raise unittest.SkipTest("no Java compiler and runtime")
        cls.classes = Path(tempfile.mkdtemp(prefix="ldapd-jndi-"))
        try:
            (cls.classes / "SortClient.java").write_text(JAVA_CLIENT)
            subprocess.run(["javac", "-d", str(cls.classes), str(cls.classes / "SortClient.java")],
                           check=True, capture_output=True, timeout=300)
            super().setUpClass()
        except BaseException:
            shutil.rmtree(cls.classes, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.classes, ignore_errors=True)

    def run_java(self, mode: str) -> list[str]:
        """
        Run the client against both servers.

        @return: what it printed for ldapd, once it is the same for slapd;
            VLV responses decoded, without their contextID.
        """
        printed = self.printed(mode)
        self.assertEqual(printed["ldapd"], printed["slapd"])
        return printed["ldapd"]

    def printed(self, mode: str) -> dict[str, list[str]]:
        """
        @return: what the client printed, by server.
        """
        printed = {}
        for server, url in self.urls.items():
            result = subprocess.run(["java", "-cp", str(self.classes), "SortClient", url, mode],
                                    capture_output=True, timeout=120, check=False)
            self.assertEqual(result.returncode, 0, result.stderr.decode())
            lines = []
            for line in result.stdout.decode().splitlines():
                if line.startswith("vlv "):
                    decoded = VLVResponseControl()
                    decoded.decodeControlValue(bytes.fromhex(line[4:]))
                    line = f"vlv {decoded.target_position} {decoded.content_count} {decoded.result}"
                lines.append(line)
            printed[server] = lines
        return printed

    def test_sort(self) -> None:
        """
        C{SortControl} on sn by caseIgnoreOrderingMatch, descending:
        sorted, and C{SortResponseControl.isSorted()}.
        """
        lines = self.run_java("sort")
        self.assertEqual(lines, [f"entry uid={n}" for n in BY_NUMBER[::-1]] + ["sorted true 0"])

    def test_paged(self) -> None:
        """
        C{SortControl} with C{PagedResultsControl}: the pages follow the sort.
        """
        lines = self.run_java("paged")
        self.assertEqual(lines.count("page"), 3)
        self.assertEqual(lines[:4], ["entry uid=heidi", "entry uid=grace", "entry uid=frank",
                                     "page"])

    def test_vlv(self) -> None:
        """
        The VLV request as a C{BasicControl}: the window, and the response.
        """
        lines = self.run_java("vlv")
        self.assertEqual(lines, ["entry uid=grace", "entry uid=frank", "entry uid=eve",
                                 "sorted true 0", "vlv 3 8 0"])

    def test_noOrderingRule(self) -> None:
        """
        A C{SortControl} on sn without a rule: JNDI raises for both servers
        (it maps inappropriateMatching to C{InvalidSearchFilterException});
        from ldapd it also gets the sortResult that says why.
        """
        printed = self.printed("norule")
        self.assertEqual(printed["slapd"], ["error InvalidSearchFilterException"])
        self.assertEqual(printed["ldapd"], ["error InvalidSearchFilterException",
                                            "sorted false 18"])


PERL_CLIENT = """\
use strict;
use warnings;
use Net::LDAP;
use Net::LDAP::Constant qw(LDAP_CONTROL_SORTRESULT LDAP_CONTROL_VLVRESPONSE);
use Net::LDAP::Control::Sort;
use Net::LDAP::Control::VLV;

my ($url, $mode) = @ARGV;
my $ldap = Net::LDAP->new($url) or die "$@";
$ldap->bind('cn=admin,dc=example,dc=com', password => 'secret')->code and die 'bind';
my $sort = Net::LDAP::Control::Sort->new(order => '-uidNumber', critical => 1);
my @controls = ($sort);
my $vlv;
if ($mode eq 'vlv') {
    $vlv = Net::LDAP::Control::VLV->new(before => 1, after => 1, content => 0, offset => 4,
                                        critical => 1);
    push @controls, $vlv;
}
my $search = $ldap->search(base => 'ou=people,dc=example,dc=com', filter => '(uid=*)',
                           attrs => ['1.1'], control => [@controls]);
print 'code ', $search->code, "\\n";
print 'entry ', $_->dn, "\\n" for $search->entries;
my ($sorted) = $search->control(LDAP_CONTROL_SORTRESULT);
print 'sorted ', $sorted->result, "\\n" if $sorted;
if ($vlv) {
    my ($response) = $search->control(LDAP_CONTROL_VLVRESPONSE);
    print 'vlv ', $response->target, ' ', $response->content, ' ', $response->result, "\\n";
}
"""


class NetLDAPTests(BothServers, unittest.SynchronousTestCase):
    """
    Perl's Net::LDAP: C{Net::LDAP::Control::Sort} and C{Net::LDAP::Control::VLV}.
    """

    @classmethod
    def setUpClass(cls) -> None:
        found = subprocess.run(["perl", "-MNet::LDAP", "-e", "1"], capture_output=True,
                               check=False)
        if found.returncode != 0:
            raise unittest.SkipTest("Perl's Net::LDAP is not installed (libnet-ldap-perl)")
        super().setUpClass()

    def run_perl(self, mode: str) -> list[str]:
        """
        @return: what the client printed for ldapd, once it is the same for slapd.
        """
        printed = {}
        for server, url in self.urls.items():
            result = subprocess.run(["perl", "-e", PERL_CLIENT, url, mode],
                                    capture_output=True, timeout=60, check=False)
            self.assertEqual(result.returncode, 0, result.stderr.decode())
            printed[server] = result.stdout.decode().splitlines()
        self.assertEqual(printed["ldapd"], printed["slapd"])
        return printed["ldapd"]

    def test_sort(self) -> None:
        """
        C{order => '-uidNumber'}: reversed, with a sortResult of success.
        """
        lines = self.run_perl("sort")
        self.assertEqual(lines, ["code 0"] + [f"entry uid={n},{PEOPLE}" for n in BY_NUMBER[::-1]]
                         + ["sorted 0"])

    def test_vlv(self) -> None:
        """
        C{Net::LDAP::Control::VLV} at offset 4 of the reversed list.
        """
        lines = self.run_perl("vlv")
        self.assertEqual(lines, ["code 0"] + [f"entry uid={n},{PEOPLE}"
                                              for n in ["frank", "eve", "dave"]]
                         + ["sorted 0", "vlv 4 8 0"])


class ProxyTests(unittest.SynchronousTestCase):
    """
    The proxy backend sorts and windows what its upstream streams: the
    controls are carried out by ldapd's search module, not forwarded, so
    they work in front of an upstream without them (a slapd without
    sssvlv here) and across the proxy's DN rewriting and failover, where
    an upstream's contextIDs and cookies would not.
    """

    def setUp(self) -> None:
        if not SLAPD.is_file():
            raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        upstream = SlapdProcess()
        upstream.loadExample()
        upstream.start()
        self.addCleanup(upstream.stop)
        proxy = ServerProcess(f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{BASE}"
backend = "proxy"
root_dn = "{ROOT_DN}"
root_password = "{ROOT_PASSWORD}"
upstreams = ["{upstream.url}"]
bind_dn = "{ROOT_DN}"
bind_password = "{ROOT_PASSWORD}"
""")
        proxy.start()
        self.addCleanup(proxy.stop)
        self.upstream, self.proxy = upstream, proxy

    def test_sortAndWindow(self) -> None:
        """
        A sort and a VLV window through the proxy; the upstream alone
        refuses the critical sort control.
        """
        sort = _pythonLDAP(self.proxy.url, [_sss("-uidNumber")], PEOPLE, "(uid=*)", 0)
        self.assertEqual(sort, (0, BY_NUMBER[::-1], 0, None))
        window = _pythonLDAP(self.proxy.url, [_sss("-uidNumber"), _vlv(1, 1, offset=2)],
                             PEOPLE, "(uid=*)", 0)
        self.assertEqual(window, (0, ["heidi", "grace", "frank"], 0, (2, 8, 0)))
        refused = _pythonLDAP(self.upstream.url, [_sss("-uidNumber")], PEOPLE, "(uid=*)", 0)
        self.assertEqual(refused[0], 12)
