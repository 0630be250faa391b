"""
Tests for L{ldapd.plugins.aclrules} (the rule language) and
L{ldapd.plugins.acl} (the plugin), in memory with a L{task.Clock}.
"""

from __future__ import annotations

from typing import Any

from ldaptor.protocols import pureber, pureldap
from twisted.internet import task
from twisted.trial import unittest

from ldapd._codec import encodeMessage, encodeSequence, octetString
from ldapd._framing import Framer
from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.operation import Connection, Operation
from ldapd.plugins.acl import AccessControl, AccessControlFactory
from ldapd.plugins.aclrules import (
    CHILDREN,
    ENTRY,
    AccessRule,
    AccessRuleError,
    Decisions,
    Privilege,
    Subject,
    evaluate,
    parseRule,
)
from ldapd.registry import ConfigContext, ConfigError
from ldapd.requests import PASSWORD_MODIFY
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, decodeResponse, wireFilter

SUFFIX = "dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"
PEOPLE = "ou=people,dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"
BOB = "uid=bob,ou=people,dc=example,dc=com"
DEVELOPERS = "cn=developers,ou=groups,dc=example,dc=com"

_SCHEMA = Schema.standard()


def _dn(text: str) -> DN:
    return _SCHEMA.normalizeDN(DN.parse(text))


def _entry(dn: str, **attributes: Any) -> Entry:
    return Entry(DN.parse(dn), [(k, [v.encode() for v in vs]) for k, vs in attributes.items()],
                 _SCHEMA)


def _allowed(rules: list[str], who: str | None, dn: str, attribute: Any, wanted: Privilege,
             peer: str = "IP=127.0.0.1:4000", groups: tuple[str, ...] = (),
             **attributes: Any) -> bool:
    entry = _entry(dn, objectClass=["person"], **attributes)
    at = _SCHEMA.attributeType(attribute) if attribute not in (ENTRY, CHILDREN) else attribute
    subject = Subject(_dn(who) if who else None, peer, frozenset(_dn(g) for g in groups))
    return evaluate([parseRule(r, _SCHEMA) for r in rules], subject, entry, at, wanted)


class ParseTests(unittest.SynchronousTestCase):
    """
    L{parseRule} reads slapd.access(5) rules and rejects broken ones with a
    message saying what is wrong.
    """

    def test_levels(self) -> None:
        """
        Each access level implies the lower ones, as in slapd: C{write} is
        C{add} and C{delete}, and C{manage} everything.
        """
        rule = parseRule("to * by * write", _SCHEMA)
        self.assertEqual(rule.clauses[0].privileges,
                         Privilege.DISCLOSE | Privilege.AUTH | Privilege.COMPARE
                         | Privilege.SEARCH | Privilege.READ | Privilege.WRITE)
        self.assertEqual(parseRule("to * by * auth", _SCHEMA).clauses[0].privileges,
                         Privilege.DISCLOSE | Privilege.AUTH)
        self.assertIn(Privilege.MANAGE, parseRule("to * by * manage", _SCHEMA).clauses[0].privileges)

    def test_privileges(self) -> None:
        """
        C{=}, C{+} and C{-} followed by privilege letters set, add or remove
        exactly those privileges.
        """
        clauses = parseRule("to * by users =rs continue by * -w", _SCHEMA).clauses
        self.assertEqual((clauses[0].operator, clauses[0].privileges),
                         ("=", Privilege.READ | Privilege.SEARCH))
        self.assertEqual(clauses[0].control, "continue")
        self.assertEqual((clauses[1].operator, clauses[1].privileges), ("-", Privilege.WRITE))

    def test_what(self) -> None:
        """
        dn, filter and attrs parts combine; C{access} before C{to} is optional;
        quoted values may hold spaces.
        """
        rule = parseRule('access to dn.subtree="ou=people, dc=example,dc=com" '
                         'filter="(objectClass=person)" attrs=cn,entry by * read', _SCHEMA)
        self.assertEqual(rule.dn.dn, _dn(PEOPLE))
        self.assertEqual(rule.attrs, frozenset({_SCHEMA.attributeType("cn")}))
        self.assertEqual(rule.pseudo, frozenset({ENTRY}))
        self.assertIsNotNone(rule.filter)

    def test_errors(self) -> None:
        """
        Broken rules raise L{AccessRuleError} naming the problem.
        """
        for text, problem in [
            ("by * read", "starts with 'to'"),
            ("to by * read", "needs a <what>"),
            ("to *", "at least one 'by'"),
            ("to * by", "needs a <who>"),
            ("to * by read", "before any <who>"),
            ("to bogus by * read", "unknown <what>"),
            ("to * by someone read", "unknown <who>"),
            ("to attrs=nosuch by * read", "undefined attribute type"),
            ("to dn.bogus=x by * read", "unknown DN style"),
            ("to dn.base=cn= by * read", "bad DN"),
            ("to dn.regex=( by * read", "bad regular expression"),
            ("to dn.regex=^(a)\\1$ by * read", "not a regular expression RE2 accepts"),
            ("to * by peername.regex=(?=IP) read", "not a regular expression RE2 accepts"),
            ("to filter=((x by * read", "bad filter"),
            ("to * by peername.ip=300.1.1.1 read", "bad address"),
            ("to * by * read stop extra", "unexpected"),
            ('to dn="unterminated by * read', "quotation"),
        ]:
            with self.assertRaises(AccessRuleError) as caught:
                parseRule(text, _SCHEMA)
            self.assertIn(problem, str(caught.exception), text)


class EvaluateTests(unittest.SynchronousTestCase):
    """
    L{evaluate} decides as slapd does: first matching <what>, first matching
    <who>, with stop, continue and break.
    """

    def test_whoKinds(self) -> None:
        """
        C{anonymous}, C{users}, C{self} and C{*} select who they say.
        """
        rules = ["to * by self write by users read by anonymous auth"]
        self.assertTrue(_allowed(rules, ALICE, ALICE, "cn", Privilege.WRITE))
        self.assertFalse(_allowed(rules, BOB, ALICE, "cn", Privilege.WRITE))
        self.assertTrue(_allowed(rules, BOB, ALICE, "cn", Privilege.READ))
        self.assertFalse(_allowed(rules, None, ALICE, "cn", Privilege.READ))
        self.assertTrue(_allowed(rules, None, ALICE, "cn", Privilege.AUTH))

    def test_dnStyles(self) -> None:
        """
        dn.base, dn.one, dn.subtree, dn.children and dn.regex select entries
        (and, in a <who>, identities) as slapd's styles do.
        """
        for style, dn, expected in [
            ("base", PEOPLE, True), ("base", ALICE, False),
            ("one", ALICE, True), ("one", PEOPLE, False), ("one", SUFFIX, False),
            ("subtree", PEOPLE, True), ("subtree", ALICE, True), ("subtree", SUFFIX, False),
            ("children", ALICE, True), ("children", PEOPLE, False),
        ]:
            rules = [f'to dn.{style}="{PEOPLE}" by * read']
            self.assertEqual(_allowed(rules, None, dn, "cn", Privilege.READ), expected, (style, dn))
        rules = ['to dn.regex="^uid=[^,]+,ou=people,dc=example,dc=com$" by * read']
        self.assertTrue(_allowed(rules, None, ALICE, "cn", Privilege.READ))
        self.assertFalse(_allowed(rules, None, PEOPLE, "cn", Privilege.READ))
        rules = [f'to * by dn.children="{PEOPLE}" write']
        self.assertTrue(_allowed(rules, BOB, SUFFIX, "cn", Privilege.WRITE))
        self.assertFalse(_allowed(rules, ROOT, SUFFIX, "cn", Privilege.WRITE))

    def test_regexEngine(self) -> None:
        """
        dn.regex is matched by RE2: a rule with a catastrophic pattern for
        Python's C{re} (C{(a|a)+x}) still selects what it names, and an
        entry whose DN makes C{re} backtrack for ever is decided at once.
        """
        [rule] = [parseRule('to dn.regex="^cn=(a|a)+x" by * none', _SCHEMA)]
        self.assertEqual(type(rule.dn.regex).__module__.split(".")[0], "re2")
        rules = ['to dn.regex="^cn=(a|a)+x" by * none', "to * by * read"]
        self.assertFalse(_allowed(rules, None, f"cn=aaax,{PEOPLE}", "cn", Privilege.READ))
        self.assertTrue(_allowed(rules, None, f"cn={'a' * 40},{PEOPLE}", "cn", Privilege.READ))

    def test_attrs(self) -> None:
        """
        attrs= selects the named types and their subtypes; C{entry} and
        C{children} are selected only when named.
        """
        rules = ["to attrs=name,entry by * read", "to * by * none"]
        self.assertTrue(_allowed(rules, None, ALICE, "cn", Privilege.READ))
        self.assertTrue(_allowed(rules, None, ALICE, ENTRY, Privilege.READ))
        self.assertFalse(_allowed(rules, None, ALICE, CHILDREN, Privilege.READ))
        self.assertFalse(_allowed(rules, None, ALICE, "mail", Privilege.READ))

    def test_filter(self) -> None:
        """
        filter= selects the entries that match it.
        """
        rules = ["to filter=(cn=Alice*) by * read"]
        self.assertTrue(_allowed(rules, None, ALICE, "cn", Privilege.READ, cn=["Alice Liddell"]))
        self.assertFalse(_allowed(rules, None, BOB, "cn", Privilege.READ, cn=["Bob"]))

    def test_firstWhatWins(self) -> None:
        """
        Only the first rule whose <what> matches applies; a rule none of
        whose <who> matches denies (implicit C{by * none}).
        """
        rules = ["to attrs=mail by self read", "to * by * read"]
        self.assertFalse(_allowed(rules, BOB, ALICE, "mail", Privilege.READ))
        self.assertTrue(_allowed(rules, BOB, ALICE, "cn", Privilege.READ))
        self.assertFalse(_allowed([], BOB, ALICE, "cn", Privilege.DISCLOSE))

    def test_controls(self) -> None:
        """
        C{continue} accumulates privileges over the rule's later clauses;
        C{break} carries them to the next matching rule; C{stop} decides.
        """
        cont = ["to * by users +r continue by * +c"]
        self.assertTrue(_allowed(cont, BOB, ALICE, "cn", Privilege.READ | Privilege.COMPARE))
        self.assertFalse(_allowed(cont, None, ALICE, "cn", Privilege.READ))
        broken = ["to attrs=cn by users +r break", "to * by * +c"]
        self.assertTrue(_allowed(broken, BOB, ALICE, "cn", Privilege.READ | Privilege.COMPARE))
        stopped = ["to attrs=cn by users +r", "to * by * +c"]
        self.assertFalse(_allowed(stopped, BOB, ALICE, "cn", Privilege.COMPARE))
        removed = ["to * by users read continue by * -r"]
        self.assertFalse(_allowed(removed, BOB, ALICE, "cn", Privilege.READ))
        self.assertTrue(_allowed(removed, BOB, ALICE, "cn", Privilege.SEARCH))

    def test_groupAndDnattr(self) -> None:
        """
        group= matches members of the group (resolved by the plugin into the
        subject); dnattr= matches identities the entry names in an attribute.
        """
        rules = [f'to * by group="{DEVELOPERS}" write by dnattr=manager write by * none']
        self.assertTrue(_allowed(rules, BOB, ALICE, "cn", Privilege.WRITE, groups=(DEVELOPERS,)))
        self.assertFalse(_allowed(rules, BOB, ALICE, "cn", Privilege.WRITE))
        self.assertTrue(_allowed(rules, BOB, ALICE, "cn", Privilege.WRITE, manager=[BOB]))

    def test_peername(self) -> None:
        """
        peername.ip (with a mask and a port), peername.regex and
        peername.path select clients by address.
        """
        ip = ["to * by peername.ip=10.0.0.0%255.0.0.0 read"]
        self.assertTrue(_allowed(ip, None, ALICE, "cn", Privilege.READ, peer="IP=10.1.2.3:5555"))
        self.assertFalse(_allowed(ip, None, ALICE, "cn", Privilege.READ, peer="IP=11.1.2.3:5555"))
        port = ["to * by peername.ip=127.0.0.1:389 read"]
        self.assertFalse(_allowed(port, None, ALICE, "cn", Privilege.READ))
        regex = ['to * by peername.regex="^IP=127\\.0\\.0\\.1:" read']
        self.assertTrue(_allowed(regex, None, ALICE, "cn", Privilege.READ))
        path = ["to * by peername.path=/run/ldapi read"]
        self.assertTrue(_allowed(path, None, ALICE, "cn", Privilege.READ, peer="PATH=/run/ldapi"))
        self.assertFalse(_allowed(path, None, ALICE, "cn", Privilege.READ))

    def test_scope(self) -> None:
        """
        A rule stored on an entry applies only within that entry's subtree.
        """
        rule = parseRule("to * by * read", _SCHEMA, scope=_dn(PEOPLE))
        subject = Subject(None)
        self.assertTrue(evaluate([rule], subject, _entry(ALICE, objectClass=["person"]),
                                 ENTRY, Privilege.READ))
        self.assertFalse(evaluate([rule], subject, _entry(SUFFIX, objectClass=["top"]),
                                  ENTRY, Privilege.READ))


def _slapdDecision(rules: list[AccessRule], subject: Subject, entry: Entry,
                   attribute: Any, wanted: Privilege) -> bool:
    """
    slapd's decision, rule by rule and clause by clause as slapd.access(5)
    tells it, with nothing kept from one access to the next: what
    L{evaluate} and L{Grants} must agree with.
    """
    mask = Privilege.NONE
    applying = [r for r in rules if r.coversAttribute(attribute) and r.coversEntry(entry)]
    for rule in applying:
        matching = [c for c in rule.clauses
                    if c.matchesSubject(subject) and c.matchesEntry(subject, entry)]
        # No clause matching is slapd's implicit "by * none stop".
        controls = ["stop"]
        for clause in matching:
            mask = clause.apply(mask)
            controls.append(clause.control)
            if clause.control in ("stop", "break"):
                break
        if controls[-1] != "break":
            return wanted in mask
    return wanted in mask


class GrantsTests(unittest.SynchronousTestCase):
    """
    L{Decisions} decide every access to an entry as slapd does, also with
    L{Grants} made for another entry and subject.
    """

    def test_asSlapd(self) -> None:
        """
        For rules with DN, filter, attribute and scope targets and every
        control, each subject, attribute and privilege is decided as slapd
        decides it, by L{evaluate} and by the L{Grants} of L{Decisions},
        those made for an earlier entry or subject included (fewer are made
        than there are entries and subjects).
        """
        rules = [parseRule(r, _SCHEMA) for r in RULES + [
            "to filter=(cn=Alice*) attrs=sn by users +r break",
            "to attrs=cn,sn by users +c continue by * +s",
            "to attrs=telephoneNumber by dnattr=seeAlso write "
            "by peername.ip=127.0.0.1 +c continue by * +d",
        ]] + [parseRule("to attrs=description by * write", _SCHEMA, scope=_dn(PEOPLE))]
        entries = [
            _entry(dn, objectClass=["person"], cn=[cn], sn=["L"], description=["d"], mail=["m"],
                   userPassword=["p"], seeAlso=[BOB], telephoneNumber=["1"])
            for dn, cn in ((ALICE, "Alice Liddell"), (BOB, "Bob"), (SUFFIX, "Example"),
                           (PEOPLE, "People"))
        ]
        subjects = [Subject(None), Subject(_dn(ALICE)), Subject(_dn(BOB)),
                    Subject(_dn(ALICE), "IP=127.0.0.1:4000"),
                    Subject(_dn(ROOT), groups=frozenset({_dn(DEVELOPERS)}))]
        attributes = [ENTRY, CHILDREN] + [
            _SCHEMA.attributeType(name)
            for name in ("cn", "sn", "mail", "userPassword", "description", "ldapdACI", "uid",
                         "telephoneNumber", "seeAlso")]
        decided = set()
        decisions = Decisions()
        made = set()
        for entry in entries:
            for subject in subjects:
                grants = decisions.of(subject).grants(rules, entry)
                made.add(grants)
                for at in attributes:
                    for wanted in Privilege:
                        expected = _slapdDecision(rules, subject, entry, at, wanted)
                        self.assertEqual(evaluate(rules, subject, entry, at, wanted), expected)
                        self.assertEqual(grants.allows(at, wanted), expected,
                                         (str(entry.dn), subject, at, wanted))
                        decided.add(expected)
        self.assertEqual(decided, {True, False})
        self.assertLess(len(made), len(entries) * len(subjects))


#: Rules the directory tests run with.
RULES = [
    "to attrs=userPassword by self =wx by anonymous auth by * none",
    f'to dn.base="{SUFFIX}" attrs=children by group="{DEVELOPERS}" write by * read',
    f'to dn.one="{SUFFIX}" attrs=entry by group="{DEVELOPERS}" write by * break',
    f'to dn.children="{PEOPLE}" attrs=mail by self write by users read by * none',
    f'to dn.subtree="ou=services,{SUFFIX}" by users read by * none',
    f'to dn.base="{BOB}" by dn.base="{BOB}" write by users read by * none',
    "to attrs=ldapdACI by * none",
    "to * by self write by users read by anonymous read",
]


class AccessControlTests(unittest.TestCase):
    """
    The plugin applied to every operation of a directory with the example
    organisation.
    """

    rules = RULES

    #: The turns of the clock each request is given to complete in.
    turns = 0

    def setUp(self) -> None:
        self.clock = task.Clock()
        suffix = DN.parse(SUFFIX)
        self.acl = AccessControl(_SCHEMA, self.rules)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(_SCHEMA.normalizeDN(suffix), _SCHEMA),
                      DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            # A scheme hashed at once: the clock has no thread pool.
            [self.acl], schema=_SCHEMA, reactor=self.clock, passwordHash="{SSHA}",
        )
        self.successResultOf(self.directory.open())
        self.connection = Connection("127.0.0.1:4000", self.clock)
        self.nextId = 1

    def execute(self, request: Any) -> list[Any]:
        """
        Run a request on the test connection as it comes off the wire.

        @return: the decoded responses.
        """
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, id=self.nextId).toWire())
        message = framer.next()
        self.nextId += 1
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        responses: list[Any] = []

        def reply(pdu: bytes, controls: Any = ()) -> None:
            responses.append(decodeResponse(encodeMessage(op.messageId, pdu, controls)).value)

        done = self.directory.execute(op, reply)
        for _ in range(self.turns):
            self.clock.advance(0)
        self.successResultOf(done)
        return responses

    def bind(self, dn: str, password: str) -> int:
        return self.execute(pureldap.LDAPBindRequest(dn=dn, auth=password))[-1].resultCode

    def search(self, base: str = SUFFIX, filterText: str = "(objectClass=*)", scope: int = 2,
               attributes: list[str] | None = None) -> tuple[dict[str, dict[str, Any]], int]:
        responses = self.execute(pureldap.LDAPSearchRequest(
            baseObject=base, scope=scope, filter=wireFilter(filterText),
            attributes=attributes or []))
        entries = {
            r.objectName.decode(): {n.decode(): v for n, v in r.attributes}
            for r in responses if isinstance(r, pureldap.LDAPSearchResultEntry)
        }
        return entries, responses[-1].resultCode

    def compare(self, dn: str, attribute: str, value: str) -> int:
        return self.execute(pureldap.LDAPCompareRequest(
            entry=dn, ava=pureldap.LDAPAttributeValueAssertion(
                pureber.BEROctetString(attribute), pureber.BEROctetString(value))))[-1].resultCode

    def modify(self, dn: str, operation: int, attribute: str, *values: str) -> int:
        change = pureber.BERSequence([
            pureber.BEREnumerated(operation),
            pureber.BERSequence([pureber.BEROctetString(attribute),
                                 pureber.BERSet([pureber.BEROctetString(v) for v in values])]),
        ])
        return self.execute(pureldap.LDAPModifyRequest(object=dn, modification=[change]))[-1].resultCode

    def add(self, dn: str, **attributes: list[str]) -> int:
        return self.execute(pureldap.LDAPAddRequest(entry=dn, attributes=[
            (pureber.BEROctetString(k), pureber.BERSet([pureber.BEROctetString(v) for v in vs]))
            for k, vs in attributes.items()
        ]))[-1].resultCode

    def delete(self, dn: str) -> int:
        return self.execute(pureldap.LDAPDelRequest(entry=dn))[-1].resultCode

    def test_passwordNeverRead(self) -> None:
        """
        userPassword is returned to no one but the root DN, yet binds work
        (C{by anonymous auth}); a filter on it matches nothing.
        """
        entries, _ = self.search(ALICE, scope=0)
        self.assertNotIn("userPassword", entries[ALICE])
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        entries, _ = self.search(ALICE, scope=0)
        self.assertNotIn("userPassword", entries[ALICE])
        self.assertEqual(self.search(filterText="(userPassword=*)")[0], {})
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertIn("userPassword", self.search(ALICE, scope=0)[0][ALICE])

    def test_bindNeedsAuth(self) -> None:
        """
        Without C{auth} on its userPassword, an entry cannot be bound to:
        invalidCredentials, as in slapd.
        """
        acl = AccessControl(_SCHEMA, ["to attrs=userPassword by * none", "to * by * read"])
        self.acl.rules = acl.rules
        self.assertEqual(self.bind(ALICE, "alice-secret"), 49)

    def passwordModify(self, user: str, old: str, new: str) -> Any:
        return self.execute(pureldap.LDAPExtendedRequest(
            requestName=PASSWORD_MODIFY, requestValue=encodeSequence([
                octetString(user.encode(), 0x80), octetString(old.encode(), 0x81),
                octetString(new.encode(), 0x82)])))[-1]

    def test_passwordModifyNeedsWrite(self) -> None:
        """
        The old password of Password Modify is checked only for a client
        that may write the account's userPassword: another user gets the
        same answer for the right old password as for a wrong one, as
        slapd gives; the owner changes it with the right one.
        """
        self.assertEqual(self.bind(BOB, "bob-secret"), 0)
        answers = [self.passwordModify(ALICE, old, "alice-new")
                   for old in ("wrong", "alice-secret")]
        self.assertEqual([(a.resultCode, a.errorMessage) for a in answers],
                         [(53, b"unwilling to verify old password")] * 2)
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.passwordModify(ALICE, "wrong", "alice-new").resultCode, 53)
        self.assertEqual(self.passwordModify(ALICE, "alice-secret", "alice-new").resultCode, 0)

    def test_filterOnUnsearchable(self) -> None:
        """
        A filter cannot test an attribute the client may not search: mail
        is hidden from anonymous, so (mail=...) finds nothing, while the
        same search as a user finds the entry.
        """
        self.assertEqual(self.search(PEOPLE, "(mail=alice@example.com)")[0], {})
        self.assertEqual(self.search(PEOPLE, "(!(mail=alice@example.com))")[0].keys() & {ALICE},
                         set())
        self.assertEqual(self.bind(BOB, "bob-secret"), 0)
        self.assertEqual(list(self.search(PEOPLE, "(mail=alice@example.com)")[0]), [ALICE])

    def test_attributesFiltered(self) -> None:
        """
        Attributes the client may not read are left out of results; entries
        it may not read are left out altogether.
        """
        entries, code = self.search()
        self.assertEqual(code, 0)
        self.assertNotIn("mail", entries[ALICE])
        self.assertIn("cn", entries[ALICE])
        self.assertNotIn(BOB, entries)
        self.assertFalse(any("ou=services" in dn for dn in entries))

    def test_searchBaseNotDisclosed(self) -> None:
        """
        A search based on an entry the client may not see is noSuchObject,
        like one based on an entry that does not exist.
        """
        self.assertEqual(self.search(BOB, scope=0)[1], 32)
        self.assertEqual(self.search(f"uid=zed,{PEOPLE}", scope=0)[1], 32)

    def test_hiddenAsMissing(self) -> None:
        """
        An entry the client may not see (bob, to anonymous) and a missing
        one below it answer as a missing entry: noSuchObject whose matched
        DN is the deepest superior the client may see, never the hidden one.
        """
        for dn in (BOB, f"uid=zed,{BOB}", f"uid=zed,{PEOPLE}"):
            result = self.execute(pureldap.LDAPSearchRequest(baseObject=dn, scope=0))[-1]
            self.assertEqual((result.resultCode, result.matchedDN), (32, PEOPLE.encode()), dn)
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        result = self.execute(pureldap.LDAPSearchRequest(baseObject=f"uid=zed,{BOB}", scope=0))[-1]
        self.assertEqual((result.resultCode, result.matchedDN), (32, BOB.encode()))

    def test_subordinatesVisibleOnly(self) -> None:
        """
        numSubordinates counts only the children the client may see: bob
        (hidden from anonymous) is not counted for anonymous clients.
        """
        def count() -> int:
            entries, _ = self.search(PEOPLE, scope=0, attributes=["numSubordinates"])
            return int(entries[PEOPLE]["numSubordinates"][0])

        anonymous = count()
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(count(), anonymous + 1)

    def test_compare(self) -> None:
        """
        Compare needs C{compare}; where the entry may not be seen the answer
        is noSuchObject, where it may, insufficientAccessRights.
        """
        self.assertEqual(self.compare(ALICE, "cn", "Alice Anderson"), 6)
        self.assertEqual(self.compare(ALICE, "mail", "alice@example.com"), 50)
        self.assertEqual(self.compare(ALICE, "userPassword", "alice-secret"), 50)
        self.assertEqual(self.compare(BOB, "cn", "Bob"), 32)
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.compare(ALICE, "mail", "alice@example.com"), 6)

    def test_selfWrite(self) -> None:
        """
        A user may change their own entry but not another's.
        """
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.modify(ALICE, 2, "mail", "a@example.com"), 0)
        self.assertEqual(self.modify(f"uid=carol,{PEOPLE}", 2, "mail", "c@example.com"), 50)
        self.assertEqual(self.bind("", ""), 0)
        self.assertEqual(self.modify(BOB, 2, "mail", "b@example.com"), 8)

    def test_addDeleteNeedChildren(self) -> None:
        """
        Adding and deleting need write on the parent's C{children} and on
        the C{entry}, here granted to the developers group on the suffix only.
        """
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.add(f"ou=alices,{SUFFIX}", objectClass=["organizationalUnit"]), 50)
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.add(f"ou=carols,{SUFFIX}", objectClass=["organizationalUnit"]), 0)
        self.assertEqual(self.delete(f"ou=carols,{SUFFIX}"), 0)
        self.assertEqual(self.add(f"ou=carols,{PEOPLE}", objectClass=["organizationalUnit"]), 50)

    def test_storedRules(self) -> None:
        """
        Rules in ldapdACI apply to their holder's subtree, before the
        configured ones; only those granted manage may write them, and a
        rule that does not parse is refused.
        """
        helpdesk = f'to dn.children="{PEOPLE}" attrs=mail by group="{DEVELOPERS}" write by * break'
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 0, "ldapdACI", helpdesk), 50)
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 0, "ldapdACI", "to nonsense"), 21)
        self.assertEqual(self.modify(PEOPLE, 0, "ldapdACI", helpdesk), 0)
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.modify(ALICE, 2, "mail", "a@example.com"), 0)
        self.assertEqual(self.modify(ALICE, 2, "cn", "Alice"), 50)
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 1, "ldapdACI"), 0)
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.modify(ALICE, 2, "mail", "b@example.com"), 50)

    def test_storedRulesExpire(self) -> None:
        """
        Another server sharing the database (here a second directory on the
        same backend) sees a revoked stored rule once C{stored_rules_ttl}
        has passed since it read the rules, without a write of its own.
        """
        helpdesk = f'to dn.children="{PEOPLE}" attrs=mail by group="{DEVELOPERS}" write by * break'
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 0, "ldapdACI", helpdesk), 0)
        database = self.directory.databases[0]
        other = Directory([Database(database.suffix, database.backend)],
                          [AccessControl(_SCHEMA, self.rules, storedRulesTTL=5)],
                          schema=_SCHEMA, reactor=self.clock)
        mine = self.directory
        self.directory = other
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.modify(ALICE, 2, "mail", "a@example.com"), 0)
        self.directory = mine
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 1, "ldapdACI"), 0)
        self.directory = other
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.modify(ALICE, 2, "mail", "b@example.com"), 0)
        self.clock.advance(5)
        self.assertEqual(self.modify(ALICE, 2, "mail", "c@example.com"), 50)

    def test_delegatedManage(self) -> None:
        """
        Whoever a stored rule grants manage on ldapdACI may write further
        stored rules there: delegation without touching the configuration.
        """
        delegate = f'to dn.subtree="{PEOPLE}" attrs=ldapdACI by group="{DEVELOPERS}" manage by * break'
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 0, "ldapdACI", delegate), 0)
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 0, "ldapdACI", "to * by * read"), 0)
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 0, "ldapdACI", "to * by * write"), 50)

    def test_groupChangeApplies(self) -> None:
        """
        A change of a group's members holds from the next operation on, for
        a client bound before it: carol, a developer, may add below the
        suffix until she is taken out of the group, and again once she is
        put back; alice, put in, may from then on.
        """
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.add(f"ou=one,{SUFFIX}", objectClass=["organizationalUnit"]), 0)
        root = Connection("127.0.0.1:4001", self.clock)
        carol, self.connection = self.connection, root
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(DEVELOPERS, 1, "member", f"uid=carol,{PEOPLE}"), 0)
        self.connection = carol
        self.assertEqual(self.add(f"ou=two,{SUFFIX}", objectClass=["organizationalUnit"]), 50)
        self.connection = root
        self.assertEqual(self.modify(DEVELOPERS, 0, "member", f"uid=carol,{PEOPLE}", ALICE), 0)
        self.connection = carol
        self.assertEqual(self.add(f"ou=two,{SUFFIX}", objectClass=["organizationalUnit"]), 0)
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.add(f"ou=three,{SUFFIX}", objectClass=["organizationalUnit"]), 0)

    def test_entryChangeApplies(self) -> None:
        """
        A rule that relates the client to the entry read (C{dnattr}) is
        decided on the entry as it is now: bob reads alice's telephone
        number while her entry names him, and not once it no longer does,
        though the entries read before looked alike.
        """
        self.acl.rules = [parseRule(r, _SCHEMA) for r in [
            "to attrs=telephoneNumber by dnattr=seeAlso read by * none",
            "to * by * read",
        ]]
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(ALICE, 2, "telephoneNumber", "+1 555 0100"), 0)
        self.assertEqual(self.modify(ALICE, 2, "seeAlso", BOB), 0)
        self.assertEqual(self.bind(BOB, "bob-secret"), 0)
        self.assertIn("telephoneNumber", self.search(ALICE, scope=0)[0][ALICE])
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(ALICE, 1, "seeAlso"), 0)
        self.assertEqual(self.bind(BOB, "bob-secret"), 0)
        self.assertNotIn("telephoneNumber", self.search(ALICE, scope=0)[0][ALICE])

    def test_rulesReplaced(self) -> None:
        """
        Decisions made under some rules are not those of rules that replace
        them (as a reload's new plugin has): what was readable under the
        first is decided anew under the second.
        """
        self.assertIn("cn", self.search(ALICE, scope=0)[0][ALICE])
        self.acl.rules = [parseRule("to attrs=cn by * none", _SCHEMA),
                          parseRule("to * by * read", _SCHEMA)]
        self.assertNotIn("cn", self.search(ALICE, scope=0)[0][ALICE])

    def test_storedRulesKeptWhenUnchanged(self) -> None:
        """
        Stored rules read again (C{stored_rules_ttl}) and unchanged are the
        rules parsed before, so decisions made with them still serve; a
        changed value is parsed anew.
        """
        helpdesk = f'to dn.children="{PEOPLE}" attrs=mail by group="{DEVELOPERS}" write by * break'
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 0, "ldapdACI", helpdesk), 0)
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.modify(ALICE, 2, "mail", "a@example.com"), 0)
        [before] = self.acl._stored[_dn(PEOPLE)]
        self.clock.advance(5)
        self.assertEqual(self.modify(ALICE, 2, "mail", "b@example.com"), 0)
        self.assertIs(self.acl._stored[_dn(PEOPLE)][0], before)
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(PEOPLE, 2, "ldapdACI", helpdesk.replace("write", "read")), 0)
        self.assertEqual(self.bind(f"uid=carol,{PEOPLE}", "carol-secret"), 0)
        self.assertEqual(self.modify(ALICE, 2, "mail", "c@example.com"), 50)
        self.assertIsNot(self.acl._stored[_dn(PEOPLE)][0], before)

    def test_readsWaitedFor(self) -> None:
        """
        Entries a store hands over later (here on the clock's next turn, as
        from a database thread) are checked when they come, as those read
        at once: a search based on an entry anonymous may not see is
        noSuchObject and one it may see answers; a bind needs C{auth}.
        """
        backend = self.directory.databases[0].backend
        get = backend.get
        backend.get = lambda op, ndn: task.deferLater(self.clock, 0, get, op, ndn)
        self.turns = 2
        self.assertEqual(self.search(BOB, scope=0)[1], 32)
        self.assertEqual(list(self.search(ALICE, scope=0)[0]), [ALICE])
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.acl.rules = [parseRule("to attrs=userPassword by * none", _SCHEMA),
                          parseRule("to * by * read", _SCHEMA)]
        self.assertEqual(self.bind(ALICE, "alice-secret"), 49)

    def test_storedRulesReadOnce(self) -> None:
        """
        Operations that find the stored rules due to be read again while
        they are being read wait for that one read (a subtree search of the
        database) rather than each making its own, and are decided with
        what it found.
        """
        backend = self.directory.databases[0].backend
        search = backend.search
        reads = []

        def slowSearch(op: Operation, emit: Any) -> Any:
            if op.internal:
                reads.append(op)
                return task.deferLater(self.clock, 0, search, op, emit)
            return search(op, emit)

        backend.search = slowSearch
        self.turns = 2
        self.clock.advance(5)
        started = []
        for n in range(3):
            framer = Framer()
            framer.feed(pureldap.LDAPMessage(pureldap.LDAPSearchRequest(
                baseObject=ALICE, scope=0, filter=wireFilter("(objectClass=*)")),
                id=100 + n).toWire())
            message = framer.next()
            op = Operation(self.connection, message.messageId, message.request, message.controls)
            responses: list[bytes] = []
            started.append((self.directory.execute(op, lambda pdu, c=(), r=responses: r.append(pdu)),
                            responses))
        self.assertEqual(len(reads), 1)
        self.clock.advance(0)
        for done, responses in started:
            self.successResultOf(done)
            self.assertEqual(len(responses), 2)
        self.assertEqual(len(reads), 1)

    def test_rootBypasses(self) -> None:
        """
        The root DN is not subject to the rules.
        """
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(self.modify(BOB, 2, "mail", "b@example.com"), 0)
        self.assertIn(BOB, self.search()[0])


class FactoryTests(unittest.SynchronousTestCase):
    """
    L{AccessControlFactory} builds the plugin from its configuration table.
    """

    def context(self) -> ConfigContext:
        return ConfigContext(None, "plugin[0]", _SCHEMA, None)

    def test_defaults(self) -> None:
        """
        Without rules, userPassword is for binds only, the password history
        for no one, and everyone reads the rest.
        """
        acl = AccessControlFactory.fromConfig({}, self.context())
        subject = Subject(None)
        entry = _entry(ALICE, objectClass=["person"])
        password = _SCHEMA.attributeType("userPassword")
        self.assertFalse(evaluate(acl.rules, subject, entry, password, Privilege.READ))
        self.assertTrue(evaluate(acl.rules, subject, entry, password, Privilege.AUTH))
        self.assertTrue(evaluate(acl.rules, subject, entry, ENTRY, Privilege.READ))
        history = _SCHEMA.attributeType("pwdHistory")
        for who in (subject, Subject(entry.ndn)):
            for privilege in (Privilege.READ, Privilege.SEARCH, Privilege.COMPARE):
                self.assertFalse(evaluate(acl.rules, who, entry, history, privilege))

    def test_badRule(self) -> None:
        """
        A rule that does not parse stops start-up naming its index.
        """
        with self.assertRaises(ConfigError) as caught:
            AccessControlFactory.fromConfig({"rules": ["to * by * read", "to x"]}, self.context())
        self.assertIn("plugin[0].rules[1]", str(caught.exception))

    def test_badKeys(self) -> None:
        """
        Unknown keys and wrong types are configuration errors.
        """
        for table in ({"rules": "to * by * read"}, {"stored_rules": "yes"}, {"bogus": 1}):
            self.assertRaises(ConfigError, AccessControlFactory.fromConfig, table, self.context())
