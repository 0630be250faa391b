"""
A kit for writing backends: base classes that do what every backend does
(scopes, filters, cooperation with the reactor, binds, the write
transaction and its hooks), so that an author writes only where entries
come from and where they go.

  - L{ReadOnlySource}: the author implements L{ReadOnlySource.getEntry}
    (an entry by normalised DN) and L{ReadOnlySource.listChildren} (the
    entries directly below one), and optionally
    L{ReadOnlySource.lookup} (the entries with a value, for equality
    assertions an index of the source answers). Writes are refused with
    unwillingToPerform.
  - L{ReadWriteMapping}: a read-only source that also writes, one
    callback per kind of change (L{ReadWriteMapping.addEntry},
    L{ReadWriteMapping.replaceEntry}, L{ReadWriteMapping.deleteEntry},
    optionally L{ReadWriteMapping.renameEntry}) inside a transaction the
    author's store begins (L{ReadWriteMapping.begin}, returning a
    L{SourceTransaction}).

What ldapd does above any backend is not repeated here: paging, sorting,
attribute selection, the size limit (the search's C{emit} raises when it
is reached), access control.

The author's methods are plain synchronous functions, called in the
reactor's thread. One style, and this one, because the plugins' C{check}
and C{txn} hooks are synchronous (L{ldapd.interfaces.ITransaction}): a
write's transaction must read and write the store synchronously, and
since it runs from start to commit without yielding to the reactor, no
other operation ever sees it half done, with no locking by the author. It
suits a store that answers in well under a millisecond (a local SQLite
file, a dict, a file read at start); the slow work of passwords (hashing,
verifying) is taken off the reactor by the kit. A source behind a network
(an HTTP API) implements L{ldapd.interfaces.IBackend} itself, with
C{async def} methods, as the proxy backend does.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, TypeVar

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from zope.interface import implementer

from ldapd import passwords
from ldapd.backends.base import checkPassword, noSuchObject
from ldapd.dn import DN
from ldapd.entry import Entry, Modification, SearchReference
from ldapd.filters import And, Equality, Filter, Or
from ldapd.interfaces import IBackend, IPasswordStorage, ITransaction, ITransactionHooks
from ldapd.operation import Operation, Scope
from ldapd.schema import Schema

__all__ = [
    "ReadOnlySource",
    "ReadWriteMapping",
    "SourceTransaction",
    "cleartextPassword",
    "planFilter",
]

#: How many entries a search examines between two yields to the reactor.
_BATCH = 256

_T = TypeVar("_T")


def planFilter(f: Filter, leaf: Callable[[Filter], set[_T] | None]) -> set[_T] | None:
    """
    The candidates that may match a filter, from what an index gives for
    its assertions: the intersection of what the indexed parts of an And
    give, the union of an Or's parts when every part is indexed.

    @param f: a compiled filter.
    @param leaf: the candidates of an assertion that is neither And nor
        Or, or C{None} when no index answers it.
    @return: a superset of the keys of the entries that match (to be
        tested with the filter), or C{None} when every entry must be tested.
    """
    if isinstance(f, And):
        best: set[_T] | None = None
        for part in f.parts:
            found = planFilter(part, leaf)
            if found is not None:
                best = found if best is None else best & found
        return best
    if isinstance(f, Or):
        union: set[_T] = set()
        for part in f.parts:
            found = planFilter(part, leaf)
            if found is None:
                return None
            union |= found
        return union
    return leaf(f)


def cleartextPassword(value: bytes) -> bytes | None:
    """
    The cleartext of a C{userPassword} value a client writes, for a store
    that keeps passwords in a format of its own.

    @param value: a value being stored.
    @return: the value itself when it has no C{{SCHEME}} prefix; C{None}
        when it is hashed (a hash a client wrote, or one the server made
        with L{ReadWriteMapping.storedPassword}).
    """
    try:
        scheme = passwords.schemeOf(value)
    except passwords.UnknownScheme:
        return None
    return value if scheme is None else None


@implementer(IBackend)
class ReadOnlySource(ABC):
    """
    A backend over a source of entries that ldapd does not write.

    Subclasses implement L{getEntry} and L{listChildren}, and L{lookup}
    where the source has indexes; L{bindEntry} to refuse some accounts
    binds; and C{open} and C{close} (returning Deferreds) when the source
    holds a connection. Entries are built with L{ldapd.entry.Entry} and
    the backend's L{schema}.

    @ivar suffix: the normalised suffix of the naming context.
    @ivar schema: the directory's schema.
    """

    def __init__(self, suffix: DN, schema: Schema, reactor: Any = None) -> None:
        """
        @param suffix: the normalised suffix.
        @param schema: the directory's schema.
        @param reactor: the reactor, whose thread pool verifies (and hashes)
            slow passwords; the global one by default.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.suffix = suffix
        self.schema = schema
        self.reactor = reactor

    # What the author writes

    @abstractmethod
    def getEntry(self, ndn: DN) -> Entry | None:
        """
        @param ndn: a normalised DN within the suffix.
        @return: its entry, or C{None} if there is none.
        """

    @abstractmethod
    def listChildren(self, ndn: DN) -> Iterable[Entry]:
        """
        @param ndn: the normalised DN of an entry that exists.
        @return: the entries directly below it, in a stable order (the
            kit takes them as it goes, and keeps nothing after a search).
        """

    def lookup(self, attribute: str, key: object) -> Iterable[Entry] | None:
        """
        The entries that hold a value, for an equality assertion that the
        source can answer from an index (a column with an index, a key of
        a dict) rather than by walking the tree. Every entry that holds
        the value must be among them; others may be (the kit tests each
        with the filter).

        @param attribute: the attribute type's name as the schema first
            names it (C{"uid"}, C{"mail"}, C{"uidNumber"}, C{"member"}); an
            assertion on a supertype (C{name}) asks for each subtype.
        @param key: the assertion value as the type's equality rule
            normalises it (case folded, spaces squeezed: C{"ada"}; an
            C{int} for integers; a normalised DN's text for C{member};
            an object class's OID).
        @return: the entries, or C{None} when the source has no index for
            C{attribute} (the default: every search walks the tree).
        """
        return None

    def bindEntry(self, ndn: DN) -> Entry | None:
        """
        The entry whose C{userPassword} a simple bind to C{ndn} is checked
        against.

        @param ndn: the normalised DN bound to.
        @return: the entry (L{getEntry}'s by default), or C{None} for an
            account that may not bind (disabled): the bind then fails with
            invalidCredentials, as for a wrong password.
        """
        return self.getEntry(ndn)

    def open(self) -> defer.Deferred[None]:
        """
        Make the source ready; nothing to do by default.
        """
        return defer.succeed(None)

    def close(self) -> defer.Deferred[None]:
        """
        Release the source; nothing to do by default.
        """
        return defer.succeed(None)

    # IBackend

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        return defer.maybeDeferred(self._get, ndn)

    def _get(self, ndn: DN) -> Entry:
        entry = self.getEntry(ndn)
        if entry is None:
            raise noSuchObject(ndn, self.suffix, self.getEntry)
        return entry

    def authenticate(self, op: Operation, ndn: DN, password: bytes) -> defer.Deferred[Entry]:
        try:
            entry = self.bindEntry(ndn)
        except Exception:
            return defer.fail()
        return checkPassword(self.reactor, entry, password)

    def search(
        self, op: Operation, emit: Callable[[Entry | SearchReference], Any]
    ) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _search(self, op: Operation, emit: Callable[[Entry | SearchReference], Any]) -> None:
        params = op.search
        assert params is not None, "search() needs op.search"
        base = self._get(params.base)
        examined = 0
        for entry in self._candidates(base, params.scope, params.filter):
            examined += 1
            if examined % _BATCH == 0:
                op.check()
                await op.cooperate()
            if params.filter.match(entry) is True:
                waiting = emit(entry)
                if waiting is not None:
                    await waiting

    def _candidates(self, base: Entry, scope: Scope, f: Filter) -> Iterator[Entry]:
        """
        The entries to test, parents before children: the base; its
        children; its subtree, walked depth first, or, when the source's
        indexes narrow the filter, the indexed entries within it.
        """
        if scope == Scope.BASE:
            yield base
            return
        baseDN = base.ndn
        planned = self._plan(f)
        if planned is not None:
            if scope == Scope.ONE:
                inScope = [e for e in planned if e.ndn.parent() == baseDN]
            else:
                inScope = [e for e in planned if e.ndn.isWithin(baseDN)]
            yield from sorted(inScope, key=lambda e: (len(e.ndn), str(e.ndn)))
            return
        if scope == Scope.ONE:
            yield from list(self.listChildren(baseDN))
            return
        yield base
        stack = [iter(list(self.listChildren(baseDN)))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            yield entry
            stack.append(iter(list(self.listChildren(entry.ndn))))

    def _plan(self, f: Filter) -> list[Entry] | None:
        """
        @return: the entries that may match C{f}, from L{lookup}; C{None}
            if it cannot narrow the search.
        """
        found: dict[DN, Entry] = {}

        def leaf(part: Filter) -> set[DN] | None:
            if not isinstance(part, Equality):
                return None
            keys: set[DN] = set()
            for at in self.schema.subtypes(part.type):
                entries = self.lookup(at.names[0] if at.names else at.oid, part.key)
                if entries is None:
                    return None
                for entry in entries:
                    found[entry.ndn] = entry
                    keys.add(entry.ndn)
            return keys

        planned = planFilter(f, leaf)
        return None if planned is None else [found[ndn] for ndn in planned]

    # Writes

    def add(self, op: Operation, entry: Entry, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return self._refuse()

    def delete(self, op: Operation, ndn: DN, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return self._refuse()

    def modify(self, op: Operation, ndn: DN, modifications: list[Modification],
               hooks: ITransactionHooks) -> defer.Deferred[Entry]:
        return self._refuse()

    def rename(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool,
               hooks: ITransactionHooks,
               modifications: Sequence[Modification] = ()) -> defer.Deferred[Entry]:
        return self._refuse()

    def _refuse(self) -> defer.Deferred[Any]:
        return defer.fail(ldaperrors.LDAPUnwillingToPerform("this naming context is read-only"))


class SourceTransaction(Protocol):
    """
    A transaction of the author's store, as L{ReadWriteMapping.begin}
    returns it: a database's transaction (SQLite's C{BEGIN}), or an undo
    log for a store that has none.
    """

    def commit(self) -> None:
        """
        Make the transaction's writes durable and visible. If it raises,
        the kit calls L{rollback} and the write fails.
        """

    def rollback(self) -> None:
        """
        Undo every write of the transaction.
        """


@implementer(IPasswordStorage)
class ReadWriteMapping(ReadOnlySource):
    """
    A backend over a store ldapd reads and writes, mapping entries onto
    the store's own records (someone else's tables, say).

    Each write (add, delete, modify, rename) is one transaction: the kit
    begins one with L{begin}, checks what the interface asks (the entry
    exists, or does not; its parent exists; it is a leaf), runs the
    plugins' C{check} hooks, calls the author's callback, runs the C{txn}
    hooks (which may write other entries through the transaction: through
    the same callbacks), and commits; if anything raises, it rolls back.
    Inside a transaction L{getEntry}, L{listChildren} and L{lookup} must
    see its writes (a single database connection does; so does a store
    written in place with an undo log).

    The callbacks refuse what the store cannot hold by raising an LDAP
    error (C{LDAPUnwillingToPerform}, C{LDAPObjectClassViolation}, ...).

    @ivar hashPassword: for a store that keeps passwords in a format of its
        own, a function making the stored form of a cleartext password;
        C{None} (the default) for a store that keeps C{userPassword} values
        as the directory gives them. When set, the passwords the server sets
        (Password Modify, generated ones, the password policy's hashing) are
        made in the store's format (L{storedPassword}), and every
        cleartext C{userPassword} value a client writes is replaced by its
        stored form before the transaction begins; both are hashed in the
        reactor's thread pool, taking their turn among the slow password
        work. Other values reach the callbacks as given.
    """

    hashPassword: Callable[[bytes], bytes] | None = None

    def __init__(self, suffix: DN, schema: Schema, reactor: Any = None) -> None:
        super().__init__(suffix, schema, reactor)
        # The stored forms made for each operation's writes, which are in
        # the store's format already, whatever they look like.
        self._made: weakref.WeakKeyDictionary[Operation, set[bytes]] = (
            weakref.WeakKeyDictionary())

    def storedPassword(self, op: Operation, ndn: DN, password: bytes
                       ) -> defer.Deferred[bytes | None]:
        """
        The stored form of a password the server sets (L{IPasswordStorage}):
        L{hashPassword}'s, or C{None} when the store keeps the directory's.
        """
        hasher = self.hashPassword
        if hasher is None:
            return defer.succeed(None)

        def made(stored: bytes) -> bytes:
            self._made.setdefault(op, set()).add(stored)
            return stored

        d: defer.Deferred[bytes | None] = passwords.verifierFor(self.reactor).hash(
            password, "", lambda p, _: hasher(p), slow=True).addCallback(made)
        return d

    @abstractmethod
    def begin(self) -> SourceTransaction:
        """
        @return: a new transaction of the store; one at a time.
        """

    @abstractmethod
    def addEntry(self, txn: SourceTransaction, op: Operation, entry: Entry) -> None:
        """
        Store a new entry; its parent exists and it does not.

        @param txn: the transaction.
        @param op: the operation the write is made for (the kit's own
            writes from a plugin's hooks carry the write's).
        @param entry: the entry, operational attributes included (the
            store keeps those it can).
        """

    @abstractmethod
    def replaceEntry(self, txn: SourceTransaction, op: Operation, old: Entry, new: Entry) -> None:
        """
        Store a changed entry of the same name (a modify).

        @param old: the entry as it is stored.
        @param new: the entry to store.
        """

    @abstractmethod
    def deleteEntry(self, txn: SourceTransaction, op: Operation, entry: Entry) -> None:
        """
        Remove a leaf entry.
        """

    def renameEntry(self, txn: SourceTransaction, op: Operation, old: Entry, new: Entry) -> None:
        """
        Rename or move an entry and the subtree below it. The new name is
        free and its parent exists, within the suffix and not below
        C{old}.

        By default, every entry of the subtree is deleted
        (L{deleteEntry}) and added under its new name (L{addEntry}), as a
        store keyed by name needs; a store whose records hold more than
        their entries show (or whose names follow from a column) renames
        in place.

        @param old: the entry as it is stored.
        @param new: the renamed entry (RDN values changed as asked, the
            server's modifications applied).
        """
        subtree = [old]
        at = 0
        while at < len(subtree):
            subtree.extend(self.listChildren(subtree[at].ndn))
            at += 1
        for entry in reversed(subtree):
            self.deleteEntry(txn, op, entry)
        self.addEntry(txn, op, new)
        for entry in subtree[1:]:
            self.addEntry(txn, op, entry.withDN(entry.dn.moved(old.dn, new.dn)))

    # IBackend's writes

    def add(self, op: Operation, entry: Entry, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._add(op, entry, hooks))

    async def _add(self, op: Operation, entry: Entry, hooks: ITransactionHooks) -> None:
        given = entry.get("userPassword")
        if given and self.hashPassword is not None:
            entry = entry.modified(await self._storedPasswords(
                op, [Modification("replace", "userPassword", given)]))

        def work(txn: _Transaction) -> None:
            if self.getEntry(entry.ndn) is not None:
                raise ldaperrors.LDAPEntryAlreadyExists("already exists")
            txn.checkParent(entry.ndn)
            hooks.check("add", op, txn, entry)
            self.addEntry(txn.store, op, entry)
            hooks.txn("add", op, txn, entry)

        self._write(op, work)

    def delete(self, op: Operation, ndn: DN, hooks: ITransactionHooks) -> defer.Deferred[None]:
        def work(txn: _Transaction) -> None:
            entry = txn.leaf(ndn)
            hooks.check("delete", op, txn, entry)
            self.deleteEntry(txn.store, op, entry)
            hooks.txn("delete", op, txn, entry)

        return defer.maybeDeferred(self._write, op, work)

    def modify(self, op: Operation, ndn: DN, modifications: list[Modification],
               hooks: ITransactionHooks) -> defer.Deferred[Entry]:
        return defer.Deferred.fromCoroutine(self._modify(op, ndn, modifications, hooks))

    async def _modify(self, op: Operation, ndn: DN, modifications: list[Modification],
                      hooks: ITransactionHooks) -> Entry:
        modifications = await self._storedPasswords(op, modifications)

        def work(txn: _Transaction) -> Entry:
            old = self._get(ndn)
            new = old.modified(modifications)
            hooks.check("modify", op, txn, old, new)
            self.replaceEntry(txn.store, op, old, new)
            hooks.txn("modify", op, txn, old, new)
            return self.getEntry(ndn) or new

        return self._write(op, work)

    def rename(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool,
               hooks: ITransactionHooks,
               modifications: Sequence[Modification] = ()) -> defer.Deferred[Entry]:
        def work(txn: _Transaction) -> Entry:
            old = self._get(ndn)
            if ndn == self.suffix:
                raise ldaperrors.LDAPUnwillingToPerform("cannot rename the suffix entry")
            new = old.renamed(newDN, deleteOldRDN)
            if modifications:
                new = new.modified(modifications)
            newParent = new.ndn.parent()
            if new.ndn != ndn and self.getEntry(new.ndn) is not None:
                raise ldaperrors.LDAPEntryAlreadyExists("entry already exists")
            if not newParent.isWithin(self.suffix) or self.getEntry(newParent) is None:
                raise noSuchObject(newParent.child(new.ndn.rdn), self.suffix, self.getEntry)
            if newParent.isWithin(ndn):
                raise ldaperrors.LDAPUnwillingToPerform("cannot move an entry below itself")
            hooks.check("rename", op, txn, old, new)
            self.renameEntry(txn.store, op, old, new)
            hooks.txn("rename", op, txn, old, new)
            return self.getEntry(new.ndn) or new

        return defer.maybeDeferred(self._write, op, work)

    def _write(self, op: Operation, work: Callable[[_Transaction], _T]) -> _T:
        """
        Run a write's work in a new transaction of the store: committed if
        it returns, rolled back if it (or the commit) raises.
        """
        store = self.begin()
        try:
            result = work(_Transaction(self, store, op))
            store.commit()
        except BaseException:
            store.rollback()
            raise
        return result

    # Passwords in the store's own format

    def _isPassword(self, modification: Modification) -> bool:
        at = self.schema.attributeType(modification.description.split(";", 1)[0])
        return at is not None and at.names[:1] == ("userPassword",)

    async def _storedPasswords(self, op: Operation,
                               modifications: Sequence[Modification]) -> list[Modification]:
        """
        @return: C{modifications}, for a store with its own password format
            (L{hashPassword}) with each C{userPassword} value they add whose
            cleartext is known in the store's format.
        """
        hasher = self.hashPassword
        if hasher is None:
            return list(modifications)
        verifier = passwords.verifierFor(self.reactor)
        made = self._made.get(op, set())
        result = []
        for m in modifications:
            if not (self._isPassword(m) and m.operation in ("add", "replace")):
                result.append(m)
                continue
            values = []
            for value in m.values:
                cleartext = None if value in made else cleartextPassword(value)
                if cleartext is not None:
                    value = await verifier.hash(cleartext, "", lambda p, _: hasher(p), slow=True)
                values.append(value)
            result.append(Modification(m.operation, m.description, tuple(values)))
        return result


@implementer(ITransaction)
class _Transaction:
    """
    A write of a L{ReadWriteMapping} in progress, as the plugins' hooks see
    it: their writes go through the mapping's callbacks, in the same
    transaction of the store.

    @ivar store: the store's transaction.
    """

    def __init__(self, mapping: ReadWriteMapping, store: SourceTransaction, op: Operation) -> None:
        self._mapping = mapping
        self.store = store
        self._op = op

    def checkParent(self, ndn: DN) -> None:
        """
        @raise ldapd.results.NoSuchObject: when the parent of C{ndn} (other
            than the suffix) does not exist.
        """
        mapping = self._mapping
        if ndn != mapping.suffix and mapping.getEntry(ndn.parent()) is None:
            raise noSuchObject(ndn, mapping.suffix, mapping.getEntry)

    def leaf(self, ndn: DN) -> Entry:
        """
        @return: the entry of C{ndn}.
        @raise ldapd.results.NoSuchObject: if there is none.
        @raise ldaperrors.LDAPNotAllowedOnNonLeaf: if it has children.
        """
        entry = self._mapping._get(ndn)
        if next(iter(self._mapping.listChildren(ndn)), None) is not None:
            raise ldaperrors.LDAPNotAllowedOnNonLeaf("subordinate objects must be deleted first")
        return entry

    def get(self, ndn: DN) -> Entry | None:
        return self._mapping.getEntry(ndn)

    def put(self, entry: Entry) -> None:
        mapping = self._mapping
        old = mapping.getEntry(entry.ndn)
        if old is not None:
            mapping.replaceEntry(self.store, self._op, old, entry)
            return
        self.checkParent(entry.ndn)
        mapping.addEntry(self.store, self._op, entry)

    def remove(self, ndn: DN) -> None:
        self._mapping.deleteEntry(self.store, self._op, self.leaf(ndn))
