"""
Side by side with OpenLDAP: referral objects and ManageDsaIT (RFC 3296), the
default referral, alias dereferencing (RFC 4511 §4.5.1.3) and proxied
authorization (RFC 4370) under C{authz-policy any}, run through ldap-utils,
python-ldap and ldap3 against a private slapd and against the real
C{twist ldapd} (on the memory and the sql backend) holding the same data,
with the same access rules.

Each step gives an outcome: the exit status or result code and what the
client printed (entries, continuation references, referral URLs, matched
DN), in sorted lines and without diagnostic messages, which RFC 4511 leaves
to each server. Outcomes must be equal; the steps that exercise a feature
must also see it in slapd's answers (a referral, a reference, an alias
problem, authorizationDenied), so that a server ignoring the feature fails.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import ldap
import ldap3
import pytest
from ldap.controls.simple import ManageDSAITControl, ProxyAuthzControl
from twisted.trial import unittest

from ldapd.testing import EXAMPLE_LDIF, SLAPD, ServerProcess, SlapdProcess

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
ROOT = (f"cn=admin,{BASE}", "secret")
PROXY = (f"cn=proxy,ou=services,{BASE}", "proxy-secret")
GRACE = (f"uid=grace,ou=people,{BASE}", "grace-secret")
BOB = f"uid=bob,ou=people,{BASE}"

#: Referral objects (one whose URL has no DN, one with two URLs), aliases
#: (to an entry, to an alias, in a loop, dangling), an account with
#: authzTo rules and an entry with an authzFrom rule.
DATA = f"""\
dn: ou=remote,{BASE}
objectClass: referral
objectClass: extensibleObject
ou: remote
ref: ldap://other.example.net/ou=remote,dc=example,dc=net

dn: ou=nodn,{BASE}
objectClass: referral
objectClass: extensibleObject
ou: nodn
ref: ldap://nodn.example.net/

dn: ou=two,ou=people,{BASE}
objectClass: referral
objectClass: extensibleObject
ou: two
ref: ldap://a.example.net/ou=two,dc=a
ref: ldap://b.example.net/ou=two,dc=b

dn: cn=al,{BASE}
objectClass: alias
objectClass: extensibleObject
cn: al
aliasedObjectName: ou=people,{BASE}

dn: cn=alal,{BASE}
objectClass: alias
objectClass: extensibleObject
cn: alal
aliasedObjectName: cn=al,{BASE}

dn: cn=loop1,ou=groups,{BASE}
objectClass: alias
objectClass: extensibleObject
cn: loop1
aliasedObjectName: cn=loop2,ou=groups,{BASE}

dn: cn=loop2,ou=groups,{BASE}
objectClass: alias
objectClass: extensibleObject
cn: loop2
aliasedObjectName: cn=loop1,ou=groups,{BASE}

dn: cn=dangling,ou=groups,{BASE}
objectClass: alias
objectClass: extensibleObject
cn: dangling
aliasedObjectName: cn=nothere,{BASE}

dn: cn=alice-alias,ou=groups,{BASE}
objectClass: alias
objectClass: extensibleObject
cn: alice-alias
aliasedObjectName: uid=alice,ou=people,{BASE}

dn: cn=proxy,ou=services,{BASE}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: proxy
userPassword: proxy-secret
authzTo: dn:{BOB}
authzTo: dn.regex:^uid=[cd][a-z]*,ou=people,dc=example,dc=com$
authzTo: dn.onelevel:ou=groups,{BASE}
authzTo: dn.subtree:ou=posix,ou=groups,{BASE}
"""

#: authzFrom is added by a write (slapadd would need it in the data, and
#: ldapd's seeding takes no change record), before the proxied steps.
AUTHZ_FROM = f"""\
dn: uid=heidi,ou=people,{BASE}
changetype: modify
add: authzFrom
authzFrom: dn:{GRACE[0]}
"""

#: The access rules, in slapd's words; ldapd's acl plugin takes the same.
RULES = [
    "to attrs=userPassword by self write by anonymous auth by * none",
    "to attrs=authzTo,authzFrom by * auth",
    f'to dn.onelevel="ou=services,{BASE}" by dn.exact="{BOB}" read by * none',
    "to * by * read",
]

DEFAULT_REFERRAL = "ldap://default.example.net/"


def _slapd() -> SlapdProcess:
    if not SLAPD.is_file():
        raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
    slapd = SlapdProcess(BASE, ROOT[0], ROOT[1], globalConfig=(
        f"referral {DEFAULT_REFERRAL}\nauthz-policy any\n"
        'authz-regexp "^uid=([^,]*),cn=auth$" "uid=$1,ou=people,dc=example,dc=com"\n'
        + "".join(f"access {rule}\n" for rule in RULES)))
    data = slapd.folder / "data.ldif"
    data.write_text("\n".join(
        line for line in EXAMPLE_LDIF.read_text().splitlines()
        if not line.startswith(("#", "version:"))
    ).strip() + "\n\n" + DATA)
    slapd.load(data)
    return slapd


def _ldapd(folder: Path, backend: str) -> ServerProcess:
    seed = folder / f"seed-{backend}.ldif"
    seed.write_text(EXAMPLE_LDIF.read_text() + "\n" + DATA)
    where = f'url = "sqlite:///{folder}/{backend}.db"\n' if backend == "sql" else ""
    rules = ", ".join(repr(rule) for rule in RULES)
    config = f"""\
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]
referral = "{DEFAULT_REFERRAL}"
authz_policy = "any"
sasl_map = [{{ match = "^uid=([^,]*),cn=auth$", dn = "uid=$1,ou=people,dc=example,dc=com" }}]

[[database]]
suffix = "{BASE}"
backend = "{backend}"
{where}root_dn = "{ROOT[0]}"
root_password = "{ROOT[1]}"
seed_ldif = "{seed}"

[[plugin]]
name = "acl"
rules = [{rules}]
"""
    folder = folder / backend
    folder.mkdir()
    return ServerProcess(config, folder)


def _lines(output: bytes) -> list[str]:
    """
    What a client printed, in sorted lines, without the diagnostic
    messages and the lines that only repeat the request.
    """
    return sorted(
        line.strip() for line in output.decode("utf-8", "replace").splitlines()
        if line.strip() and not line.lower().lstrip().startswith(
            ("additional info", "adding new entry", "modifying", "deleting"))
    )


def _tool(program: str, *args: str, bind: tuple[str, str] | None = None,
          stdin: str = "") -> Callable[[str], Any]:
    """
    A step running one of ldap-utils' programs.
    """
    def step(url: str) -> Any:
        credentials = ["-D", bind[0], "-w", bind[1]] if bind else []
        extra = ["-LLL", "-o", "ldif-wrap=no"] if program == "ldapsearch" else []
        result = subprocess.run([program, "-x", "-H", url, *credentials, *extra, *args],
                                input=stdin.encode(), capture_output=True, timeout=30,
                                check=False)
        return result.returncode, _lines(result.stdout + result.stderr)

    return step


def search(base: str, scope: str = "sub", filterText: str = "(objectClass=*)",
           *options: str, bind: tuple[str, str] | None = None,
           attributes: tuple[str, ...] = ("1.1",)) -> Callable[[str], Any]:
    """
    An ldapsearch.
    """
    return _tool("ldapsearch", "-b", base, "-s", scope, *options, filterText, *attributes,
                 bind=bind)


def modify(ldif: str, *options: str) -> Callable[[str], Any]:
    """
    An ldapmodify as the root DN.
    """
    return _tool("ldapmodify", *options, bind=ROOT, stdin=ldif)


def pythonLDAP(base: str, scope: int, controls: list[Any], bind: tuple[str, str] | None = None,
               deref: int = ldap.DEREF_NEVER) -> Callable[[str], Any]:
    """
    A search through python-ldap, with referrals not chased: the result, the
    matched DN and referral URLs of an error, the entries' DNs and the
    references' URLs.
    """
    def step(url: str) -> Any:
        connection = ldap.initialize(url)
        connection.set_option(ldap.OPT_REFERRALS, 0)
        connection.set_option(ldap.OPT_DEREF, deref)
        try:
            if bind:
                connection.simple_bind_s(*bind)
            msgid = connection.search_ext(base, scope, "(objectClass=*)", ["1.1"],
                                          serverctrls=controls)
            _, data, _, _ = connection.result3(msgid)
        except ldap.LDAPError as e:
            info = e.args[0]
            return type(e).__name__, info.get("matched", ""), sorted(
                line for line in info.get("info", "").splitlines() if line.startswith("ldap"))
        finally:
            connection.unbind_s()
        return "ok", sorted(str(dn) if dn else f"ref {sorted(refs)}" for dn, refs in data)

    return step


def ldap3Search(base: str, scope: str, deref: str,
                bind: tuple[str, str] | None = None) -> Callable[[str], Any]:
    """
    A search through ldap3, which chases no referral here: the result code,
    matched DN, referral URLs, entries' DNs and references' URLs.
    """
    def step(url: str) -> Any:
        connection = ldap3.Connection(
            ldap3.Server(url, get_info=ldap3.NONE), *(bind or (None, None)), auto_bind=True,
            auto_referrals=False, raise_exceptions=False, receive_timeout=10)
        try:
            connection.search(base, "(objectClass=*)", getattr(ldap3, scope),
                              dereference_aliases=deref, attributes=["1.1"])
            found = sorted(
                item["dn"] if item["type"] == "searchResEntry" else f"ref {sorted(item['uri'])}"
                for item in connection.response or ())
            result = connection.result
            return (result["result"], result.get("dn") or "", sorted(result.get("referrals") or ()),
                    found)
        finally:
            connection.unbind()

    return step


def whoami(authzId: str, bind: tuple[str, str] = PROXY) -> Callable[[str], Any]:
    """
    ldapwhoami with the proxied authorization control.
    """
    return _tool("ldapwhoami", "-e", f"!authzid={authzId}", bind=bind)


def proxied(authzId: str, base: str = f"ou=services,{BASE}", scope: str = "one",
            bind: tuple[str, str] | None = PROXY) -> Callable[[str], Any]:
    """
    ldapsearch with the proxied authorization control.
    """
    return search(base, scope, "(objectClass=*)", "-e", f"!authzid={authzId}", bind=bind)


REMOTE = f"ou=remote,{BASE}"
NODN = f"ou=nodn,{BASE}"
GROUPS = f"ou=groups,{BASE}"
PEOPLE = f"ou=people,{BASE}"
ADD_BELOW = f"dn: cn=x,{REMOTE}\nchangetype: add\nobjectClass: person\ncn: x\nsn: x\n"
NEW_REFERRAL = (f"dn: ou=new,{BASE}\nchangetype: add\nobjectClass: referral\n"
                "objectClass: extensibleObject\nou: new\n"
                "ref: ldap://new.example.net/ou=new,dc=example,dc=net\n")
MOVE_INTO = (f"dn: cn=staff,{GROUPS}\nchangetype: modrdn\nnewrdn: cn=staff\ndeleteoldrdn: 1\n"
             f"newsuperior: {REMOTE}\n")

#: The steps, by category: (category, name, step, what slapd's outcome
#: must show for the feature to be exercised).
STEPS: list[tuple[str, str, Callable[[str], Any], str]] = [
    # Referral objects in searches.
    ("referrals", "base at a referral", search(REMOTE, "base"), "Referral (10)"),
    ("referrals", "below a referral, sub", search(f"cn=x,{REMOTE}", "sub"), "??sub"),
    ("referrals", "below a referral, one", search(f"cn=x,{REMOTE}", "one"), "??one"),
    ("referrals", "URL without a DN", search(f"cn=y,cn=x,{NODN}", "sub"), f"cn=y,cn=x,{NODN}"),
    ("referrals", "one-level references",
     search(BASE, "one", "(|(ou=remote)(ou=people))"), "# refldap://nodn"),
    ("referrals", "subtree references, whatever the filter",
     search(PEOPLE, "sub", "(uid=alice)"), "# refldap://b.example.net"),
    ("referrals", "only references", search(BASE, "sub", "(ou=remote)"), "# refldap://other"),
    ("referrals", "ManageDsaIT: the entry", search(REMOTE, "base", "(objectClass=*)", "-M",
                                                    attributes=("ref", "ou")), "ref: ldap://"),
    ("referrals", "critical ManageDsaIT: a search",
     search(BASE, "sub", "(ou=remote)", "-MM"), f"dn: {REMOTE}"),
    ("referrals", "ManageDsaIT below a referral", search(f"cn=x,{REMOTE}", "sub", "(cn=*)", "-M"),
     "Referral (10)"),
    ("referrals", "default referral", search("dc=other,dc=org", "base"), "default.example.net"),
    ("referrals", "default referral, one", search("cn=x,dc=other,dc=org", "one"), "??one"),
    ("referrals", "compare a referral",
     _tool("ldapcompare", REMOTE, "ou:remote"), "Referral (10)"),
    ("referrals", "compare below a referral",
     _tool("ldapcompare", f"cn=a,{REMOTE}", "ou:remote"), "cn=a,ou=remote,dc=example,dc=net"),
    ("referrals", "compare with ManageDsaIT",
     _tool("ldapcompare", "-M", REMOTE, "ou:remote"), "TRUE"),
    ("referrals", "python-ldap: referral",
     pythonLDAP(f"cn=x,{REMOTE}", ldap.SCOPE_SUBTREE, []), "REFERRAL"),
    ("referrals", "python-ldap: references", pythonLDAP(PEOPLE, ldap.SCOPE_ONELEVEL, []), "ref "),
    ("referrals", "python-ldap: ManageDsaIT",
     pythonLDAP(REMOTE, ldap.SCOPE_BASE, [ManageDSAITControl()]), REMOTE),
    ("referrals", "ldap3: referral", ldap3Search(REMOTE, "BASE", ldap3.DEREF_NEVER), "??base"),
    ("referrals", "ldap3: references", ldap3Search(BASE, "LEVEL", ldap3.DEREF_NEVER),
     "ref ['ldap://other.example.net"),
    # Aliases.
    ("aliases", "find: dangling", search(f"cn=dangling,{GROUPS}", "base", "(objectClass=*)",
                                         "-a", "find"), "Alias problem (33)"),
    ("aliases", "find: loop", search(f"cn=loop1,{GROUPS}", "base", "(objectClass=*)",
                                     "-a", "find"), "Alias problem (33)"),
    ("aliases", "find: alias to alias", search(f"cn=alal,{BASE}", "base", "(objectClass=*)",
                                               "-a", "find"), f"dn: {PEOPLE}"),
    ("aliases", "find: below an alias", search(f"cn=x,cn=al,{BASE}", "base", "(objectClass=*)",
                                               "-a", "find"), f"Matched DN: {PEOPLE}"),
    ("aliases", "never: below an alias", search(f"cn=x,cn=al,{BASE}", "base", "(objectClass=*)",
                                                "-a", "never"), f"Matched DN: cn=al,{BASE}"),
    ("aliases", "never: aliases are entries",
     search(GROUPS, "sub", "(objectClass=alias)", "-a", "never"), f"dn: cn=loop1,{GROUPS}"),
    ("aliases", "search: target out of scope",
     search(GROUPS, "sub", "(cn=*)", "-a", "search"), f"dn: uid=alice,{PEOPLE}"),
    ("aliases", "search: one level", search(GROUPS, "one", "(objectClass=*)", "-a", "search"),
     f"dn: uid=alice,{PEOPLE}"),
    ("aliases", "search: loops passed over",
     search(GROUPS, "sub", "(cn=loop1)", "-a", "search"), ""),
    ("aliases", "search: base not dereferenced", search(f"cn=al,{BASE}", "base",
                                                        "(objectClass=*)", "-a", "search"),
     f"dn: cn=al,{BASE}"),
    ("aliases", "always: subtree of the target",
     search(f"cn=alal,{BASE}", "sub", "(uid=alice)", "-a", "always"), f"dn: uid=alice,{PEOPLE}"),
    ("aliases", "always: one level below the target",
     search(f"cn=al,{BASE}", "one", "(objectClass=*)", "-a", "always"), "??base"),
    ("aliases", "always: dangling base", search(f"cn=dangling,{GROUPS}", "sub",
                                                "(objectClass=*)", "-a", "always"),
     "Alias problem (33)"),
    ("aliases", "always: below a loop", search(f"cn=x,cn=loop1,{GROUPS}", "sub",
                                               "(objectClass=*)", "-a", "always"),
     f"Matched DN: cn=loop1,{GROUPS}"),
    ("aliases", "find: aliases in scope kept",
     search(GROUPS, "sub", "(cn=*)", "-a", "find"), f"dn: cn=dangling,{GROUPS}"),
    ("aliases", "python-ldap: always", pythonLDAP(f"cn=al,{BASE}", ldap.SCOPE_BASE, [],
                                                  deref=ldap.DEREF_ALWAYS), PEOPLE),
    ("aliases", "ldap3: finding", ldap3Search(f"cn=alal,{BASE}", "BASE",
                                              ldap3.DEREF_BASE), PEOPLE),
    ("aliases", "ldap3: loop", ldap3Search(f"cn=loop2,{GROUPS}", "BASE", ldap3.DEREF_ALWAYS),
     "33"),
    # Writes at and below referral objects and aliases.
    ("writes", "add below a referral", modify(ADD_BELOW), "Referral (10)"),
    ("writes", "add below a referral, ManageDsaIT", modify(ADD_BELOW, "-M"), "Referral (10)"),
    ("writes", "modify below a referral",
     modify(f"dn: cn=y,cn=x,{REMOTE}\nchangetype: modify\nreplace: description\n"
            "description: d\n"), "cn=y,cn=x,ou=remote,dc=example,dc=net"),
    ("writes", "modify a referral",
     modify(f"dn: {REMOTE}\nchangetype: modify\nreplace: description\ndescription: d\n"),
     "Referral (10)"),
    ("writes", "modify a referral, ManageDsaIT",
     modify(f"dn: {REMOTE}\nchangetype: modify\nreplace: description\ndescription: d\n", "-M"),
     ""),
    ("writes", "read it back", search(REMOTE, "base", "(objectClass=*)", "-M",
                                      attributes=("description",)), "description: d"),
    ("writes", "delete a referral", modify(f"dn: {REMOTE}\nchangetype: delete\n"),
     "Referral (10)"),
    ("writes", "rename a referral",
     modify(f"dn: {REMOTE}\nchangetype: modrdn\nnewrdn: ou=remote2\ndeleteoldrdn: 1\n"),
     "Referral (10)"),
    ("writes", "move below a referral", modify(MOVE_INTO), ""),
    ("writes", "move below a referral, ManageDsaIT", modify(MOVE_INTO, "-M"), ""),
    ("writes", "add below a URL without a DN",
     modify(f"dn: cn=x,{NODN}\nchangetype: add\nobjectClass: person\ncn: x\nsn: x\n"),
     f"cn=x,{NODN}"),
    ("writes", "add below an alias",
     modify(f"dn: cn=x,cn=al,{BASE}\nchangetype: add\nobjectClass: person\ncn: x\nsn: x\n"),
     ""),
    ("writes", "add a referral", modify(NEW_REFERRAL), ""),
    ("writes", "the new referral refers", search(f"ou=new,{BASE}", "base"), "ou=new,dc=example,dc=net"),
    ("writes", "delete it, ManageDsaIT", modify(f"dn: ou=new,{BASE}\nchangetype: delete\n", "-M"),
     ""),
    ("writes", "add outside every suffix",
     modify("dn: cn=x,dc=other\nchangetype: add\nobjectClass: person\ncn: x\nsn: x\n"),
     "default.example.net/cn=x,dc=other"),
    # Proxied authorization.
    ("authz", "authzFrom added", modify(AUTHZ_FROM), ""),
    ("authz", "to: dn", proxied(f"dn:{BOB}"), f"dn: cn=proxy,ou=services,{BASE}"),
    ("authz", "empty authzId: anonymous", proxied("", bind=PROXY), ""),
    ("authz", "to: refused", proxied(f"dn:uid=alice,{PEOPLE}"), "(123)"),
    ("authz", "to: dn.regex", proxied(f"dn:uid=carol,{PEOPLE}", PEOPLE, "base"), f"dn: {PEOPLE}"),
    ("authz", "to: dn.regex refused", proxied(f"dn:uid=eve,{PEOPLE}", PEOPLE, "base"), "(123)"),
    ("authz", "to: dn.onelevel", proxied(f"dn:cn=staff,{GROUPS}", PEOPLE, "base"), f"dn: {PEOPLE}"),
    ("authz", "to: dn.onelevel, not deeper", proxied(f"dn:cn=x,cn=staff,{GROUPS}", PEOPLE,
                                                     "base"), "(123)"),
    ("authz", "to: dn.subtree", proxied(f"dn:cn=users,ou=posix,{GROUPS}", PEOPLE, "base"),
     f"dn: {PEOPLE}"),
    ("authz", "u: mapped", proxied("u:bob"), f"dn: uid=sssd,ou=services,{BASE}"),
    ("authz", "u: refused", proxied("u:alice"), "(123)"),
    ("authz", "junk", proxied("junk"), "(123)"),
    ("authz", "from", proxied(f"dn:uid=heidi,{PEOPLE}", PEOPLE, "base", bind=GRACE),
     f"dn: {PEOPLE}"),
    ("authz", "oneself", proxied(f"dn:uid=heidi,{PEOPLE}", PEOPLE, "base",
                                 bind=(f"uid=heidi,{PEOPLE}", "heidi-secret")), f"dn: {PEOPLE}"),
    ("authz", "from: the other way", proxied(f"dn:uid=grace,{PEOPLE}", PEOPLE, "base",
                                             bind=("uid=heidi," + PEOPLE, "heidi-secret")),
     "(123)"),
    ("authz", "root DN", proxied(f"dn:{BOB}", bind=ROOT), f"dn: uid=sssd,ou=services,{BASE}"),
    ("authz", "anonymous", proxied(f"dn:{BOB}", bind=None), "(123)"),
    ("authz", "anonymous to anonymous", proxied("", bind=None), "(123)"),
    ("authz", "whoami", whoami(f"dn:{BOB}"), f"dn:{BOB}"),
    ("authz", "whoami refused", whoami(f"dn:uid=alice,{PEOPLE}"), "(123)"),
    ("authz", "whoami anonymous", whoami("dn:"), "anonymous"),
    ("authz", "write as the proxied identity",
     _tool("ldapmodify", "-e", f"!authzid=dn:{BOB}", bind=ROOT,
           stdin=f"dn: uid=dave,{PEOPLE}\nchangetype: modify\nreplace: description\n"
                 "description: x\n"), "Insufficient access (50)"),
    ("authz", "python-ldap ProxyAuthzControl",
     pythonLDAP(f"ou=services,{BASE}", ldap.SCOPE_ONELEVEL,
                [ProxyAuthzControl(True, f"dn:{BOB}".encode())], bind=PROXY),
     f"uid=mail-gateway,ou=services,{BASE}"),
]


@functools.cache
def outcomes() -> dict[str, list[Any]]:
    """
    Run the steps once on slapd and on ldapd over each backend.

    @return: the outcomes, in step order, by server.
    @raise unittest.SkipTest: if slapd cannot run here.
    """
    folder = Path(tempfile.mkdtemp(prefix="ldapd-naming-"))
    servers: dict[str, Any] = {}
    try:
        servers["slapd"] = _slapd()
        for backend in ("memory", "sql"):
            servers[backend] = _ldapd(folder, backend)
        try:
            for server in servers.values():
                server.start()
        except RuntimeError as e:
            if "ermission denied" in str(e):
                raise unittest.SkipTest(f"slapd may not use its folder (AppArmor?): {e}") from None
            raise
        return {name: [step(server.url) for _, _, step, _ in STEPS]
                for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class NamingComparisonTests(unittest.SynchronousTestCase):
    """
    ldapd answers as slapd for referral objects, aliases and proxied
    authorization, on the memory and the sql backend.
    """

    def setUp(self) -> None:
        self.outcomes = outcomes()

    def assertSame(self, category: str) -> None:
        """
        Each step of C{category} shows its feature in slapd's outcome, and
        ldapd's outcomes on both backends equal it.
        """
        differences = []
        for i, (kind, name, _, shown) in enumerate(STEPS):
            if kind != category:
                continue
            theirs = self.outcomes["slapd"][i]
            self.assertIn(shown, repr(theirs), f"{name}: slapd's outcome does not show it")
            for backend in ("memory", "sql"):
                ours = self.outcomes[backend][i]
                if ours != theirs:
                    differences.append(f"{name} ({backend}):\n  slapd {theirs!r}\n  ldapd {ours!r}")
        if differences:
            self.fail("\n".join(differences))

    def test_referrals(self) -> None:
        """
        Searches and compares at and below referral objects are referred,
        with the URLs slapd gives; one-level and subtree searches send
        continuation references; ManageDsaIT makes a referral object an
        entry; names outside every suffix go to the default referral.
        """
        self.assertSame("referrals")

    def test_aliases(self) -> None:
        """
        The four derefAliases modes find and search as slapd's, with its
        alias problems.
        """
        self.assertSame("aliases")

    def test_writes(self) -> None:
        """
        Writes at and below referral objects are referred (or refused) as
        slapd does, and with ManageDsaIT a referral object is written as an
        entry; nothing is added below an alias.
        """
        self.assertSame("writes")

    def test_proxiedAuthorization(self) -> None:
        """
        Proxied authorization follows C{authz-policy any}: authzTo and
        authzFrom rules, the root DN, u: names through the mapping, 123
        when refused; the operation runs as the identity assumed (the
        access rules let only bob read ou=services's children).
        """
        self.assertSame("authz")
