"""
Server-side sorting (RFC 2891) and the virtual list view (VLV) in process,
on every backend: requests encoded by python-ldap's control classes, as
clients send them, go through a L{Directory} as they arrive from the wire;
the responses are read with python-ldap's response classes.

The same requests against a private slapd with its C{sssvlv} overlay are
in C{tests/test_sorting_integration.py}.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from ldap.controls import SimplePagedResultsControl
from ldap.controls.sss import SSSRequestControl, SSSResponseControl
from ldap.controls.vlv import VLVRequestControl, VLVResponseControl
from ldaptor.protocols import pureldap
from twisted.trial import unittest
from zope.interface import implementer

from ldapd import sorting
from ldapd.entry import Entry
from ldapd.interfaces import IOperationPlugin
from ldapd.limits import Limits
from ldapd.operation import Identity, Operation
from ldapd.schema import Schema
from ldapd.schema.matching import RULES
from ldapd.testing import DirectoryTestsMixin, executeRequest

PEOPLE = "ou=people,dc=example,dc=com"
BASE = "dc=example,dc=com"
#: The people of the example organisation by uidNumber, 10001 to 10008.
BY_NUMBER = ["alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi"]


def sortControl(*keys: str, critical: bool = True) -> tuple[str, bool, bytes]:
    """
    @param keys: python-ldap's key notation: C{-sn:2.5.13.3} is C{sn} by
        caseIgnoreOrderingMatch, reversed.
    @return: the control as ldaptor sends it.
    """
    control = SSSRequestControl(critical, list(keys))
    return (control.controlType, critical, control.encodeControlValue())


def vlvControl(before: int, after: int, critical: bool = True, **target: Any
               ) -> tuple[str, bool, bytes]:
    """
    @param target: C{offset} and C{content_count}, or C{greater_than_or_equal},
        and C{context_id}, as python-ldap names them.
    @return: the control as ldaptor sends it.
    """
    control = VLVRequestControl(critical, before, after, **target)
    return (control.controlType, critical, control.encodeControlValue())


def pagedControl(size: int, cookie: bytes = b"") -> tuple[str, bool, bytes]:
    """
    @return: a paged results control as ldaptor sends it.
    """
    control = SimplePagedResultsControl(True, size, cookie)
    return (control.controlType, True, control.encodeControlValue())


class Answer:
    """
    What a search got back.

    @ivar names: the first RDN value of each entry, in the order sent.
    @ivar code: the result code.
    @ivar controls: the response controls, by OID (raw values).
    """

    def __init__(self, responses: list[Any]) -> None:
        self.names = [
            r.value.objectName.decode().split(",")[0].split("=")[1]
            for r in responses if isinstance(r.value, pureldap.LDAPSearchResultEntry)
        ]
        done = responses[-1]
        self.code = done.value.resultCode
        self.controls = {oid.decode() if isinstance(oid, bytes) else oid: value
                         for oid, _, value in done.controls or ()}

    def decoded(self, kind: Any) -> Any:
        """
        @param kind: python-ldap's class of a response control.
        @return: that control of the response, decoded by it.
        """
        control = kind()
        control.decodeControlValue(self.controls[kind.controlType])
        return control

    @property
    def sortResult(self) -> SSSResponseControl:
        """
        The Sort Response control.
        """
        return self.decoded(SSSResponseControl)

    @property
    def vlv(self) -> VLVResponseControl:
        """
        The VLV response control.
        """
        return self.decoded(VLVResponseControl)

    @property
    def paged(self) -> SimplePagedResultsControl:
        """
        The paged results response control.
        """
        return self.decoded(SimplePagedResultsControl)


class SearchMixin(DirectoryTestsMixin):
    """
    Searches with controls on the example organisation.
    """

    async def search(self, *controls: tuple[str, bool, bytes], base: str = PEOPLE,
                     filter: str = "(uid=*)", sizeLimit: int = 0) -> Answer:
        """
        Search the example organisation with controls.
        """
        from ldaptor import ldapfilter

        request = pureldap.LDAPSearchRequest(
            baseObject=base, scope=2, filter=ldapfilter.parseFilter(filter),
            sizeLimit=sizeLimit, attributes=["1.1"])
        responses, done = executeRequest(self.directory, self.connection, request,
                                         self._nextId, list(controls))
        self._nextId += 1
        await done
        return Answer(responses)


class SortingTestsMixin(SearchMixin):
    """
    Sorting and VLV on the example organisation.
    """

    async def test_orderingRule(self) -> None:
        """
        A key without a matching rule orders by the attribute type's
        ORDERING rule (integerOrderingMatch for uidNumber: 10008 after
        10001 whatever the backend's order), and a sortResult of success
        comes with the entries.
        """
        answer = await self.search(sortControl("uidNumber"))
        self.assertEqual((answer.code, answer.names), (0, BY_NUMBER))
        self.assertEqual(answer.sortResult.result, 0)

    async def test_reverse(self) -> None:
        """
        A reversed key sends the entries in the opposite order.
        """
        answer = await self.search(sortControl("-uidNumber"))
        self.assertEqual(answer.names, BY_NUMBER[::-1])

    async def test_namedRule(self) -> None:
        """
        C{sn:2.5.13.3} orders by caseIgnoreOrderingMatch, though sn has no
        ORDERING rule; a rule may be named by its name too.
        """
        for rule in ("2.5.13.3", "caseIgnoreOrderingMatch"):
            answer = await self.search(sortControl(f"-sn:{rule}"))
            self.assertEqual(answer.names, BY_NUMBER[::-1])

    async def test_missingValuesSortLast(self) -> None:
        """
        Entries without a value of the key sort after all others; reversed,
        before them (RFC 2891 §2.2, as slapd).
        """
        query = "(|(uid=alice)(uid=bob)(ou=people))"
        answer = await self.search(sortControl("uidNumber"), filter=query)
        self.assertEqual(answer.names, ["alice", "bob", "people"])
        answer = await self.search(sortControl("-uidNumber"), filter=query)
        self.assertEqual(answer.names, ["people", "bob", "alice"])

    async def test_severalKeys(self) -> None:
        """
        The second key orders the entries the first leaves equal.
        """
        for name in ("alice", "bob", "carol"):
            await self.modify(f"uid={name},{PEOPLE}", ("replace", "carLicense", [b"same"]))
        answer = await self.search(sortControl("carLicense:2.5.13.3", "-uidNumber"),
                                   filter="(|(uid=alice)(uid=bob)(uid=carol)(uid=dave))")
        self.assertEqual(answer.names, ["carol", "bob", "alice", "dave"])

    async def test_leastValue(self) -> None:
        """
        A multi-valued key orders an entry by its least value (RFC 2891 §2.2).
        """
        await self.modify(f"uid=heidi,{PEOPLE}", ("add", "carLicense", [b"zz", b"aa"]))
        await self.modify(f"uid=alice,{PEOPLE}", ("add", "carLicense", [b"mm"]))
        answer = await self.search(sortControl("carLicense:2.5.13.3"),
                                   filter="(carLicense=*)")
        self.assertEqual(answer.names, ["heidi", "alice"])

    async def test_noOrderingRule(self) -> None:
        """
        A key with neither an ORDERING rule nor a named rule fails the
        search with inappropriateMatching (18), critical or not, as slapd;
        the sortResult names the key.
        """
        for critical in (True, False):
            answer = await self.search(sortControl("sn", critical=critical))
            self.assertEqual((answer.code, answer.names), (18, []))
            self.assertEqual((answer.sortResult.result, str(answer.sortResult.attribute_type_error)),
                             (18, "sn"))

    async def test_unknownRule(self) -> None:
        """
        A matching rule nobody defined is inappropriateMatching (18).
        """
        answer = await self.search(sortControl("sn:2.5.13.99"))
        self.assertEqual(answer.code, 18)

    async def test_undefinedAttribute(self) -> None:
        """
        A key on an undefined attribute type is noSuchAttribute (16), as slapd.
        """
        answer = await self.search(sortControl("noSuchAttribute", critical=False))
        self.assertEqual((answer.code, answer.sortResult.result), (16, 16))

    async def test_tooManyKeys(self) -> None:
        """
        More than five keys (slapd's sssvlv-maxkeys) is unwillingToPerform (53).
        """
        answer = await self.search(sortControl(*["uidNumber"] * 6))
        self.assertEqual(answer.code, 53)
        answer = await self.search(sortControl(*["uidNumber"] * 5))
        self.assertEqual(answer.code, 0)

    async def test_malformed(self) -> None:
        """
        A sort control without a key is protocolError (2).
        """
        answer = await self.search((sorting.SORT_REQUEST, True, b"\x30\x00"))
        self.assertEqual(answer.code, 2)

    async def test_sizeLimit(self) -> None:
        """
        The size limit applies to the sorted entries: the first ones are
        sent, then sizeLimitExceeded (4), as slapd.
        """
        answer = await self.search(sortControl("-uidNumber"), sizeLimit=3)
        self.assertEqual((answer.code, answer.names), (4, ["heidi", "grace", "frank"]))

    async def test_maxSortedEntries(self) -> None:
        """
        A sort of more entries than the limits allow it to hold is
        adminLimitExceeded (11), with that sortResult; one within them is sorted.
        """
        self.directory.limits = Limits(maxSortedEntries=8)
        answer = await self.search(sortControl("uidNumber"), filter="(objectClass=*)")
        self.assertEqual((answer.code, answer.names, answer.sortResult.result), (11, [], 11))
        answer = await self.search(sortControl("uidNumber"))
        self.assertEqual(answer.names, BY_NUMBER)

    async def test_identityLimits(self) -> None:
        """
        A user's size limit caps the sorted entries sent to it.
        """
        self.directory.limits = Limits(sizeLimit=2)
        self.connection.identity = Identity(None)
        answer = await self.search(sortControl("-uidNumber"))
        self.assertEqual((answer.code, answer.names), (4, ["heidi", "grace"]))

    async def test_paged(self) -> None:
        """
        With paged results, the set is sorted once and paged through in
        order; each page's response estimates the entries left.
        """
        names = []
        cookie = b""
        estimates = []
        while True:
            answer = await self.search(sortControl("-uidNumber"), pagedControl(3, cookie))
            self.assertEqual((answer.code, answer.sortResult.result), (0, 0))
            names += answer.names
            cookie = answer.paged.cookie
            estimates.append(answer.paged.size)
            if not cookie:
                break
        self.assertEqual(names, BY_NUMBER[::-1])
        self.assertEqual(estimates, [5, 2, 0])

    async def test_pagedCookieNeedsSameSort(self) -> None:
        """
        A sorted search's cookie continues only the same sort: without the
        sort control, or with another key, it is invalid (protocolError).
        """
        first = await self.search(sortControl("uidNumber"), pagedControl(2))
        answer = await self.search(pagedControl(2, first.paged.cookie))
        self.assertEqual(answer.code, 2)
        first = await self.search(sortControl("uidNumber"), pagedControl(2))
        answer = await self.search(sortControl("-uidNumber"), pagedControl(2, first.paged.cookie))
        self.assertEqual(answer.code, 2)

    async def test_pagedAbandon(self) -> None:
        """
        A page size of 0 with the cookie ends the sorted search.
        """
        first = await self.search(sortControl("uidNumber"), pagedControl(2))
        answer = await self.search(sortControl("uidNumber"), pagedControl(0, first.paged.cookie))
        self.assertEqual((answer.code, answer.names, answer.paged.cookie), (0, [], b""))
        answer = await self.search(sortControl("uidNumber"), pagedControl(2, first.paged.cookie))
        self.assertEqual(answer.code, 2)

    async def test_vlvByOffset(self) -> None:
        """
        VLV by offset sends the target with the entries before and after
        it, and its position and the list's size.
        """
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(1, 2, offset=4, content_count=0))
        self.assertEqual((answer.code, answer.names), (0, ["carol", "dave", "eve", "frank"]))
        self.assertEqual((answer.vlv.target_position, answer.vlv.content_count,
                          answer.vlv.result), (4, 8, 0))
        self.assertEqual(answer.sortResult.result, 0)
        self.assertTrue(answer.vlv.context_id)

    async def test_vlvContentCount(self) -> None:
        """
        With the client's estimate of the list's size, the target is where
        its offset falls in the real list (slapd's rounding); an offset equal
        to the count is the last entry.
        """
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(0, 0, offset=2, content_count=4))
        self.assertEqual((answer.names, answer.vlv.target_position), (["dave"], 4))
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(1, 1, offset=20, content_count=20))
        self.assertEqual((answer.names, answer.vlv.target_position), (["grace", "heidi"], 8))

    async def test_vlvWindowClipped(self) -> None:
        """
        A window reaching past either end of the list stops there.
        """
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(5, 1, offset=1, content_count=0))
        self.assertEqual(answer.names, ["alice", "bob"])

    async def test_vlvOffsetRange(self) -> None:
        """
        An offset beyond the list is virtualListViewError (76), the
        response's result offsetRangeError (61), and no entry is sent.
        """
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(1, 1, offset=9, content_count=0))
        self.assertEqual((answer.code, answer.names), (76, []))
        self.assertEqual((answer.vlv.target_position, answer.vlv.content_count,
                          answer.vlv.result), (0, 8, 61))

    async def test_vlvGreaterThanOrEqual(self) -> None:
        """
        A greaterThanOrEqual target is the first entry whose first key is at
        least the value, by the key's rule; reversed, at most.
        """
        answer = await self.search(sortControl("sn:2.5.13.3"),
                                   vlvControl(0, 1, greater_than_or_equal="davis"))
        self.assertEqual((answer.names, answer.vlv.target_position), (["dave", "eve"], 4))
        answer = await self.search(sortControl("-sn:2.5.13.3"),
                                   vlvControl(0, 1, greater_than_or_equal="Dz"))
        self.assertEqual((answer.names, answer.vlv.target_position), (["dave", "carol"], 5))

    async def test_vlvPastTheEnd(self) -> None:
        """
        A value greater than every entry's targets the position after the
        last: the entries before it are sent.
        """
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(2, 2, greater_than_or_equal="99999"))
        self.assertEqual((answer.names, answer.vlv.target_position), (["grace", "heidi"], 9))

    async def test_vlvWithoutSort(self) -> None:
        """
        VLV without the sort control is virtualListViewError (76), the
        response's result sortControlMissing (60), critical or not.
        """
        for critical in (True, False):
            answer = await self.search(vlvControl(1, 1, critical, offset=1, content_count=0))
            self.assertEqual((answer.code, answer.names, answer.vlv.result), (76, [], 60))

    async def test_vlvWithPaging(self) -> None:
        """
        VLV with paged results is unwillingToPerform (53), as slapd.
        """
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(1, 1, offset=1, content_count=0), pagedControl(2))
        self.assertEqual(answer.code, 53)

    async def test_vlvEmpty(self) -> None:
        """
        An empty list is no error: position and size 0.
        """
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(1, 1, offset=3, content_count=0),
                                   filter="(uid=nobody)")
        self.assertEqual((answer.code, answer.vlv.target_position,
                          answer.vlv.content_count), (0, 0, 0))

    async def test_vlvContext(self) -> None:
        """
        The next window of a search with the contextID of the last response
        comes from the same sorted list (a consistent view: an entry added
        meanwhile is not in it); another search gets a new list.
        """
        first = await self.search(sortControl("uidNumber"),
                                  vlvControl(0, 1, offset=1, content_count=0))
        context = first.vlv.context_id
        await self.add(f"uid=aaron,{PEOPLE}", [
            ("objectClass", [b"inetOrgPerson", b"posixAccount"]), ("uid", [b"aaron"]),
            ("cn", [b"Aaron"]), ("sn", [b"A"]), ("uidNumber", [b"10000"]),
            ("gidNumber", [b"10000"]), ("homeDirectory", [b"/home/aaron"])])
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(0, 1, offset=1, content_count=8, context_id=context))
        self.assertEqual((answer.names, answer.vlv.content_count), (["alice", "bob"], 8))
        self.assertEqual(answer.vlv.context_id, context)
        answer = await self.search(sortControl("uidNumber"),
                                   vlvControl(0, 1, offset=1, content_count=0))
        self.assertEqual((answer.names, answer.vlv.content_count), (["aaron", "alice"], 9))
        self.assertNotEqual(answer.vlv.context_id, context)

    async def test_vlvContextsKept(self) -> None:
        """
        A connection keeps the sorted sets of its last five sorts: the
        contextID of an older one names nothing, and its next window is
        sorted anew, under a new contextID.
        """
        contexts = []
        for _ in range(sorting.MAX_KEPT_SORTS + 1):
            answer = await self.search(sortControl("uidNumber"),
                                       vlvControl(0, 0, offset=1, content_count=0))
            contexts.append(answer.vlv.context_id)
        for context, kept in [(contexts[-1], True), (contexts[0], False)]:
            answer = await self.search(sortControl("uidNumber"), vlvControl(
                0, 0, offset=1, content_count=0, context_id=context))
            self.assertEqual((answer.names, answer.vlv.context_id == context), (["alice"], kept))

    async def test_advertised(self) -> None:
        """
        The root DSE lists both controls, because they are registered.
        """
        responses, done = executeRequest(
            self.directory, self.connection,
            pureldap.LDAPSearchRequest(baseObject="", scope=0, attributes=["supportedControl"]),
            self._nextId)
        await done
        values = {v for _, vs in responses[0].value.attributes for v in vs}
        self.assertLessEqual({sorting.SORT_REQUEST.encode(), sorting.VLV_REQUEST.encode()},
                             values)
        self.assertIsNotNone(self.directory.extensions.control(sorting.SORT_REQUEST))


@implementer(IOperationPlugin)
class _HideAlicesNumber:
    """
    Withholds alice's uidNumber from every search result, as an access
    rule would.
    """

    name = "hide-alices-number"

    def __init__(self, schema: Schema) -> None:
        self.uidNumber = schema.attributeType("uidNumber")

    def filter_entry(self, op: Operation, entry: Entry) -> Entry | None:
        if entry.get("uid") == (b"alice",):
            return entry.without({self.uidNumber})
        return entry


class FilteredSortingTests(SearchMixin, unittest.TestCase):
    """
    Sorting sees the entries as the plugins let the client see them.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [_HideAlicesNumber(schema)]

    async def test_sortsWhatIsVisible(self) -> None:
        """
        An entry is ordered by the values the client may read: alice's
        hidden uidNumber sorts as missing, last, rather than first, so the
        order tells nothing of it.
        """
        answer = await self.search(sortControl("uidNumber"))
        self.assertEqual(answer.names, [*BY_NUMBER[1:], "alice"])


class MemorySortingTests(SortingTestsMixin, unittest.TestCase):
    """
    Sorting and VLV on the memory backend.
    """

    backend = "memory"


class SQLiteSortingTests(SortingTestsMixin, unittest.TestCase):
    """
    Sorting and VLV on the sql backend, on SQLite.
    """

    backend = "sqlite"


class PostgreSQLSortingTests(SortingTestsMixin, unittest.TestCase):
    """
    Sorting and VLV on the sql backend, on PostgreSQL.
    """

    backend = "postgresql"


class OrderTests(unittest.SynchronousTestCase):
    """
    The order of sorted entries, computed without a directory.
    """

    def test_passesAsComparisons(self) -> None:
        """
        Sorting one key at a time orders entries as comparing them key by
        key does: with reversed keys, missing values and ties (kept in the
        backend's order) — and so does the comparison a key of unlike
        values falls back to.
        """
        schema = Schema.standard()
        keys = (sorting._Key(schema.attributeType("sn"), (), RULES["2.5.13.3"], 1),
                sorting._Key(schema.attributeType("uidNumber"), (), RULES["2.5.13.15"], -1))
        generator = random.Random(7)
        entries: list[Any] = [
            ([generator.choice(["a", "b", "c", None]), generator.choice([1, 2, 3, None])], i)
            for i in range(500)]
        expected = sorted(entries, key=functools.cmp_to_key(
            lambda a, b: sorting._compare(keys, a[0], b[0])))
        ordered = list(entries)
        sorting._order(keys, ordered)
        self.assertEqual(ordered, expected)
        unlike: list[Any] = [([generator.choice(["a", 1, None]), None], i) for i in range(50)]
        sorting._order(keys, unlike)
        firsts = [k[0] for k, _ in unlike]
        self.assertEqual(firsts, sorted(firsts, key=lambda v: (v is None, repr(v))))
        for value in ("a", 1, None):
            positions = [i for k, i in unlike if k[0] == value]
            self.assertEqual(positions, sorted(positions))
