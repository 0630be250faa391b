"""
Server-side sorting (RFC 2891) and the virtual list view
(draft-ietf-ldapext-ldapv3-vlv-09) of search results.

Both are carried out over the stream any backend's search gives: the
L{Searcher<ldapd.search.Searcher>} collects the entries the plugins let
through (at most L{Limits.maxSortedEntries<ldapd.limits.Limits>}), orders
them by the request's sort keys, and sends them whole, a page at a time
(with the paged results control: sorted once, paged through the sorted
set), or the window a VLV request asks for. A sorted set a client will
come back to (the next page, the next VLV window with its contextID) is
kept on the connection with the paged searches, at most
L{MAX_KEPT_SORTS} of them.

The result codes are slapd's (its C{sssvlv} overlay): a sort key on an
undefined attribute type is noSuchAttribute (16), one with neither a
named matching rule nor an ORDERING rule inappropriateMatching (18), more
than L{MAX_SORT_KEYS} keys unwillingToPerform (53), whether or not the
control is critical; VLV without a sort control, or a target out of
range, is virtualListViewError (76).

One search's path::

    Searcher.handle -> sortedSearch -> Searcher.searchDatabase(collect)
        -> order -> send all / a page / a window -> Searcher.sendEntry
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ldaptor.protocols.ldap import ldaperrors

from ldapd._codec import Control, decodeElements, encodeSequence, integer, octetString
from ldapd.entry import Entry, parseDescription
from ldapd.requests import SearchRequest
from ldapd.results import Outcome
from ldapd.schema import AttributeType, InvalidValue, MatchingRule, Schema
from ldapd.schema.matching import RULES

if TYPE_CHECKING:
    from ldapd.controls import PagedResults
    from ldapd.directory import Database
    from ldapd.operation import Operation
    from ldapd.results import Reply
    from ldapd.search import Searcher

__all__ = [
    "MAX_KEPT_SORTS",
    "MAX_SORT_KEYS",
    "SORT_REQUEST",
    "SORT_RESPONSE",
    "VLV_REQUEST",
    "VLV_RESPONSE",
    "SortKey",
    "SortRequest",
    "VLVRequest",
    "decodeSortRequest",
    "decodeVLVRequest",
    "sortResponse",
    "sortedSearch",
    "vlvResponse",
]

SORT_REQUEST = "1.2.840.113556.1.4.473"
SORT_RESPONSE = "1.2.840.113556.1.4.474"
VLV_REQUEST = "2.16.840.1.113730.3.4.9"
VLV_RESPONSE = "2.16.840.1.113730.3.4.10"

#: The most keys one sort may have (slapd's C{sssvlv-maxkeys} default).
MAX_SORT_KEYS = 5

#: The most sorted sets (for next pages and VLV windows) a connection keeps
#: (slapd's C{sssvlv-maxperconn} default): each may hold
#: L{Limits.maxSortedEntries<ldapd.limits.Limits>} entries.
MAX_KEPT_SORTS = 5

#: virtualListViewResult codes of the draft (§6.2) besides LDAP's own.
SORT_CONTROL_MISSING = 60
OFFSET_RANGE_ERROR = 61

#: The SearchResultDone's code when a VLV request fails (IANA's
#: virtualListViewError, slapd's LDAP_VLV_ERROR).
_VLV_ERROR = 76

#: The sortResult codes RFC 2891 §1.2 lists; an error of another code (a
#: size limit the sort itself met) leaves the sort successful.
_SORT_RESULTS = frozenset({0, 1, 3, 8, 11, 16, 18, 50, 51, 53, 80})


@dataclass(frozen=True)
class SortKey:
    """
    One key of a sort request.

    @ivar attribute: the attribute description whose values order the entries.
    @ivar orderingRule: the matching rule named for it (name or OID), or
        C{None} for the attribute type's ORDERING rule.
    @ivar reverse: whether the order is reversed.
    """

    attribute: str
    orderingRule: str | None = None
    reverse: bool = False


@dataclass(frozen=True)
class SortRequest:
    """
    The Server Side Sort request control (RFC 2891).

    @ivar keys: the sort keys, most significant first.
    @ivar criticality: whether the client marked it critical.
    """

    keys: tuple[SortKey, ...]
    criticality: bool = False


@dataclass(frozen=True)
class VLVRequest:
    """
    The Virtual List View request control (draft-ietf-ldapext-ldapv3-vlv-09
    §6.1): a window of C{before} entries, the target, and C{after} entries.

    @ivar offset: the target's offset (byOffset), or C{None}.
    @ivar contentCount: the client's estimate of the list's size (byOffset).
    @ivar value: the assertion value of greaterThanOrEqual, or C{None}.
    @ivar contextID: the contextID of the server's last response, if any.
    @ivar criticality: whether the client marked it critical.
    """

    before: int
    after: int
    offset: int | None = None
    contentCount: int = 0
    value: bytes | None = None
    contextID: bytes | None = None
    criticality: bool = False


def _element(tag: int, data: bytes) -> tuple[int, bytes]:
    """
    @return: the identifier and contents of C{data}, one element.
    @raise ValueError: if it is not exactly one element.
    """
    elements = decodeElements(data)
    if len(elements) != 1 or elements[0][0] != tag:
        raise ValueError(f"expected one element tagged {tag:#x}")
    return elements[0]


def _unsigned(contents: bytes) -> int:
    """
    @return: the value of the contents of an INTEGER in 0 .. maxInt.
    @raise ValueError: if it is empty or negative.
    """
    value = int.from_bytes(contents, "big", signed=True) if contents else -1
    if value < 0 or value > 2**31 - 1:
        raise ValueError("an INTEGER is not in 0 .. maxInt")
    return value


def decodeSortRequest(value: bytes | None, critical: bool) -> SortRequest:
    """
    Decode C{SortKeyList ::= SEQUENCE OF SEQUENCE { attributeType
    AttributeDescription, orderingRule [0] MatchingRuleId OPTIONAL,
    reverseOrder [1] BOOLEAN DEFAULT FALSE }}.

    @raise ValueError: if it is absent, empty or malformed (protocolError).
    """
    if not value:
        raise ValueError("the sort control needs a value")
    keys = []
    for tag, contents in decodeElements(_element(0x30, value)[1]):
        fields = decodeElements(contents)
        if tag != 0x30 or not fields or fields[0][0] != 0x04:
            raise ValueError("a sort key is not SEQUENCE { AttributeDescription, ... }")
        rule = None
        reverse = False
        rest = [(t, c) for t, c in fields[1:]]
        if rest and rest[0][0] == 0x80:
            rule = rest.pop(0)[1].decode("utf-8", "replace")
        if rest and rest[0][0] == 0x81 and len(rest[0][1]) == 1:
            reverse = rest.pop(0)[1] != b"\x00"
        if rest:
            raise ValueError("a sort key has unknown fields")
        keys.append(SortKey(fields[0][1].decode("utf-8", "replace"), rule, reverse))
    if not keys:
        raise ValueError("the sort control has no key")
    return SortRequest(tuple(keys), critical)


def decodeVLVRequest(value: bytes | None, critical: bool) -> VLVRequest:
    """
    Decode C{VirtualListViewRequest ::= SEQUENCE { beforeCount INTEGER,
    afterCount INTEGER, target CHOICE { byOffset [0] SEQUENCE { offset
    INTEGER, contentCount INTEGER }, greaterThanOrEqual [1] AssertionValue },
    contextID OCTET STRING OPTIONAL }}.

    @raise ValueError: if it is absent or malformed (protocolError).
    """
    if not value:
        raise ValueError("the VLV control needs a value")
    fields = decodeElements(_element(0x30, value)[1])
    if len(fields) not in (3, 4) or fields[0][0] != 0x02 or fields[1][0] != 0x02:
        raise ValueError("VLV value is not SEQUENCE { INTEGER, INTEGER, target, ... }")
    before, after = _unsigned(fields[0][1]), _unsigned(fields[1][1])
    contextID = None
    if len(fields) == 4:
        if fields[3][0] != 0x04:
            raise ValueError("the VLV contextID is not an OCTET STRING")
        contextID = fields[3][1]
    tag, contents = fields[2]
    if tag == 0xA0:
        byOffset = decodeElements(contents)
        if len(byOffset) != 2 or byOffset[0][0] != 0x02 or byOffset[1][0] != 0x02:
            raise ValueError("VLV byOffset is not SEQUENCE { INTEGER, INTEGER }")
        return VLVRequest(before, after, offset=_unsigned(byOffset[0][1]),
                          contentCount=_unsigned(byOffset[1][1]), contextID=contextID,
                          criticality=critical)
    if tag == 0x81:
        return VLVRequest(before, after, value=contents, contextID=contextID,
                          criticality=critical)
    raise ValueError("VLV target is neither byOffset nor greaterThanOrEqual")


def sortResponse(code: int, attribute: str | None = None) -> Control:
    """
    @param code: the sortResult.
    @param attribute: the attribute description of the key that failed.
    @return: the Sort Response control (RFC 2891 §1.2).
    """
    parts = [integer(code, 0x0A)]
    if attribute is not None:
        parts.append(octetString(attribute.encode("utf-8"), 0x80))
    return Control(SORT_RESPONSE, False, encodeSequence(parts))


def vlvResponse(target: int, count: int, code: int, contextID: bytes | None = None) -> Control:
    """
    @param target: the target's position in the list (1 for the first).
    @param count: the list's size.
    @param code: the virtualListViewResult.
    @param contextID: the contextID for the client's next request.
    @return: the VLV response control (draft §6.2).
    """
    parts = [integer(target), integer(count), integer(code, 0x0A)]
    if contextID is not None:
        parts.append(octetString(contextID))
    return Control(VLV_RESPONSE, False, encodeSequence(parts))


class _Failed(Exception):
    """
    The sort or VLV request fails: the LDAP error to answer, and the
    response controls that go with it.
    """

    def __init__(self, error: ldaperrors.LDAPException, controls: Sequence[Control]) -> None:
        super().__init__(error)
        self.error = error
        self.controls = controls


def _failure(error: ldaperrors.LDAPException, attribute: str | None = None) -> _Failed:
    return _Failed(error, [sortResponse(error.resultCode, attribute)])


@dataclass(frozen=True)
class _Key:
    """
    A sort key resolved against the schema.
    """

    at: AttributeType
    options: tuple[str, ...]
    rule: MatchingRule
    direction: int


def _resolve(schema: Schema, key: SortKey) -> _Key:
    """
    @raise _Failed: noSuchAttribute (16) for an undefined attribute type,
        inappropriateMatching (18) for a key with no ordering rule.
    """
    try:
        at, options = parseDescription(schema, key.attribute)
    except ldaperrors.LDAPUndefinedAttributeType:
        raise _failure(ldaperrors.LDAPNoSuchAttribute(
            "serverSort control: Unrecognized attribute type in sort key"), key.attribute) from None
    rule = RULES.get(key.orderingRule.lower()) if key.orderingRule else at.ordering
    if rule is None:
        raise _failure(ldaperrors.LDAPInappropriateMatching(
            "serverSort control: No ordering rule"), key.attribute)
    return _Key(at, options, rule, -1 if key.reverse else 1)


def _description(key: _Key) -> str:
    """
    @return: the attribute description of a key's attribute.
    """
    return ";".join((key.at.name, *key.options))


def _resolveAll(schema: Schema, sort: SortRequest) -> tuple[_Key, ...]:
    if len(sort.keys) > MAX_SORT_KEYS:
        raise _failure(ldaperrors.LDAPUnwillingToPerform("Too many sort keys"))
    return tuple(_resolve(schema, key) for key in sort.keys)


#: The key of an entry with no (valid) value of a sort key's attribute: it
#: sorts after every value, so last, or first when reversed (RFC 2891
#: §2.2, and slapd).
_MISSING: Any = None


def _keyOf(schema: Schema, entry: Entry, key: _Key) -> Any:
    """
    @return: the least of the entry's values of the key's attribute, by
        the key's rule (RFC 2891 §2.2), or L{_MISSING}.
    """
    attribute = entry.attribute(key.at, key.options)
    least = _MISSING
    for value in attribute.values if attribute is not None else ():
        try:
            normalized = schema.applyRule(key.rule, value)
        except InvalidValue:
            continue
        if least is _MISSING or _less(normalized, least):
            least = normalized
    return least


def _less(x: Any, y: Any) -> bool:
    """
    Order two keys of one rule; keys a rule makes of unlike parts (a name
    with and without a UID) still get one order.
    """
    try:
        return bool(x < y)
    except TypeError:
        return repr(x) < repr(y)


def _compare(keys: tuple[_Key, ...], a: Sequence[Any], b: Sequence[Any]) -> int:
    """
    Order two entries' sort keys: the first key that differs decides,
    reversed by its direction.
    """
    for key, x, y in zip(keys, a, b, strict=False):
        if x is _MISSING or y is _MISSING:
            if x is y:
                continue
            return key.direction if x is _MISSING else -key.direction
        if x != y:
            return (-1 if _less(x, y) else 1) * key.direction
    return 0


def _order(keys: tuple[_Key, ...], entries: list[tuple[list[Any], Entry]]) -> None:
    """
    Sort entries by their keys' values, in place. Stable: entries whose
    keys are equal stay in the backend's order, as in slapd.

    One pass a key, the least significant first (Python's sort is stable,
    reversed too), each by C{(missing, value)}: several times quicker than
    comparing entries pair by pair, which is left for keys of unlike types.
    """
    try:
        for i in reversed(range(len(keys))):
            entries.sort(key=lambda e: (True, 0) if e[0][i] is _MISSING else (False, e[0][i]),
                         reverse=keys[i].direction < 0)
    except TypeError:

        def byKeys(a: tuple[list[Any], Entry], b: tuple[list[Any], Entry]) -> int:
            return _compare(keys, a[0], b[0])

        entries.sort(key=functools.cmp_to_key(byKeys))


class _SortedResults:
    """
    The sorted entries of one search, kept on the connection for the
    client's next page or VLV window.

    @ivar fingerprint: what the next request must repeat to use them.
    @ivar keys: the resolved sort keys.
    @ivar entries: the entries, filtered for the identity that searched, in order.
    @ivar sortKeys: each entry's key values.
    @ivar sent: for paged results, how many entries the pages have sent.
    """

    def __init__(self, fingerprint: tuple[object, ...], keys: tuple[_Key, ...],
                 entries: list[tuple[list[Any], Entry]]) -> None:
        self.fingerprint = fingerprint
        self.keys = keys
        _order(keys, entries)
        self.sortKeys = [k for k, _ in entries]
        self.entries = [e for _, e in entries]
        self.sent = 0

    def cancel(self) -> None:
        """
        Forget the entries (the connection keeps too many sorted sets).
        """
        self.entries = []
        self.sortKeys = []


async def _collect(searcher: Searcher, op: Operation, reply: Reply, db: Database, backend: Any,
                   keys: tuple[_Key, ...], fingerprint: tuple[object, ...]) -> _SortedResults:
    """
    Run the backend's search and keep what the plugins let through, with
    its sort keys; continuation references are sent as they come.

    @raise _Failed: adminLimitExceeded (11) when more entries match than
        L{Limits.maxSortedEntries<ldapd.limits.Limits>} allows.
    """
    schema = searcher.schema
    bound = searcher.maxSortedEntries(op)
    found: list[tuple[list[Any], Entry]] = []

    def keep(entry: Entry) -> None:
        if bound and len(found) >= bound:
            raise _failure(ldaperrors.LDAPAdminLimitExceeded(
                f"more than {bound} entries to sort"))
        found.append(([_keyOf(schema, entry, key) for key in keys], entry))

    # The size limit applies to what is sent, once sorted; and a backend
    # that fetches only the attributes asked for (the proxy) must fetch the
    # keys' too.
    params = op.search
    assert params is not None
    sizeLimit, op.sizeLimit = op.sizeLimit, 0
    selected = params.attributes
    params.attributes = [*selected, *(_description(key) for key in keys)]
    try:
        await searcher.searchDatabase(op, reply, db, send=keep, backend=backend)
    finally:
        op.sizeLimit = sizeLimit
        params.attributes = selected
    return _SortedResults(fingerprint, keys, found)


async def _send(searcher: Searcher, op: Operation, reply: Reply, entries: Sequence[Entry],
                limit: int) -> bool:
    """
    Send entries, at most C{limit} of them (0: all).

    @return: whether C{limit} left some unsent.
    """
    for i, entry in enumerate(entries):
        if limit and i >= limit:
            return True
        waiting = searcher.sendEntry(op, reply, entry)
        if waiting is not None:
            await waiting
    return False


def _keep(op: Operation, key: bytes, state: _SortedResults, most: int) -> None:
    """
    Keep a sorted set on the connection under C{key}, with its paged
    searches: at most L{MAX_KEPT_SORTS} sorted sets, and C{most} in all,
    the least recently used dropped first.
    """
    states = op.connection.pagedSearches
    states.pop(key, None)
    kept = [k for k, v in states.items() if isinstance(v, _SortedResults)]
    while len(kept) >= MAX_KEPT_SORTS:
        states.pop(kept.pop(0)).cancel()
    while len(states) >= most:
        states.pop(next(iter(states))).cancel()
    states[key] = state


async def sortedSearch(
    searcher: Searcher,
    op: Operation,
    reply: Reply,
    db: Database,
    fingerprint: tuple[object, ...],
    paged: PagedResults | None,
    mostKept: int,
    backend: Any = None,
) -> Outcome:
    """
    Carry out a search with the sort control, the VLV control, or both
    (with paged results, if asked for, when there is no VLV).

    @param searcher: the directory's searcher.
    @param op: the search; its controls include a L{SortRequest} or a
        L{VLVRequest}.
    @param reply: its reply function.
    @param db: the database holding the base.
    @param fingerprint: what must not change between the pages or windows
        of one search.
    @param paged: the paged results control, if any.
    @param mostKept: the most sorted sets and paged searches a connection keeps.
    @param backend: what runs the search (L{ldapd.naming.Names.searching}),
        as L{Searcher.searchDatabase} takes it.
    @return: how it ended, with the response controls.
    @raise ldaperrors.LDAPException: an error of the search, with
        C{op.responseControls} holding the sort (and VLV) response.
    """
    sort: SortRequest | None = op.controls.get(SORT_REQUEST)
    vlv: VLVRequest | None = op.controls.get(VLV_REQUEST)
    try:
        if sort is None:
            assert vlv is not None
            raise _Failed(ldaperrors.LDAPUnknownError(
                _VLV_ERROR, "Sort control is required with VLV"),
                [vlvResponse(0, 0, SORT_CONTROL_MISSING)])
        keys = _resolveAll(searcher.schema, sort)
        if vlv is not None and paged is not None:
            raise _failure(ldaperrors.LDAPUnwillingToPerform("VLV incompatible with PagedResults"))
        fingerprint = (fingerprint, sort.keys, op.identity)
        if vlv is not None:
            controls = await _window(searcher, op, reply, db, backend, keys, fingerprint, vlv, mostKept)
        elif paged is not None:
            controls = await _page(searcher, op, reply, db, backend, keys, fingerprint, paged, mostKept)
        else:
            results = await _collect(searcher, op, reply, db, backend, keys, fingerprint)
            if await _send(searcher, op, reply, results.entries, op.sizeLimit):
                raise _Failed(ldaperrors.LDAPSizeLimitExceeded(""), [sortResponse(0)])
            controls = [sortResponse(0)]
    except _Failed as failed:
        op.responseControls.extend(failed.controls)
        raise failed.error from None
    return Outcome(controls=controls)


async def _page(searcher: Searcher, op: Operation, reply: Reply, db: Database, backend: Any,
                keys: tuple[_Key, ...], fingerprint: tuple[object, ...],
                paged: PagedResults, mostKept: int) -> list[Control]:
    """
    Send the next page of a sorted search: sorted once, on the first page.
    """
    # Imported here: ldapd.controls registers this module's controls.
    from ldapd import controls

    states = op.connection.pagedSearches
    if paged.cookie:
        state = states.pop(paged.cookie, None)
        if not isinstance(state, _SortedResults) or state.fingerprint != fingerprint:
            raise _Failed(ldaperrors.LDAPProtocolError("paged results cookie is invalid"), [])
        if paged.size == 0:
            state.cancel()
            return [sortResponse(0), controls.pagedResultsResponse(b"")]
    else:
        if paged.size == 0:
            return [sortResponse(0), controls.pagedResultsResponse(b"")]
        state = await _collect(searcher, op, reply, db, backend, keys, fingerprint)
    size = paged.size
    sizeLimit, _ = await searcher.identityLimits(op)
    if sizeLimit:
        size = min(size, sizeLimit)
    # As for unsorted pages: the configured size limit caps each page, the
    # client's own size limit the whole set.
    assert isinstance(op.request, SearchRequest)
    total = op.request.sizeLimit
    page = state.entries[state.sent:state.sent + size]
    over = bool(total) and state.sent + len(page) > total
    if over:
        page = page[:max(0, total - state.sent)]
    await _send(searcher, op, reply, page, 0)
    state.sent += len(page)
    if over:
        raise _Failed(ldaperrors.LDAPSizeLimitExceeded(""), [sortResponse(0)])
    remaining = len(state.entries) - state.sent
    cookie = b""
    if remaining:
        cookie = secrets.token_bytes(8)
        _keep(op, cookie, state, mostKept)
    return [sortResponse(0), controls.pagedResultsResponse(cookie, remaining)]


class _NoTarget(Exception):
    """
    A VLV request's target is not in the list.

    @ivar code: the virtualListViewResult that says why.
    """

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _target(results: _SortedResults, vlv: VLVRequest, schema: Schema) -> int:
    """
    The target's position (1 for the first entry; 0 and the list's size
    plus one are allowed, meaning before the first and after the last), as
    slapd places it.

    @raise _NoTarget: with offsetRangeError for an offset beyond the list,
        or inappropriateMatching for a greaterThanOrEqual value the first
        key's rule does not accept.
    """
    n = len(results.entries)
    if vlv.value is None:
        offset, count = vlv.offset, vlv.contentCount
        assert offset is not None
        if offset == count:
            return n
        if offset == 1:
            return 1
        if count and count != n:
            if offset > count:
                raise _NoTarget(OFFSET_RANGE_ERROR)
            # Where the client's idea of the list puts the target (§5).
            return n * offset // count
        if offset > n:
            raise _NoTarget(OFFSET_RANGE_ERROR)
        return offset
    first = results.keys[0]
    try:
        wanted = schema.applyRule(first.rule, vlv.value)
    except InvalidValue:
        raise _NoTarget(ldaperrors.LDAPInappropriateMatching.resultCode) from None
    # The first entry whose first key sorts at or after the value.
    low, high = 0, n
    while low < high:
        middle = (low + high) // 2
        if _compare((first,), results.sortKeys[middle][:1], [wanted]) < 0:
            low = middle + 1
        else:
            high = middle
    return low + 1


async def _window(searcher: Searcher, op: Operation, reply: Reply, db: Database, backend: Any,
                  keys: tuple[_Key, ...], fingerprint: tuple[object, ...], vlv: VLVRequest,
                  mostKept: int) -> list[Control]:
    """
    Send the window a VLV request asks for, from the sorted set its
    contextID names if that set answers the same search, else from a new one.
    """
    state = None
    if vlv.contextID:
        state = op.connection.pagedSearches.get(vlv.contextID)
        if not isinstance(state, _SortedResults) or state.fingerprint != fingerprint:
            state = None
    contextID = vlv.contextID if state is not None else secrets.token_bytes(8)
    assert contextID is not None
    if state is None:
        state = await _collect(searcher, op, reply, db, backend, keys, fingerprint)
    _keep(op, contextID, state, mostKept)
    n = len(state.entries)
    if not n:
        return [sortResponse(0), vlvResponse(0, 0, 0, contextID)]
    try:
        target = _target(state, vlv, searcher.schema)
    except _NoTarget as e:
        raise _Failed(ldaperrors.LDAPUnknownError(_VLV_ERROR, ""),
                      [sortResponse(0), vlvResponse(0, n, e.code, contextID)]) from None
    at = max(target, 1)
    window = state.entries[max(1, at - vlv.before) - 1:min(n, at + vlv.after)]
    if await _send(searcher, op, reply, window, op.sizeLimit):
        raise _Failed(ldaperrors.LDAPSizeLimitExceeded(""), [sortResponse(0)])
    return [sortResponse(0), vlvResponse(target, n, 0, contextID)]

