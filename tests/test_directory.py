"""
Tests for L{ldapd.directory}: routing, the root DSE and subschema, bind rules,
limits, paged results, the default access policy and the plugin chain,
references, referrals and backends that compare, all in memory with a
L{task.Clock}.
"""

from __future__ import annotations

import re
from typing import Any

from ldaptor.protocols import pureber, pureldap
from twisted.internet import defer, task
from twisted.trial import unittest
from zope.interface import implementer

from ldapd._codec import (
    RESPONSE_DECODER,
    Control,
    encodeMessage,
    encodeSequence,
    integer,
    octetString,
)
from ldapd._framing import Framer
from ldapd.backends.memory import MemoryBackend
from ldapd.controls import PAGED_RESULTS
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry, Modification, SearchReference
from ldapd.interfaces import IBackendCompare, IResolvingBackend
from ldapd.limits import Limits
from ldapd.operation import Connection, Identity, Operation, Scope
from ldapd.plugins.chain import PluginChain
from ldapd.results import NoSuchObject, Referral
from ldapd.schema import Schema
from ldapd.schema.parser import parseDescription
from ldapd.testing import EXAMPLE_LDIF, decodedRequest, decodeResponse, wireFilter

SUFFIX = "dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"


class _Hanging:
    """
    A backend whose searches never end by themselves (but can be cancelled),
    to test the time limit.
    """

    def __init__(self, suffix: DN) -> None:
        self.suffix = suffix
        self.cancelled = False

    def open(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        return defer.fail(NoSuchObject("no such object"))

    def search(self, op: Operation, emit: Any) -> defer.Deferred[None]:
        def cancel(d: Any) -> None:
            self.cancelled = True

        return defer.Deferred(cancel)


class _Recorder:
    """
    A plugin that records its hooks' calls and refuses adds of C{cn=veto}.
    """

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def pre_add(self, op: Operation, entry: Any) -> None:
        self.calls.append(("pre_add", str(entry.dn)))
        if str(entry.dn).startswith("cn=veto"):
            from ldaptor.protocols.ldap import ldaperrors

            raise ldaperrors.LDAPUnwillingToPerform("vetoed")

    def post_add(self, op: Operation, resultCode: int) -> None:
        self.calls.append(("post_add", resultCode))
        op.responseControls.append(Control("1.2.3.4", False, b"seen"))

    def post_delete(self, op: Operation, resultCode: int) -> None:
        raise RuntimeError("a failing post hook")

    def filter_entry(self, op: Operation, entry: Any) -> Any:
        return None if entry.get("uid") == (b"bob",) else entry


def _attributes(entry: pureldap.LDAPSearchResultEntry) -> dict[str, list[bytes]]:
    return {name.decode(): values for name, values in entry.attributes}


class DirectoryTestsBase(unittest.TestCase):
    """
    A directory with the example organisation in a memory backend.
    """

    plugins: list[Any] = []
    limits = Limits(sizeLimit=5, timeLimit=60)

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema),
                      DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            self.plugins, schema=self.schema, limits=self.limits, reactor=self.clock,
        )
        self.successResultOf(self.directory.open())
        self.connection = Connection("test", self.clock)
        self.nextId = 1

    def execute(self, request: Any, controls: list[tuple[str, bool, bytes | None]] | None = None,
            wait: bool = True) -> Any:
        """
        Execute a request on the test connection, as it arrives from the wire.

        @return: the decoded responses (and the Deferred, if C{wait} is false).
        """
        responses: list[Any] = []
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, controls=controls, id=self.nextId).toWire())
        message = framer.next()
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        self.nextId += 1

        def reply(pdu: bytes, ctrls: Any = ()) -> None:
            responses.append(decodeResponse(encodeMessage(op.messageId, pdu, ctrls)))

        d = self.directory.execute(op, reply)
        if not wait:
            return responses, d, op
        self.successResultOf(d)
        return responses

    def result(self, request: Any, **kw: Any) -> Any:
        """
        @return: the final response of a request.
        """
        return self.execute(request, **kw)[-1].value

    def bind(self, dn: str, password: str) -> int:
        return self.result(pureldap.LDAPBindRequest(dn=dn, auth=password)).resultCode

    def search(self, base: str = SUFFIX, filterText: str = "(objectClass=*)", scope: int = 2,
               attributes: list[str] | None = None, **kw: Any) -> Any:
        return self.execute(pureldap.LDAPSearchRequest(
            baseObject=base, scope=scope, filter=wireFilter(filterText),
            attributes=attributes or [], **kw))

    def entries(self, responses: list[Any]) -> list[str]:
        return [r.value.objectName.decode() for r in responses
                if isinstance(r.value, pureldap.LDAPSearchResultEntry)]


class RoutingTests(DirectoryTestsBase):
    """
    Requests go to the database with the longest matching suffix; the root
    DSE and cn=Subschema are answered by the directory itself.
    """

    def test_rootDSE(self) -> None:
        """
        A base search of the empty DN returns the root DSE: objectClass for
        C{*}, and the operational attributes slapd publishes for C{+}.
        """
        user = self.search("", scope=0)[0].value
        self.assertEqual(_attributes(user), {"objectClass": [b"top"]})
        attrs = _attributes(self.search("", scope=0, attributes=["+"])[0].value)
        self.assertEqual(attrs["namingContexts"], [b"dc=example,dc=com"])
        self.assertEqual(attrs["supportedLDAPVersion"], [b"3"])
        self.assertIn(PAGED_RESULTS.encode(), attrs["supportedControl"])
        self.assertIn(b"1.3.6.1.4.1.4203.1.11.3", attrs["supportedExtension"])
        self.assertEqual(attrs["subschemaSubentry"], [b"cn=Subschema"])
        self.assertIn("vendorVersion", attrs)

    def test_compareRootDSE(self) -> None:
        """
        Compare reads the root DSE a search returns, with the attributes of
        the root DSE providers.
        """
        async def provided() -> list[tuple[str, list[bytes]]]:
            return [("monitorContext", [b"cn=Monitor"])]

        self.directory.rootDSEProviders.append(provided)

        def compare(attr: str, value: str) -> int:
            return self.result(pureldap.LDAPCompareRequest(
                entry="", ava=pureldap.LDAPAttributeValueAssertion(
                    pureber.BEROctetString(attr), pureber.BEROctetString(value)))).resultCode

        self.assertEqual(compare("monitorContext", "cn=Monitor"), 6)
        self.assertEqual(compare("objectClass", "top"), 6)
        self.assertEqual(compare("objectClass", "subschema"), 5)

    def test_subschema(self) -> None:
        """
        cn=Subschema publishes the schema's attribute types and object classes.
        """
        attrs = _attributes(self.search("cn=subschema", scope=0,
                                       attributes=["attributeTypes", "objectClasses"])[0].value)
        self.assertTrue(any(b"NAME ( 'cn' 'commonName' )" in v for v in attrs["attributeTypes"]))
        self.assertTrue(any(b"'inetOrgPerson'" in v for v in attrs["objectClasses"]))

    def test_outsideNamingContexts(self) -> None:
        """
        A search outside every naming context is noSuchObject without matched DN.
        """
        done = self.search("dc=other,dc=org")[-1].value
        self.assertEqual((done.resultCode, done.matchedDN), (32, b""))

    def test_matchedDN(self) -> None:
        """
        A search below a missing entry gives noSuchObject with the deepest
        existing superior as matched DN.
        """
        done = self.search("uid=zed,ou=people,dc=example,dc=com")[-1].value
        self.assertEqual((done.resultCode, done.matchedDN), (32, b"ou=people,dc=example,dc=com"))

    def test_invalidDN(self) -> None:
        """
        A malformed base DN is invalidDNSyntax.
        """
        self.assertEqual(self.search("cn=")[-1].value.resultCode, 34)


class BindTests(DirectoryTestsBase):
    """
    Simple binds: root DN, entries' passwords, and RFC 4513's rules.
    """

    def test_root(self) -> None:
        """
        The root DN binds with its password and needs no entry.
        """
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertTrue(self.connection.identity.isRoot)

    def test_user(self) -> None:
        """
        An entry binds with its userPassword; a wrong password is
        invalidCredentials and leaves the connection anonymous.
        """
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(str(self.connection.identity.dn), ALICE)
        self.assertEqual(self.bind(ALICE, "wrong"), 49)
        self.assertIsNone(self.connection.identity.dn)

    def test_missingEntry(self) -> None:
        """
        Binding as a missing entry is invalidCredentials, not noSuchObject.
        """
        self.assertEqual(self.bind("uid=zed,ou=people,dc=example,dc=com", "x"), 49)

    def test_unauthenticated(self) -> None:
        """
        A DN with an empty password is an unauthenticated bind, refused with
        unwillingToPerform (RFC 4513 §5.1.2).
        """
        response = self.result(pureldap.LDAPBindRequest(dn=ALICE, auth=""))
        self.assertEqual(response.resultCode, 53)
        self.assertIsNone(self.connection.identity.dn)

    def test_anonymous(self) -> None:
        """
        An empty DN and password is an anonymous bind.
        """
        self.assertEqual(self.bind("", ""), 0)

    def test_passwordWithoutName(self) -> None:
        """
        A password with an empty DN is invalidCredentials, as slapd answers.
        """
        self.assertEqual(self.bind("", "secret"), 49)
        self.assertIsNone(self.connection.identity.dn)

    def test_sasl(self) -> None:
        """
        SASL mechanisms are not supported here: authMethodNotSupported.
        """
        request = pureldap.LDAPBindRequest(dn="", auth=(b"DIGEST-MD5", None), sasl=True)
        self.assertEqual(self.result(request).resultCode, 7)

    def test_version2(self) -> None:
        """
        LDAPv2 binds are refused with protocolError.
        """
        self.assertEqual(self.result(pureldap.LDAPBindRequest(version=2)).resultCode, 2)


class LimitTests(DirectoryTestsBase):
    """
    Size and time limits, from the client and from configuration.
    """

    def test_sizeLimitFromConfig(self) -> None:
        """
        Without a client limit the configured one applies: sizeLimitExceeded
        after exactly that many entries.
        """
        responses = self.search()
        self.assertEqual(len(self.entries(responses)), 5)
        self.assertEqual(responses[-1].value.resultCode, 4)

    def test_sizeLimitFromClient(self) -> None:
        """
        A client's smaller limit applies.
        """
        responses = self.search(sizeLimit=2)
        self.assertEqual((len(self.entries(responses)), responses[-1].value.resultCode), (2, 4))

    def test_rootUnlimited(self) -> None:
        """
        The root DN is not bound by the configured limit.
        """
        self.bind(ROOT, "secret")
        responses = self.search()
        self.assertEqual((len(self.entries(responses)), responses[-1].value.resultCode), (20, 0))

    def test_exactlyTheLimit(self) -> None:
        """
        A search returning exactly the limit's number of entries succeeds.
        """
        responses = self.search(filterText="(objectClass=organizationalUnit)", sizeLimit=4)
        self.assertEqual((len(self.entries(responses)), responses[-1].value.resultCode), (4, 0))

    def test_timeLimit(self) -> None:
        """
        A search still running at its deadline is cancelled and answered
        timeLimitExceeded.
        """
        hanging = _Hanging(self.schema.normalizeDN(DN.parse("ou=slow,dc=example,dc=com")))
        self.directory.databases.insert(0, Database(DN.parse("ou=slow,dc=example,dc=com"), hanging))
        self.directory.databases[0].normalizedSuffix = hanging.suffix
        responses, d, _ = self.execute(pureldap.LDAPSearchRequest(
            baseObject="ou=slow,dc=example,dc=com", timeLimit=10), wait=False)
        self.clock.advance(9)
        self.assertNoResult(d)
        self.clock.advance(1)
        self.successResultOf(d)
        self.assertTrue(hanging.cancelled)
        self.assertEqual(responses[-1].value.resultCode, 3)


def _paged(size: int, cookie: bytes = b"") -> list[tuple[str, bool, bytes]]:
    return [(PAGED_RESULTS, True, encodeSequence([integer(size), octetString(cookie)]))]


def _cookie(response: Any) -> bytes:
    (oid, _, value), = response.controls
    seq = pureber.berDecodeObject(pureber.BERDecoderContext(), value)[0]
    return seq[1].value


class PagedResultsTests(DirectoryTestsBase):
    """
    The simple paged results control (RFC 2696).
    """

    def page(self, size: int, cookie: bytes = b"") -> tuple[list[str], bytes, int]:
        responses = self.execute(pureldap.LDAPSearchRequest(
            baseObject=SUFFIX, filter=wireFilter("(objectClass=*)")), controls=_paged(size, cookie))
        return self.entries(responses), _cookie(responses[-1]), responses[-1].value.resultCode

    def test_allPages(self) -> None:
        """
        Pages of the asked size follow each other until an empty cookie, and
        together hold every entry once, in order; pages are not capped by the
        total size limit.
        """
        seen: list[str] = []
        names, cookie, code = self.page(3)
        pages = 1
        seen += names
        while cookie:
            self.assertEqual((len(names), code), (3, 0))
            names, cookie, code = self.page(3, cookie)
            seen += names
            pages += 1
        self.assertEqual((len(seen), len(set(seen)), pages, code), (20, 20, 7, 0))
        self.assertEqual(seen[0], SUFFIX)
        self.assertEqual(self.connection.pagedSearches, {})

    def test_pageSizeCappedByLimit(self) -> None:
        """
        A page larger than the configured size limit is cut to it.
        """
        names, cookie, _ = self.page(100)
        self.assertEqual(len(names), 5)
        self.assertTrue(cookie)

    def test_abandonWithSizeZero(self) -> None:
        """
        A page size of 0 with a cookie ends the paged search.
        """
        _, cookie, _ = self.page(2)
        names, newCookie, code = self.page(0, cookie)
        self.assertEqual((names, newCookie, code), ([], b"", 0))
        self.assertEqual(self.connection.pagedSearches, {})

    def test_invalidCookie(self) -> None:
        """
        An unknown cookie is a protocolError.
        """
        responses = self.execute(pureldap.LDAPSearchRequest(baseObject=SUFFIX),
                             controls=_paged(2, b"bogus"))
        self.assertEqual(responses[-1].value.resultCode, 2)

    def test_rebind(self) -> None:
        """
        After a rebind, the next page is sent as the new identity, as slapd
        does: a search the root DN began and an anonymous client continues
        shows no userPassword, and sends nothing that matched only through
        it.
        """
        def page(filterText: str, cookie: bytes = b"") -> list[Any]:
            return self.execute(pureldap.LDAPSearchRequest(
                baseObject=PEOPLE, filter=wireFilter(filterText), attributes=["userPassword"]),
                controls=_paged(1, cookie))

        for filterText, shown in (("(objectClass=person)", True), ("(userPassword=*)", False)):
            self.bind(ROOT, "secret")
            first = page(filterText)
            self.assertIn("userPassword", _attributes(first[0].value))
            self.bind("", "")
            second = page(filterText, _cookie(first[-1]))
            self.assertEqual(bool(self.entries(second)), shown, filterText)
            for response in second[:-1]:
                self.assertNotIn("userPassword", _attributes(response.value))

    def test_changedRequest(self) -> None:
        """
        A cookie used with a different search is a protocolError.
        """
        _, cookie, _ = self.page(2)
        responses = self.execute(pureldap.LDAPSearchRequest(
            baseObject="ou=people,dc=example,dc=com"), controls=_paged(2, cookie))
        self.assertEqual(responses[-1].value.resultCode, 2)


class AccessTests(DirectoryTestsBase):
    """
    Without an access-control plugin: the root DN writes, everyone reads,
    and userPassword belongs to its owner.
    """

    def add(self, dn: str = "ou=new,dc=example,dc=com") -> int:
        return self.result(pureldap.LDAPAddRequest(entry=dn, attributes=[
            (pureldap.LDAPAttributeDescription("objectClass"),
             pureber.BERSet([pureldap.LDAPAttributeValue("organizationalUnit")])),
            (pureldap.LDAPAttributeDescription("ou"),
             pureber.BERSet([pureldap.LDAPAttributeValue("new")])),
        ])).resultCode

    def test_anonymousWrite(self) -> None:
        """
        An anonymous add is strongAuthRequired, a user's insufficientAccessRights;
        the root DN's succeeds and the entry gets its operational attributes.
        """
        self.assertEqual(self.add(), 8)
        self.bind(ALICE, "alice-secret")
        self.assertEqual(self.add(), 50)
        self.bind(ROOT, "secret")
        self.assertEqual(self.add(), 0)
        attrs = _attributes(self.search("ou=new,dc=example,dc=com", scope=0,
                                        attributes=["+"])[0].value)
        self.assertEqual(attrs["creatorsName"], [ROOT.encode()])
        self.assertEqual(attrs["entryDN"], [b"ou=new,dc=example,dc=com"])
        for name in ("createTimestamp", "modifyTimestamp", "entryUUID", "modifiersName"):
            self.assertIn(name, attrs)

    def test_passwordHidden(self) -> None:
        """
        userPassword is withheld from others, shown to its owner, and cannot
        be tested in a filter by others.
        """
        attrs = _attributes(self.search(ALICE, scope=0)[0].value)
        self.assertNotIn("userPassword", attrs)
        self.assertEqual(self.entries(self.search(filterText="(userPassword=*)")), [])
        self.bind(ALICE, "alice-secret")
        attrs = _attributes(self.search(ALICE, scope=0)[0].value)
        self.assertIn("userPassword", attrs)

    def test_historyHidden(self) -> None:
        """
        pwdHistory (old passwords) is kept from others as userPassword is:
        not returned, not tested in a filter, not compared; its owner
        sees it.
        """
        history = b"20231114221320Z#1.3.6.1.4.1.1466.115.121.1.40#6#secret"
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.modify(
            self.directory.internalOperation(), self.schema.normalizeDN(DN.parse(ALICE)),
            [Modification("add", "pwdHistory", (history,))])))
        compare = pureldap.LDAPCompareRequest(entry=ALICE, ava=pureldap.LDAPAttributeValueAssertion(
            pureber.BEROctetString("pwdHistory"), pureber.BEROctetString(history)))
        for who in (None, ("uid=bob,ou=people,dc=example,dc=com", "bob-secret")):
            if who is not None:
                self.bind(*who)
            attrs = _attributes(self.search(ALICE, scope=0, attributes=["pwdHistory"])[0].value)
            self.assertNotIn("pwdHistory", attrs)
            self.assertEqual(self.entries(self.search(filterText="(pwdHistory=*)")), [])
            self.assertEqual(self.result(compare).resultCode, 50)
        self.bind(ALICE, "alice-secret")
        attrs = _attributes(self.search(ALICE, scope=0, attributes=["pwdHistory"])[0].value)
        self.assertEqual(attrs["pwdHistory"], [history])

    def test_selfPasswordChange(self) -> None:
        """
        A user may replace their own password, and nothing else.
        """
        self.bind(ALICE, "alice-secret")

        def modify(attr: str, value: str) -> int:
            return self.result(pureldap.LDAPModifyRequest(object=ALICE, modification=[
                pureber.BERSequence([pureber.BEREnumerated(2), pureber.BERSequence([
                    pureldap.LDAPAttributeDescription(attr),
                    pureber.BERSet([pureldap.LDAPAttributeValue(value)])])])])).resultCode

        self.assertEqual(modify("userPassword", "new-secret"), 0)
        self.assertEqual(modify("mail", "x@example.com"), 50)
        self.assertEqual(self.bind(ALICE, "new-secret"), 0)

    def test_compare(self) -> None:
        """
        Compare answers compareTrue or compareFalse, noSuchAttribute for a
        missing attribute, and refuses to compare another's password.
        """
        def compare(attr: str, value: str) -> int:
            return self.result(pureldap.LDAPCompareRequest(
                entry=ALICE, ava=pureldap.LDAPAttributeValueAssertion(
                    pureber.BEROctetString(attr), pureber.BEROctetString(value)))).resultCode

        self.assertEqual(compare("cn", "ALICE  anderson"), 6)
        self.assertEqual(compare("cn", "Bob"), 5)
        self.assertEqual(compare("roomNumber", "1"), 16)
        self.assertEqual(compare("userPassword", "x"), 50)


class PluginChainTests(DirectoryTestsBase):
    """
    Plugins' hooks run around operations in order, and can veto and filter.
    """

    def setUp(self) -> None:
        self.recorder = _Recorder()
        self.plugins = [self.recorder]
        super().setUp()
        del self.recorder.calls[:]

    def test_defaultAccessFirst(self) -> None:
        """
        With no plugin controlling access, the default policy runs first.
        """
        self.assertEqual([type(p).__name__ for p in self.directory.plugins.plugins],
                         ["DefaultAccess", "_Recorder"])

    def test_preVetoAndPost(self) -> None:
        """
        A pre hook's error is the operation's result, and post hooks see it.
        """
        self.bind(ROOT, "secret")
        request = pureldap.LDAPAddRequest(entry="cn=veto,dc=example,dc=com", attributes=[
            (pureldap.LDAPAttributeDescription("objectClass"),
             pureber.BERSet([pureldap.LDAPAttributeValue("device")])),
            (pureldap.LDAPAttributeDescription("cn"),
             pureber.BERSet([pureldap.LDAPAttributeValue("veto")]))])
        self.assertEqual(self.result(request).resultCode, 53)
        self.assertEqual(self.recorder.calls,
                         [("pre_add", "cn=veto,dc=example,dc=com"), ("post_add", 53)])

    def test_postAddsControls(self) -> None:
        """
        Post hooks run before the response is sent and may add response
        controls to it.
        """
        self.bind(ROOT, "secret")
        response = self.execute(pureldap.LDAPAddRequest(entry="cn=veto,dc=example,dc=com",
                                                        attributes=[]))[-1]
        self.assertEqual(response.controls, [(b"1.2.3.4", None, b"seen")])

    def test_postFailureLogged(self) -> None:
        """
        A failing post hook is logged and leaves the result as it was.
        """
        self.bind(ROOT, "secret")
        code = self.result(pureldap.LDAPDelRequest(entry="cn=users,ou=posix,ou=groups,dc=example,dc=com"))
        self.assertEqual(code.resultCode, 0)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_filterEntry(self) -> None:
        """
        filter_entry hooks withhold entries from search results.
        """
        self.assertEqual(self.entries(self.search(filterText="(uid=bob)")), [])
        self.assertEqual(len(self.entries(self.search(filterText="(uid=alice)"))), 1)


class _PreHooks:
    """
    A plugin whose C{pre_modify} and C{pre_delete} hooks record their
    subject and answer as configured.
    """

    def __init__(self, name: str, answer: Any, seen: list[tuple[str, Any]]) -> None:
        self.name = name
        self.answer = answer
        self.seen = seen

    def pre_modify(self, op: Operation, subject: Any, ndn: Any) -> Any:
        self.seen.append((self.name, subject))
        return self.answer() if callable(self.answer) else self.answer

    def pre_delete(self, op: Operation, subject: Any) -> Any:
        raise RuntimeError(self.name)


class PluginChainRunTests(unittest.TestCase):
    """
    L{PluginChain.pre} runs hooks that answer at once without waiting, and
    waits in turn from the first hook that answers later.
    """

    def test_synchronous(self) -> None:
        """
        With hooks that answer at once, the result is already there: each
        hook sees its predecessor's replacement, and C{None} keeps the subject.
        """
        seen: list[tuple[str, Any]] = []
        chain = PluginChain([_PreHooks("a", "A", seen), _PreHooks("b", None, seen),
                             _PreHooks("c", "C", seen)])
        self.assertEqual(self.successResultOf(chain.pre("modify", None, "s", "dn")), "C")
        self.assertEqual(seen, [("a", "s"), ("b", "A"), ("c", "A")])

    def test_noHooks(self) -> None:
        """
        With no hook for the operation, the subject comes back at once.
        """
        self.assertEqual(self.successResultOf(PluginChain().pre("search", None, "s")), "s")
        self.assertIsNone(self.successResultOf(PluginChain().post("search", None, 0)))

    def test_waits(self) -> None:
        """
        A hook that answers with a Deferred holds back the hooks after it
        until it fires; its replacement is what they see.
        """
        seen: list[tuple[str, Any]] = []
        later: defer.Deferred[str] = defer.Deferred()
        chain = PluginChain([_PreHooks("a", "A", seen), _PreHooks("b", lambda: later, seen),
                             _PreHooks("c", None, seen)])
        d = chain.pre("modify", None, "s", "dn")
        self.assertNoResult(d)
        self.assertEqual(seen, [("a", "s"), ("b", "A")])
        later.callback("B")
        self.assertEqual(self.successResultOf(d), "B")
        self.assertEqual(seen, [("a", "s"), ("b", "A"), ("c", "B")])

    def test_coroutine(self) -> None:
        """
        A hook that is a coroutine function is awaited like a Deferred.
        """
        seen: list[tuple[str, Any]] = []

        async def replace() -> str:
            return "B"

        chain = PluginChain([_PreHooks("b", replace, seen), _PreHooks("c", None, seen)])
        self.assertEqual(self.successResultOf(chain.pre("modify", None, "s", "dn")), "B")
        self.assertEqual(seen, [("b", "s"), ("c", "B")])

    def test_raises(self) -> None:
        """
        A hook that raises fails the Deferred with its exception, and the
        hooks after it do not run.
        """
        chain = PluginChain([_PreHooks("a", None, []), _PreHooks("b", None, [])])
        failure = self.failureResultOf(chain.pre("delete", None, "dn"), RuntimeError)
        self.assertEqual(str(failure.value), "a")


class InternalOperationTests(unittest.TestCase):
    """
    Operations the server issues itself.
    """

    def test_identity(self) -> None:
        """
        An internal operation is root and marked internal.
        """
        directory = Directory([], schema=Schema.standard(), reactor=task.Clock())
        op = directory.internalOperation()
        self.assertTrue(op.internal)
        self.assertEqual(op.identity, Identity(isRoot=True))


PEOPLE = "ou=people,dc=example,dc=com"
CSN = re.compile(rb"\d{14}\.\d{6}Z#[0-9a-f]{6}#000#000000")


def _add(dn: str, **attributes: Any) -> pureldap.LDAPAddRequest:
    return pureldap.LDAPAddRequest(
        entry=dn,
        attributes=[
            (pureldap.LDAPAttributeDescription(name),
             pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in
                             (values if isinstance(values, list) else [values])]))
            for name, values in attributes.items()
        ],
    )


def _modify(dn: str, operation: int, name: str, *values: str) -> pureldap.LDAPModifyRequest:
    return pureldap.LDAPModifyRequest(
        object=dn,
        modification=[
            pureber.BERSequence([
                pureber.BEREnumerated(operation),
                pureber.BERSequence([
                    pureldap.LDAPAttributeDescription(name),
                    pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in values]),
                ]),
            ])
        ],
    )


class OperationalAttributeTests(DirectoryTestsBase):
    """
    The server maintains structuralObjectClass and entryCSN, computes the
    subordinate counts, and refuses user writes to all of them.
    """

    def setUp(self) -> None:
        super().setUp()
        self.assertEqual(self.bind(ROOT, "secret"), 0)

    def read(self, dn: str, attributes: list[str]) -> dict[str, list[bytes]]:
        return _attributes(self.search(dn, scope=0, attributes=attributes)[0].value)

    def test_structuralObjectClass(self) -> None:
        """
        An added entry gets its most specific structural class as
        structuralObjectClass, returned for C{+} only.
        """
        self.assertEqual(self.read(ALICE, ["+"])["structuralObjectClass"], [b"inetOrgPerson"])
        self.assertNotIn("structuralObjectClass", self.read(ALICE, ["*"]))
        result = self.result(_add(f"cn=box,{PEOPLE}", objectClass=["top", "device"], cn="box"))
        self.assertEqual(result.resultCode, 0)
        self.assertEqual(self.read(f"cn=box,{PEOPLE}", ["structuralObjectClass"]),
                         {"structuralObjectClass": [b"device"]})

    def test_entryCSN(self) -> None:
        """
        Every write stamps a new, greater entryCSN in OpenLDAP's form.
        """
        before = self.read(ALICE, ["entryCSN"])["entryCSN"][0]
        self.assertEqual(self.result(_modify(ALICE, 2, "roomNumber", "1")).resultCode, 0)
        after = self.read(ALICE, ["entryCSN"])["entryCSN"][0]
        self.assertRegex(after, CSN)
        self.assertGreater(after, before)

    def test_internalAddKeepsStamps(self) -> None:
        """
        The server's own adds (an LDIF import) keep the operational values
        the entry has, as slapadd does, and get the others.
        """
        csn = b"20200101000000.000000Z#000000#000#000000"
        entry = Entry(DN.parse(f"cn=imported,{PEOPLE}"), {
            "objectClass": [b"device"], "cn": [b"imported"],
            "createTimestamp": [b"20200101000000Z"], "entryCSN": [csn],
        }, self.schema)
        self.successResultOf(self.directory.add(self.directory.internalOperation(), entry))
        attrs = self.read(f"cn=imported,{PEOPLE}", ["+"])
        self.assertEqual(attrs["createTimestamp"], [b"20200101000000Z"])
        self.assertEqual(attrs["entryCSN"], [csn])
        self.assertEqual(attrs["structuralObjectClass"], [b"device"])
        self.assertEqual(len(attrs["entryUUID"]), 1)

    def test_userWritesRefused(self) -> None:
        """
        Users may not write structuralObjectClass, entryCSN, hasSubordinates
        or numSubordinates: constraintViolation (19), as slapd.
        """
        for name, value in [("structuralObjectClass", "person"), ("hasSubordinates", "TRUE"),
                            ("entryCSN", "20200101000000.000000Z#000000#000#000000"),
                            ("numSubordinates", "1")]:
            self.assertEqual(self.result(_modify(ALICE, 2, name, value)).resultCode, 19, name)
            add = _add(f"cn=x,{PEOPLE}", objectClass="device", cn="x", **{name: value})
            self.assertEqual(self.result(add).resultCode, 19, name)

    def test_subordinates(self) -> None:
        """
        hasSubordinates and numSubordinates are computed from the entry's
        children when asked for by name or with C{+}, never for C{*}.
        """
        self.assertEqual(self.read(PEOPLE, ["hasSubordinates", "numSubordinates"]),
                         {"hasSubordinates": [b"TRUE"], "numSubordinates": [b"8"]})
        operational = self.read(ALICE, ["+"])
        self.assertEqual(operational["hasSubordinates"], [b"FALSE"])
        self.assertEqual(operational["numSubordinates"], [b"0"])
        self.assertNotIn("hasSubordinates", self.read(PEOPLE, ["*"]))

    def test_subordinatesWhileSearching(self) -> None:
        """
        Subordinate counts come with every entry of a subtree search.
        """
        responses = self.search(attributes=["hasSubordinates"])
        counts = {r.value.objectName.decode(): _attributes(r.value)["hasSubordinates"][0]
                  for r in responses if isinstance(r.value, pureldap.LDAPSearchResultEntry)}
        self.assertEqual(counts["dc=example,dc=com"], b"TRUE")
        self.assertEqual(counts[ALICE], b"FALSE")
        self.assertEqual(len(counts), 20)
        self.assertEqual(responses[-1].value.resultCode, 0)

    def test_subordinatesPaged(self) -> None:
        """
        Paged searches send the subordinate counts too.
        """
        responses = self.execute(
            pureldap.LDAPSearchRequest(baseObject=PEOPLE, scope=1, filter=wireFilter("(uid=*)"),
                                       attributes=["numSubordinates"]),
            controls=_paged(3),
        )
        entries = [r.value for r in responses if isinstance(r.value, pureldap.LDAPSearchResultEntry)]
        self.assertEqual(len(entries), 3)
        self.assertEqual([_attributes(e) for e in entries], [{"numSubordinates": [b"0"]}] * 3)

    def test_entryDNFilter(self) -> None:
        """
        A filter on entryDN matches the entry of that name, in any spelling.
        """
        responses = self.search(filterText="(entryDN=UID=Alice, OU=People, DC=Example, DC=Com)")
        self.assertEqual(self.entries(responses), [ALICE])

    def test_compareEntryDN(self) -> None:
        """
        Compare works on the computed entryDN.
        """
        ava = pureldap.LDAPAttributeValueAssertion(
            pureber.BEROctetString("entryDN"), pureber.BEROctetString(ALICE.upper()))
        self.assertEqual(self.result(pureldap.LDAPCompareRequest(entry=ALICE, ava=ava)).resultCode, 6)

    def test_structuralChange(self) -> None:
        """
        A Modify that changes the entry's structural class is
        objectClassModsProhibited (69), as slapd.
        """
        result = self.result(_modify(ALICE, 1, "objectClass", "inetOrgPerson"))
        self.assertEqual(result.resultCode, 69)
        self.assertIn(b"from 'inetOrgPerson' to 'organizationalPerson'", result.errorMessage)

    def test_noEqualityRule(self) -> None:
        """
        Adding a value to an attribute without an equality rule that has
        values already is inappropriateMatching (18), as slapd.
        """
        self.assertEqual(self.result(_modify(ALICE, 0, "jpegPhoto", "\xff\xd8")).resultCode, 0)
        self.assertEqual(self.result(_modify(ALICE, 0, "jpegPhoto", "\xff\xd9")).resultCode, 18)

    def test_newSuperiorMissing(self) -> None:
        """
        A move under a superior that does not exist is noSuchObject with no
        matched DN, as slapd.
        """
        result = self.result(pureldap.LDAPModifyDNRequest(
            entry=ALICE, newrdn="uid=alice", deleteoldrdn=1,
            newSuperior="ou=nowhere,dc=example,dc=com"))
        self.assertEqual((result.resultCode, result.matchedDN), (32, b""))


class SubschemaTests(DirectoryTestsBase):
    """
    cn=Subschema publishes the whole schema in RFC 4512 form.
    """

    def subschema(self, attributes: list[str]) -> dict[str, list[bytes]]:
        return _attributes(self.search("cn=Subschema", scope=0, attributes=attributes)[0].value)

    def test_published(self) -> None:
        """
        The subentry has every schema attribute, its structural class and
        timestamps, like slapd's.
        """
        attrs = self.subschema(["*", "+"])
        for name in ("ldapSyntaxes", "matchingRules", "matchingRuleUse", "attributeTypes",
                     "objectClasses", "createTimestamp", "modifyTimestamp"):
            self.assertIn(name, attrs)
        self.assertEqual(attrs["structuralObjectClass"], [b"subentry"])
        self.assertEqual(attrs["createTimestamp"], attrs["modifyTimestamp"])

    def test_references(self) -> None:
        """
        Every syntax and matching rule an attribute type uses is described,
        and matchingRuleUse names only defined types.
        """
        attrs = self.subschema(["+"])
        syntaxes = {parseDescription(v.decode())["OID"] for v in attrs["ldapSyntaxes"]}
        rules = {parseDescription(v.decode())["NAME"][0].lower() for v in attrs["matchingRules"]}
        for value in attrs["attributeTypes"]:
            d = parseDescription(value.decode())
            if "SYNTAX" in d:
                self.assertIn(str(d["SYNTAX"]).split("{")[0], syntaxes)
            for keyword in ("EQUALITY", "ORDERING", "SUBSTR"):
                if keyword in d:
                    self.assertIn(str(d[keyword]).lower(), rules)
        for value in attrs["matchingRuleUse"]:
            for name in parseDescription(value.decode())["APPLIES"]:
                self.assertIsNotNone(self.schema.attributeType(name), name)

    def test_addSubschema(self) -> None:
        """
        Adding cn=Subschema is entryAlreadyExists (68), as slapd.
        """
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        result = self.result(_add("cn=Subschema", objectClass="device", cn="Subschema"))
        self.assertEqual(result.resultCode, 68)


@implementer(IBackendCompare, IResolvingBackend)
class _Referring:
    """
    A backend that serves part of its tree elsewhere, as the proxy does for
    an upstream's referral objects (so it resolves names itself): its searches emit what C{results} gives
    for the search's scope (entries and L{SearchReference}s) or fail with
    C{failure}; it provides L{IBackendCompare}, answering C{compared} or
    failing with C{failure}, and records the compares it was asked.
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.suffix = schema.normalizeDN(DN.parse(SUFFIX))
        self.results: dict[Scope, list[Entry | SearchReference]] = {}
        self.failure: Exception | None = None
        self.compared = True
        self.compares: list[tuple[str, str, tuple[str, ...], bytes]] = []

    def open(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def entry(self, dn: str) -> Entry:
        """
        @return: an organizationalUnit named C{dn}.
        """
        name = DN.parse(dn)
        return Entry(name, [("objectClass", [b"organizationalUnit"]),
                            ("ou", [name.rdn[0].value.encode()])], self.schema)

    def search(self, op: Operation, emit: Any) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _search(self, op: Operation, emit: Any) -> None:
        assert op.search is not None
        if self.failure is not None:
            raise self.failure
        for result in self.results.get(op.search.scope, []):
            waiting = emit(result)
            if waiting is not None:
                await waiting

    def compare(self, op: Operation, ndn: DN, at: Any, options: tuple[str, ...],
                value: bytes) -> defer.Deferred[bool]:
        self.compares.append((str(ndn), at.name, options, value))
        if self.failure is not None:
            return defer.fail(self.failure)
        return defer.succeed(self.compared)


class ReferralTests(unittest.TestCase):
    """
    Continuation references a backend emits are sent as
    SearchResultReferences, outside the size limit and page size; an
    L{ldapd.results.Referral} is answered referral (10) with its URIs; a
    backend providing L{IBackendCompare} answers Compare itself.
    """

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.schema = Schema.standard()
        self.backend = _Referring(self.schema)
        self.directory = Directory([Database(DN.parse(SUFFIX), self.backend)],
                                   schema=self.schema, reactor=self.clock)
        self.connection = Connection("test", self.clock)
        self.nextId = 1

    def execute(self, request: Any, controls: list[tuple[str, bool, bytes | None]] | None = None
                ) -> list[Any]:
        """
        Execute a request and decode its responses as a client that keeps
        referral URIs does.
        """
        message = decodedRequest(request, controls, self.nextId)
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        self.nextId += 1
        responses: list[Any] = []

        def reply(pdu: bytes, ctrls: Any = ()) -> None:
            message, _ = pureber.berDecodeObject(
                RESPONSE_DECODER, encodeMessage(op.messageId, pdu, ctrls))
            responses.append(message)

        self.successResultOf(self.directory.execute(op, reply))
        return responses

    def search(self, sizeLimit: int = 0, **kw: Any) -> list[Any]:
        """
        @return: the responses to a subtree search of the suffix.
        """
        return self.execute(pureldap.LDAPSearchRequest(
            baseObject=SUFFIX, scope=2, filter=wireFilter("(objectClass=*)"),
            sizeLimit=sizeLimit), **kw)

    def summary(self, responses: list[Any]) -> list[Any]:
        """
        @return: the entries' DNs, the references' URIs (as tuples) and the
            final result code, in order.
        """
        out: list[Any] = []
        for r in responses:
            if isinstance(r.value, pureldap.LDAPSearchResultEntry):
                out.append(r.value.objectName.decode())
            elif isinstance(r.value, pureldap.LDAPSearchResultReference):
                out.append(tuple(u.value.decode() for u in r.value.uris))
            else:
                out.append(r.value.resultCode)
        return out

    def test_referencesOutsideSizeLimit(self) -> None:
        """
        References are sent where the backend emits them, and do not count
        toward the size limit: with a limit of one entry, references before
        and after it pass, and the second entry exceeds the limit.
        """
        ref = SearchReference(("ldap://a.example/ou=x,dc=example,dc=com??sub",
                               "ldap://b.example/ou=x,dc=example,dc=com??sub"))
        self.backend.results[Scope.SUB] = [ref, self.backend.entry(SUFFIX), ref]
        self.assertEqual(self.summary(self.search(sizeLimit=1)), [ref.uris, SUFFIX, ref.uris, 0])
        self.backend.results[Scope.SUB].append(self.backend.entry("ou=y," + SUFFIX))
        self.assertEqual(self.summary(self.search(sizeLimit=1)), [ref.uris, SUFFIX, ref.uris, 4])

    def test_pagedReferences(self) -> None:
        """
        A paged search passes references on in the page being filled; they
        do not count toward its size.
        """
        ref = SearchReference(("ldap://a.example/ou=x,dc=example,dc=com??sub",))
        self.backend.results[Scope.SUB] = [
            self.backend.entry(SUFFIX), ref, self.backend.entry("ou=y," + SUFFIX)]
        first = self.search(controls=_paged(1))
        self.assertEqual(self.summary(first), [SUFFIX, ref.uris, 0])
        second = self.search(controls=_paged(1, _cookie(first[-1])))
        self.assertEqual(self.summary(second), ["ou=y," + SUFFIX, 0])
        self.assertEqual(_cookie(second[-1]), b"")

    def test_referencesAreNotSubordinates(self) -> None:
        """
        hasSubordinates counts the entries below an entry, not references.
        """
        self.backend.results[Scope.BASE] = [self.backend.entry(SUFFIX)]
        self.backend.results[Scope.ONE] = [SearchReference(("ldap://a.example/ou=x,dc=example,dc=com",))]
        responses = self.execute(pureldap.LDAPSearchRequest(
            baseObject=SUFFIX, scope=0, filter=wireFilter("(objectClass=*)"),
            attributes=["hasSubordinates"]))
        self.assertEqual(_attributes(responses[0].value), {"hasSubordinates": [b"FALSE"]})

    def test_referralResult(self) -> None:
        """
        A L{Referral} is answered referral (10) with its matched DN and URIs.
        """
        uris = ("ldap://a.example/ou=x,dc=example,dc=com??sub", "ldap://b.example/")
        self.backend.failure = Referral(uris, "elsewhere", DN.parse("ou=x," + SUFFIX))
        done = self.search()[-1].value
        self.assertEqual(
            (done.resultCode, done.matchedDN, done.errorMessage, done.referral),
            (10, b"ou=x," + SUFFIX.encode(), b"elsewhere", [u.encode() for u in uris]))

    def compare(self, attribute: str, value: str) -> Any:
        """
        @return: the response to a Compare of C{ou=x} in the suffix.
        """
        return self.execute(pureldap.LDAPCompareRequest(
            entry="ou=X," + SUFFIX, ava=pureldap.LDAPAttributeValueAssertion(
                pureber.BEROctetString(attribute), pureber.BEROctetString(value))))[-1].value

    def test_backendCompare(self) -> None:
        """
        A backend providing L{IBackendCompare} is asked, with the normalised
        DN, the attribute type and options; its answer is compareTrue or
        compareFalse, its referral a referral.
        """
        self.assertEqual(self.compare("OU;lang-EN", "x").resultCode, 6)
        self.backend.compared = False
        self.assertEqual(self.compare("ou", "y").resultCode, 5)
        self.backend.failure = Referral(("ldap://a.example/ou=x,dc=example,dc=com",))
        referred = self.compare("ou", "y")
        self.assertEqual((referred.resultCode, referred.referral),
                         (10, [b"ldap://a.example/ou=x,dc=example,dc=com"]))
        self.assertEqual(self.backend.compares[:2], [
            ("ou=x,dc=example,dc=com", "ou", ("lang-en",), b"x"),
            ("ou=x,dc=example,dc=com", "ou", (), b"y")])

    def test_compareAfterPreHooks(self) -> None:
        """
        The pre_compare hooks run first: a comparison they refuse (another
        one's password, by the default access policy) never reaches the
        backend.
        """
        self.assertEqual(self.compare("userPassword", "secret").resultCode, 50)
        self.assertEqual(self.backend.compares, [])
