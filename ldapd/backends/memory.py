"""
The in-memory backend: an indexed DIT held in the process.

Entries are kept by normalised DN with a numeric id each; equality, presence
and substring (trigram) indexes, configured per attribute type as slapd's
C{index} directive (and the sql backend's C{indexes}), map keys to postings
(a bare id, or a sorted array of ids), so an indexed search costs the same at
100,000 entries as at 1,000. Only the configured indexes are kept: every key
costs memory and time on each write. Stored entries share what they have in
common: the RDNs of their superiors and, through a bounded table, equal
values. Writes are synchronous and recorded in an undo log: if a hook or the
write itself fails, the log is replayed backwards and nothing has changed.
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_left
from datetime import datetime
from typing import Any, Callable, Collection, Iterable, Iterator, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from zope.interface import implementer

from ldapd._cache import LRU
from ldapd.backends.base import (
    BatchWrites,
    IndexConfig,
    checkPassword,
    holdingAny,
    noSuchObject,
    substringTexts,
)
from ldapd.backends.changelog import MemoryChangelog
from ldapd.backends.kit import planFilter
from ldapd.changes import ChangeRecord
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.filters import OBJECT_CLASS, Equality, Filter, Or, Present, Substrings
from ldapd.interfaces import (
    IBackend,
    IChangelog,
    IChangelogTransaction,
    ITransactionHooks,
    IWriteBatch,
    IWriteBatches,
)
from ldapd.operation import Operation, Scope
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.schema import AttributeType, Schema

__all__ = ["MemoryBackend", "MemoryBackendFactory", "DEFAULT_INDEXES"]

#: The indexes unless configured: the equality indexes of a usual slapd
#: (objectClass, the names clients look people and groups up by, group
#: members), entryUUID's (replication finds entries by it), and substrings
#: on the names clients complete.
DEFAULT_INDEXES = ("objectClass,uid,cn,mail,member,entryUUID eq", "uid,cn,mail sub")

#: The array type code of postings: unsigned ints of at least 32 bits.
_ID = "I" if array("I").itemsize >= 4 else "L"

#: How many entries a search examines between two yields to the reactor.
_BATCH = 256

#: Postings of at most this many ids are always read: their sets are cheap
#: to build (L{_narrows}).
_FEW = 256


class _Record:
    __slots__ = ("id", "entry", "children")

    def __init__(self, id: int, entry: Entry) -> None:
        self.id = id
        self.entry = entry
        # None until the first child: most entries are leaves.
        self.children: set[DN] | None = None


def _post(table: dict[Any, Any], key: Any, i: int) -> None:
    """
    Add id C{i} to the postings of C{key}. Postings are a bare id while a key
    has one entry (as unique values such as uid or entryUUID do), and a sorted
    C{array} of 32-bit ids from the second on: four bytes an id, where a set
    takes about forty.
    """
    current = table.get(key)
    if current is None:
        table[key] = i
    elif isinstance(current, int):
        if current != i:
            table[key] = array(_ID, (current, i) if current < i else (i, current))
    elif current[-1] < i:
        # Ids grow: loading and adding entries appends.
        current.append(i)
    else:
        at = bisect_left(current, i)
        if at == len(current) or current[at] != i:
            current.insert(at, i)


def _unpost(table: dict[Any, Any], key: Any, i: int) -> None:
    """
    Remove id C{i} from the postings of C{key}.
    """
    current = table.get(key)
    if current is None:
        return
    if isinstance(current, int):
        if current == i:
            del table[key]
        return
    at = bisect_left(current, i)
    if at < len(current) and current[at] == i:
        del current[at]
        if len(current) == 1:
            table[key] = current[0]


def _postings(table: dict[Any, Any], key: Any) -> tuple[int, ...] | array[int]:
    """
    @return: the ids posted under C{key}, in increasing order (not to be modified).
    """
    current = table.get(key)
    if current is None:
        return ()
    return (current,) if isinstance(current, int) else current


def _intersect(ids: set[int], postings: Sequence[int]) -> set[int]:
    """
    @return: the ids of C{ids} that are in the sorted C{postings}: by binary
        search when C{ids} is much the smaller, by a pass over C{postings}
        otherwise.
    """
    if len(ids) * 16 < len(postings):
        n = len(postings)
        return {i for i in ids if (at := bisect_left(postings, i)) < n and postings[at] == i}
    return ids.intersection(postings)


class _SharedValues:
    """
    The attribute values stored last (one value, or a tuple of them), so
    that an entry's values that equal another's (its object classes,
    creator, timestamps, frequent surnames) are held once. The table is
    bounded and keeps what recurs: a unique value soon leaves it.
    """

    def __init__(self, size: int = 16384) -> None:
        """
        @param size: the most values the table holds: enough for the values
            of a few thousand entries, so that a surname recurring in one
            entry out of a thousand is still found.
        """
        self._table: LRU[bytes | tuple[bytes, ...], bytes | tuple[bytes, ...]] = LRU(size)

    def __call__(self, values: bytes | tuple[bytes, ...]) -> bytes | tuple[bytes, ...]:
        """
        @param values: the values of an attribute about to be stored.
        @return: equal values already stored, or C{values}.
        """
        found = self._table.get(values)
        if found is not None:
            return found
        self._table.put(values, values)
        return values


def _sharedNames(entry: Entry, parent: Entry) -> tuple[DN, DN]:
    """
    An entry's names with the parts that name its parent taken from the
    parent's names: the RDNs of the superiors are then held once, not once
    an entry. A name written as it is normalised (C{uid=alice}, say) is one
    object for both.

    @param entry: an entry about to be stored.
    @param parent: its parent's stored entry.
    @return: names equal to C{entry.dn} and C{entry.ndn}.
    """
    ndn, dn = entry.ndn, entry.dn
    if ndn.rdns[1:] is not parent.ndn.rdns:
        ndn = DN(ndn.rdns[:1] + parent.ndn.rdns)
    if dn == ndn:
        return ndn, ndn
    if dn.rdns[1:] == parent.dn.rdns and dn.rdns[1:] is not parent.dn.rdns:
        dn = DN(dn.rdns[:1] + parent.dn.rdns)
    return dn, ndn


#: The marks a normalised value is wrapped in for its substring keys: two
#: before it and two after, so that an initial or a final piece of one or
#: two characters has a trigram of its own (C{"\x02\x02a"} for C{a*}). A
#: value holding the marks itself gets keys that are too many, never too
#: few: the filter settles what the keys let through.
_START = "\x02\x02"
_END = "\x03\x03"


def _trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def _valueGrams(text: str) -> set[str]:
    """
    @param text: a value normalised by its type's substrings rule.
    @return: its keys in a substring index.
    """
    return _trigrams(_START + text + _END)


def _assertionGrams(f: Substrings) -> set[str]:
    """
    @return: keys that every value a substrings assertion matches has
        (L{_valueGrams}): the trigrams of its initial piece after the start
        marks, of its final piece before the end marks, and of its middle
        pieces (none in a piece shorter than three characters). One mark
        is enough beside a piece of two characters or more: a value's
        C{"\x02ab"} is always after the other start mark.
    """
    grams: set[str] = set()
    if f.initial:
        grams |= _trigrams(_START[len(f.initial) > 1 :] + f.initial)
    for piece in f.any:
        grams |= _trigrams(piece)
    if f.final:
        grams |= _trigrams(f.final + _END[len(f.final) > 1 :])
    return grams


def _narrows(n: int, total: int) -> bool:
    """
    Whether a posting narrows a search enough to be read: one that holds
    more than half of the entries (and more than L{_FEW}) leaves most of
    them to test, and building the set of its ids costs about as much as
    testing every entry; it is left to the filter.

    @param n: how many ids the posting holds.
    @param total: how many entries there are.
    """
    return n * 2 <= total or n <= _FEW


def _common(postings: list[Sequence[int]], total: int) -> set[int] | None:
    """
    The ids in all of C{postings}, or some more: from the shortest posting,
    intersected with the others that narrow (L{_narrows}).

    @param postings: the postings of the keys of one assertion.
    @param total: how many entries there are.
    @return: the ids, or C{None} when no posting narrows the search.
    """
    postings = sorted(postings, key=len)
    if not postings or not _narrows(len(postings[0]), total):
        return None
    ids = set(postings[0])
    for hit in postings[1:]:
        if not ids or not _narrows(len(hit), total):
            break
        ids = _intersect(ids, hit)
    return ids


@implementer(IBackend, IChangelog, IWriteBatches)
class MemoryBackend:
    """
    An indexed in-memory DIT for one naming context.

    @ivar suffix: the normalised suffix.
    """

    def __init__(
        self,
        suffix: DN,
        schema: Schema,
        reactor: Any = None,
        indexes: Iterable[str] = DEFAULT_INDEXES,
    ) -> None:
        """
        @param suffix: the normalised suffix of the naming context.
        @param schema: the directory's schema.
        @param reactor: the reactor, whose thread pool verifies slow password hashes.
        @param indexes: the index configuration, as L{IndexConfig} parses it.
        @raise ValueError: for an index configuration that is wrong.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.suffix = suffix
        self.schema = schema
        self._reactor = reactor
        self._records: dict[DN, _Record] = {}
        self._byId: dict[int, _Record] = {}
        self._ids = itertools.count(1)
        self._equality: dict[str, dict[Any, Any]] = {}
        self._presence: dict[str, Any] = {}
        self._substrings: dict[str, dict[str, Any]] = {}
        self.indexes = IndexConfig.parse(indexes, schema)
        self._kinds: dict[str, frozenset[str]] = {}
        self._shared = _SharedValues()
        self._changelog = MemoryChangelog()

    def __len__(self) -> int:
        return len(self._records)

    def open(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def close(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    # Reads

    def _lookup(self, ndn: DN) -> Entry | None:
        record = self._records.get(ndn)
        return record.entry if record is not None else None

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        entry = self._lookup(ndn)
        if entry is None:
            return defer.fail(noSuchObject(ndn, self.suffix, self._lookup))
        return defer.succeed(entry)

    def authenticate(self, op: Operation, ndn: DN, password: bytes) -> defer.Deferred[Entry]:
        return checkPassword(self._reactor, self._lookup(ndn), password)

    def search(self, op: Operation, emit: Callable[[Entry], Any]) -> defer.Deferred[None]:
        params = op.search
        assert params is not None, "search() needs op.search"
        base = self._records.get(params.base)
        if base is None:
            return defer.fail(noSuchObject(params.base, self.suffix, self._lookup))
        found = enumerate(self._candidates(base, params.scope, params.filter), 1)
        # Until something must be waited for (an entry's sending, or the
        # reactor every _BATCH candidates), without a coroutine: most
        # searches (an indexed one's few entries) end before.
        try:
            for n, record in found:
                if n % _BATCH == 0:
                    return defer.Deferred.fromCoroutine(
                        self._searchOn(op, emit, itertools.chain([(n, record)], found)))
                if params.filter.match(record.entry) is True:
                    waiting = emit(record.entry)
                    if waiting is not None:
                        return defer.Deferred.fromCoroutine(
                            self._searchOn(op, emit, found, waiting))
        except Exception:
            return defer.fail()
        return defer.succeed(None)

    async def _searchOn(self, op: Operation, emit: Callable[[Entry], Any],
                        found: Iterator[tuple[int, _Record]],
                        waiting: defer.Deferred[None] | None = None) -> None:
        """
        Go on with a search once C{waiting} has fired: test and emit the
        numbered candidates C{found}, letting the reactor serve others
        every L{_BATCH}.
        """
        params = op.search
        assert params is not None
        if waiting is not None:
            await waiting
        for n, record in found:
            if n % _BATCH == 0:
                op.check()
                await op.cooperate()
            if params.filter.match(record.entry) is True:
                waiting = emit(record.entry)
                if waiting is not None:
                    await waiting

    def _findEqual(self, at: AttributeType, keys: Collection[Any]) -> list[Entry]:
        """
        The entries holding a value of C{at} keyed by one of C{keys}
        (L{IWriteBatch.findEqual}), from the equality index if C{at} has one.
        """
        ids = self._plan(Or([Equality(at, (), key) for key in keys]))
        records = self._byId.values() if ids is None else (self._byId[i] for i in sorted(ids))
        return holdingAny((r.entry for r in records), at, keys)

    def _candidates(self, base: _Record, scope: Scope, f: Filter) -> Iterator[_Record]:
        """
        The records to test, in id order, narrowed by the indexes where the
        filter allows. The ids are taken first, so that writes while a search
        waits (between pages) do not disturb it; removed entries are skipped.
        """
        if scope == Scope.BASE:
            yield base
            return
        ids = self._plan(f)
        baseDN = base.entry.ndn
        if ids is not None:
            if scope == Scope.ONE:
                inScope = lambda r: r.entry.ndn.parent() == baseDN  # noqa: E731
            else:
                inScope = lambda r: r.entry.ndn.isWithin(baseDN)  # noqa: E731
            chosen = sorted(ids)
        elif scope == Scope.ONE:
            chosen = sorted(self._records[c].id for c in base.children or ())
            inScope = None
        elif baseDN == self.suffix:
            chosen = list(self._byId)
            inScope = None
        else:
            chosen = sorted(r.id for r in self._subtree(base))
            inScope = None
        for i in chosen:
            record = self._byId.get(i)
            if record is not None and (inScope is None or inScope(record)):
                yield record

    def _subtree(self, record: _Record) -> Iterator[_Record]:
        stack = [record]
        while stack:
            r = stack.pop()
            yield r
            stack.extend(self._records[c] for c in r.children or ())

    def _plan(self, f: Filter) -> set[int] | None:
        """
        The ids that may match C{f}, from the indexes; C{None} if the indexes
        cannot narrow it (every entry must be tested).
        """
        return planFilter(f, self._planAssertion)

    def _planAssertion(self, f: Filter) -> set[int] | None:
        """
        The ids that may match an assertion (not And nor Or), for L{_plan}.
        """
        if isinstance(f, Equality):
            types = self._indexed(f, "eq")
            if types is None:
                return None
            return self._union([_postings(self._equality.get(at.oid, {}), f.key) for at in types])
        if isinstance(f, Present):
            types = self._indexed(f, "pres")
            if types is None:
                return None
            return self._union([_postings(self._presence, at.oid) for at in types])
        if isinstance(f, Substrings):
            return self._planSubstrings(f)
        return None

    def _union(self, postings: list[Sequence[int]]) -> set[int] | None:
        """
        @return: the ids in any of C{postings}, or C{None} if they are too
            many to narrow a search (L{_narrows}).
        """
        if not _narrows(sum(map(len, postings)), len(self._byId)):
            return None
        found: set[int] = set()
        for ids in postings:
            found.update(ids)
        return found

    def _indexKinds(self, oid: str) -> frozenset[str]:
        """
        @return: the kinds of index the attribute type of C{oid} has.
        """
        kinds = self._kinds.get(oid)
        if kinds is None:
            kinds = self._kinds[oid] = self.indexes.kinds(oid)
        return kinds

    def _indexed(self, f: Equality | Present | Substrings, kind: str) -> Iterable[Any] | None:
        """
        @return: the attribute types an assertion applies to (its own and
            its subtypes), if they all have an index of C{kind}; else C{None}.
        """
        types = self.schema.subtypes(f.type)
        if all(kind in self._indexKinds(at.oid) for at in types):
            return types
        return None

    def _planSubstrings(self, f: Substrings) -> set[int] | None:
        """
        The ids that may match a substrings assertion: those holding every
        trigram of its pieces (L{_assertionGrams}) in a value of one of the
        types it applies to, if they are all indexed with the rule the
        assertion is tested with.
        """
        types = self._indexed(f, "sub")
        if types is None or any(at.substr.oid != f.rule.oid for at in types):
            return None
        grams = _assertionGrams(f)
        if not grams:
            return None
        found: set[int] = set()
        for at in types:
            index = self._substrings.get(at.oid, {})
            ids = _common([_postings(index, gram) for gram in grams], len(self._byId))
            if ids is None:
                return None
            found |= ids
        return found

    # Indexes

    def _indexKeys(
        self, entry: Entry, types: set[AttributeType] | None = None
    ) -> dict[tuple[str, str], set[Any]]:
        """
        Every index key of an entry, by index: C{("eq", oid)} and
        C{("sub", oid)} for an attribute type's equality and substring
        indexes, C{("pres", "")} for presence (whose keys are the OIDs).

        @param types: if given, only the keys of these attribute types.
        """
        schema = self.schema
        keys: dict[tuple[str, str], set[Any]] = {}
        for attr in entry:
            if types is not None and attr.type not in types:
                continue
            oid = attr.type.oid
            kinds = self._indexKinds(oid)
            if not kinds:
                continue
            if "pres" in kinds:
                keys.setdefault(("pres", ""), set()).add(oid)
            if "eq" in kinds:
                found = keys.setdefault(("eq", oid), set())
                found.update(attr.keys(schema))
                if oid == OBJECT_CLASS:
                    for key in list(found):
                        found.update(schema.superclasses(key))
            if "sub" in kinds:
                grams = keys.setdefault(("sub", oid), set())
                for text in substringTexts(schema, attr):
                    grams |= _valueGrams(text)
        return keys

    def _table(self, index: tuple[str, str]) -> dict[Any, Any]:
        """
        @param index: an index, as L{_indexKeys} names it.
        @return: its postings by key.
        """
        kind, oid = index
        if kind == "pres":
            return self._presence
        return (self._equality if kind == "eq" else self._substrings).setdefault(oid, {})

    def _index(self, record: _Record) -> None:
        self._post(record.id, self._indexKeys(record.entry))

    def _unindex(self, record: _Record) -> None:
        self._unpost(record.id, self._indexKeys(record.entry))

    def _post(self, i: int, keys: dict[tuple[str, str], set[Any]]) -> None:
        for index, found in keys.items():
            table = self._table(index)
            for key in found:
                _post(table, key, i)

    def _unpost(self, i: int, keys: dict[tuple[str, str], set[Any]]) -> None:
        for index, found in keys.items():
            table = self._table(index)
            for key in found:
                _unpost(table, key, i)

    # The primitive changes a transaction is made of

    def _insert(self, entry: Entry, id: int | None = None) -> None:
        parent = self._records.get(entry.ndn.parent())
        dn, ndn = entry.dn, entry.ndn
        if parent is not None and entry.ndn != self.suffix:
            dn, ndn = _sharedNames(entry, parent.entry)
        entry = entry.compacted(dn, ndn, self._shared)
        record = _Record(next(self._ids) if id is None else id, entry)
        self._records[entry.ndn] = record
        self._byId[record.id] = record
        if id is not None and len(self._byId) > 1 and id < max(self._byId):
            self._byId = dict(sorted(self._byId.items()))
        if parent is not None and entry.ndn != self.suffix:
            if parent.children is None:
                parent.children = set()
            parent.children.add(entry.ndn)
        self._index(record)

    def _remove(self, ndn: DN) -> _Record:
        record = self._records.pop(ndn)
        del self._byId[record.id]
        parent = self._records.get(ndn.parent())
        if parent is not None:
            if parent.children:
                parent.children.discard(ndn)
        self._unindex(record)
        return record

    def _replace(self, entry: Entry) -> Entry:
        """
        Store a changed entry in place of the one of the same name. Only the
        index keys of the attribute types that changed are computed, and only
        those that differ are removed and added: a Modify touches a few
        attributes, and the postings of the others (large arrays for common
        values) stay as they are.
        """
        record = self._records[entry.ndn]
        old = record.entry
        entry = entry.compacted(entry.dn, entry.ndn, self._shared)
        changed = old.changedTypes(entry)
        before = self._indexKeys(old, changed)
        after = self._indexKeys(entry, changed)
        self._unpost(record.id, {i: keys - after.get(i, set()) for i, keys in before.items()})
        record.entry = entry
        self._post(record.id, {i: keys - before.get(i, set()) for i, keys in after.items()})
        return old

    # Changelog

    def changes(self, after: int, limit: int) -> defer.Deferred[list[ChangeRecord]]:
        return defer.succeed(self._changelog.changes(after, limit))

    def changeBounds(self) -> defer.Deferred[tuple[ChangeRecord | None, ChangeRecord | None]]:
        return defer.succeed(self._changelog.bounds())

    def trimChanges(self, before: datetime | None, keep: int | None) -> defer.Deferred[int]:
        return defer.succeed(self._changelog.trim(before, keep))

    # Writes

    def batch(self) -> _Batch:
        """
        Begin a batch of writes (L{IWriteBatches}): they are made at once,
        seen at once by every reader, and undone by its C{rollback}.
        """
        return _Batch(self)

    def _write(self, work: Callable[[_Transaction], Any]) -> defer.Deferred[Any]:
        txn = _Transaction(self)
        try:
            result = work(txn)
        except BaseException:
            txn.rollback()
            return defer.fail()
        return defer.succeed(result)

    def _checkParent(self, ndn: DN) -> None:
        if ndn == self.suffix:
            return
        if ndn.parent() not in self._records:
            raise noSuchObject(ndn, self.suffix, self._lookup)

    def add(self, op: Operation, entry: Entry, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return self._write(self._adding(op, entry, hooks))

    def _adding(
        self, op: Operation, entry: Entry, hooks: ITransactionHooks
    ) -> Callable[[_Transaction], None]:
        """
        @return: the work of an add, for L{_write} or a batch.
        """

        def work(txn: _Transaction) -> None:
            if entry.ndn in self._records:
                raise ldaperrors.LDAPEntryAlreadyExists("already exists")
            self._checkParent(entry.ndn)
            hooks.check("add", op, txn, entry)
            txn.put(entry)
            hooks.txn("add", op, txn, entry)

        return work

    def delete(self, op: Operation, ndn: DN, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return self._write(self._deleting(op, ndn, hooks))

    def _deleting(self, op: Operation, ndn: DN, hooks: ITransactionHooks) -> Callable[[_Transaction], None]:
        """
        @return: the work of a delete, for L{_write} or a batch.
        """

        def work(txn: _Transaction) -> None:
            record = self._records.get(ndn)
            if record is None:
                raise noSuchObject(ndn, self.suffix, self._lookup)
            if record.children:
                raise ldaperrors.LDAPNotAllowedOnNonLeaf("subordinate objects must be deleted first")
            hooks.check("delete", op, txn, record.entry)
            txn.remove(ndn)
            hooks.txn("delete", op, txn, record.entry)

        return work

    def modify(
        self,
        op: Operation,
        ndn: DN,
        modifications: list[Modification],
        hooks: ITransactionHooks,
    ) -> defer.Deferred[Entry]:
        return self._write(self._modifying(op, ndn, modifications, hooks))

    def _modifying(self, op: Operation, ndn: DN, modifications: list[Modification],
                   hooks: ITransactionHooks) -> Callable[[_Transaction], Entry]:
        """
        @return: the work of a modify, for L{_write} or a batch.
        """

        def work(txn: _Transaction) -> Entry:
            old = self._lookup(ndn)
            if old is None:
                raise noSuchObject(ndn, self.suffix, self._lookup)
            new = old.modified(modifications)
            hooks.check("modify", op, txn, old, new)
            txn.put(new)
            hooks.txn("modify", op, txn, old, new)
            return new

        return work

    def rename(
        self,
        op: Operation,
        ndn: DN,
        newDN: DN,
        deleteOldRDN: bool,
        hooks: ITransactionHooks,
        modifications: Sequence[Modification] = (),
    ) -> defer.Deferred[Entry]:
        return self._write(self._renaming(op, ndn, newDN, deleteOldRDN, hooks, modifications))

    def _renaming(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool,
                  hooks: ITransactionHooks,
                  modifications: Sequence[Modification]) -> Callable[[_Transaction], Entry]:
        """
        @return: the work of a rename, for L{_write} or a batch.
        """

        def work(txn: _Transaction) -> Entry:
            record = self._records.get(ndn)
            if record is None:
                raise noSuchObject(ndn, self.suffix, self._lookup)
            if ndn == self.suffix:
                raise ldaperrors.LDAPUnwillingToPerform("cannot rename the suffix entry")
            old = record.entry
            new = old.renamed(newDN, deleteOldRDN)
            if modifications:
                new = new.modified(modifications)
            newParent = new.ndn.parent()
            if new.ndn != ndn and new.ndn in self._records:
                raise ldaperrors.LDAPEntryAlreadyExists("entry already exists")
            if newParent not in self._records:
                raise noSuchObject(newParent.child(new.ndn.rdn), self.suffix, self._lookup)
            if newParent.isWithin(ndn):
                raise ldaperrors.LDAPUnwillingToPerform("cannot move an entry below itself")
            hooks.check("rename", op, txn, old, new)
            subtree = [r.entry for r in self._subtree(record)][1:]
            for entry in reversed(subtree):
                txn.remove(entry.ndn)
            txn.remove(ndn)
            txn.put(new)
            for entry in sorted(subtree, key=lambda e: len(e.ndn)):
                txn.put(entry.withDN(entry.dn.moved(old.dn, new.dn)))
            hooks.txn("rename", op, txn, old, new)
            return new

        return work


@implementer(IChangelogTransaction)
class _Transaction:
    """
    A write in progress on a L{MemoryBackend}, with the undo log that rolls it back.
    """

    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend
        self._undo: list[Callable[[], Any]] = []

    def get(self, ndn: DN) -> Entry | None:
        return self._backend._lookup(ndn)

    def put(self, entry: Entry) -> None:
        backend = self._backend
        if entry.ndn in backend._records:
            old = backend._replace(entry)
            self._undo.append(lambda: backend._replace(old))
        else:
            backend._checkParent(entry.ndn)
            backend._insert(entry)
            self._undo.append(lambda: backend._remove(entry.ndn))

    def remove(self, ndn: DN) -> None:
        backend = self._backend
        record = backend._records.get(ndn)
        if record is None:
            raise noSuchObject(ndn, backend.suffix, backend._lookup)
        if record.children:
            raise ldaperrors.LDAPNotAllowedOnNonLeaf("subordinate objects must be deleted first")
        backend._remove(ndn)
        self._undo.append(lambda: backend._insert(record.entry, record.id))

    def appendChange(self, record: ChangeRecord) -> int:
        number, undo = self._backend._changelog.append(record)
        self._undo.append(undo)
        return number

    @property
    def mark(self) -> int:
        """
        Where the undo log is now, for L{rollback}.
        """
        return len(self._undo)

    def rollback(self, mark: int = 0) -> None:
        """
        Undo every change made since C{mark} (all of them by default),
        newest first.
        """
        while len(self._undo) > mark:
            self._undo.pop()()


@implementer(IWriteBatch)
class _Batch(BatchWrites):
    """
    A batch of writes on a L{MemoryBackend} (L{IWriteBatch}): its writes
    are made at once, each rolled back alone if it fails, and all of them
    undone by L{rollback} until L{commit} forgets how.
    """

    def __init__(self, backend: MemoryBackend) -> None:
        super().__init__(backend, self._write)
        self._txn: _Transaction | None = _Transaction(backend)

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        return self._backend.get(op, ndn)

    def search(self, op: Operation, emit: Callable[[Entry], Any]) -> defer.Deferred[None]:
        return self._backend.search(op, emit)

    def findEqual(self, op: Operation, at: AttributeType,
                  keys: Collection[Any]) -> defer.Deferred[list[Entry]]:
        return defer.succeed(self._backend._findEqual(at, keys))

    def _write(self, work: Callable[[_Transaction], Any]) -> defer.Deferred[Any]:
        txn = self._txn
        if txn is None:
            return defer.fail(RuntimeError("the write batch is over"))
        mark = txn.mark
        try:
            result = work(txn)
        except BaseException:
            txn.rollback(mark)
            return defer.fail()
        return defer.succeed(result)

    def commit(self) -> defer.Deferred[None]:
        self._txn = None
        return defer.succeed(None)

    def rollback(self) -> defer.Deferred[None]:
        txn, self._txn = self._txn, None
        if txn is not None:
            txn.rollback()
        return defer.succeed(None)


class MemoryBackendFactory:
    """
    Builds a L{MemoryBackend} from a C{[[database]]} table with C{backend = "memory"}.
    """

    name = "memory"
    description = "An indexed in-memory DIT (contents are lost when the server stops)."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> MemoryBackend:
        """
        @param table: the backend's keys: C{indexes}, a list of
            C{"<types> <kinds>"} strings (see L{IndexConfig}).
        @param context: the database's context.
        @raise ldapd.registry.ConfigError: for an unknown key, attribute or kind.
        """
        indexes = ConfigTable(table, context, {"indexes"}).strings(
            "indexes", list(DEFAULT_INDEXES), "a list of strings like \"uid,cn eq,sub\"")
        assert context.suffix is not None
        try:
            return MemoryBackend(context.suffix, context.schema, context.reactor, indexes)
        except ValueError as e:
            raise context.error("indexes", str(e)) from None

