"""
The interfaces that backends and operation plugins implement.

Every backend method returns a C{Deferred}. Writes are transactions: the backend
calls the chain's C{check} hooks before it changes anything and its C{txn}
hooks after, before it commits; an exception from either (or from the backend)
rolls the whole write back. Hooks see the transaction as an L{ITransaction}; the
Directory's as an L{IPluginTransaction}, with which a plugin changes other entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from datetime import datetime

    from twisted.internet.defer import Deferred

    from ldapd.changes import ChangeRecord
    from ldapd.dn import DN
    from ldapd.entry import Entry, Modification, SearchReference
    from ldapd.operation import Operation
    from ldapd.schema import AttributeType

__all__ = [
    "IBackend",
    "IBackendCompare",
    "IChangelog",
    "IChangelogTransaction",
    "IOperationPlugin",
    "IPasswordStorage",
    "IPluginTransaction",
    "IResolvingBackend",
    "ITransaction",
    "ITransactionHooks",
    "IWriteBatch",
    "IWriteBatches",
]


class ITransaction(Interface):
    """
    One write transaction, as a backend offers it to C{check_*} and C{txn_*}
    hooks. Its methods are synchronous: hooks run inside the transaction (in
    the backend's thread, for backends that use one). Everything done through
    it commits or rolls back with the write.
    """

    def get(ndn: DN) -> Entry | None:
        """
        Read an entry as the transaction sees it.

        @param ndn: the normalised DN.
        @type ndn: L{ldapd.dn.DN}
        @return: the entry, or C{None}.
        @rtype: L{ldapd.entry.Entry} or C{None}
        """

    def put(entry: Entry) -> None:
        """
        Add an entry, or replace the entry of the same normalised DN.

        @param entry: the entry; its parent must exist.
        @type entry: L{ldapd.entry.Entry}
        """

    def remove(ndn: DN) -> None:
        """
        Delete a leaf entry.

        @param ndn: the normalised DN.
        @type ndn: L{ldapd.dn.DN}
        """


class IChangelogTransaction(ITransaction):
    """
    The transaction of a backend that keeps a changelog (L{IChangelog}):
    what the C{changelog} plugin's C{txn_*} hooks append commits or rolls
    back with the write itself, so the log never disagrees with the data.
    """

    def appendChange(record: ChangeRecord) -> int:
        """
        Append a change to the backend's changelog.

        @param record: the change; its C{number} is ignored.
        @type record: L{ldapd.changes.ChangeRecord}
        @return: the number the change got: greater than every number the
            changelog has given, and, once committed, read back by
            L{IChangelog.changes} after every change committed before it
            (the backend serialises appends so commit order and number
            order agree).
        @rtype: C{int}
        """


class IPluginTransaction(ITransaction):
    """
    The transaction as the Directory hands it to the plugin chain's
    C{check_*} and C{txn_*} hooks: the backend's (an
    L{IChangelogTransaction} too when the backend's is one), and a way for
    a plugin to change another entry as a write of its own, as slapd's
    overlays make internal modifies and 389's betxn plugins internal
    operations in the same transaction.
    """

    def modify(op: Operation, ndn: DN, modifications: Sequence[Modification]) -> None:
        """
        Change another entry in this transaction, once the write's own
        hooks have all run: the modifications are applied to the entry as
        the transaction then holds it, stamped as a write of C{op}
        (C{modifiersName} its identity, C{modifyTimestamp}, a new
        C{entryCSN}), and passed to the chain's C{check_modify} and
        C{txn_modify} hooks as a modify of its own (so that the
        C{changelog} plugin records it, after the write that caused it,
        and replicas get it). Nothing happens if the entry does not exist
        by then; a hook that raises rolls back everything.

        @param op: the plugin's internal L{ldapd.operation.Operation}.
        @param ndn: the normalised DN of the entry.
        @type ndn: L{ldapd.dn.DN}
        @param modifications: the L{ldapd.entry.Modification}s.
        """


class ITransactionHooks(Interface):
    """
    What a backend calls inside a write transaction: the plugin chain's
    C{check_<op>} and C{txn_<op>} hooks. A backend never sees plugins themselves.
    """

    def check(operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        """
        Run the C{check_<operation>} hooks, before the write.

        @param operation: C{"add"}, C{"delete"}, C{"modify"} or C{"rename"}.
        @param op: the L{ldapd.operation.Operation}.
        @param txn: the L{ITransaction}.
        @param args: the operation's entries: C{(entry,)} for add and delete,
            C{(old, new)} for modify and rename.
        @raise ldaptor.protocols.ldap.ldaperrors.LDAPException: to refuse the write.
        """

    def txn(operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        """
        Run the C{txn_<operation>} hooks, after the write and before commit.
        Arguments as for L{check}.
        """


class IBackend(Interface):
    """
    Where the entries of one naming context live.

    A backend stores and finds entries; it knows nothing of access control or
    policy. DNs it receives are normalised (L{ldapd.schema.Schema.normalizeDN}).
    """

    suffix = Attribute("The normalised DN of the naming context (L{ldapd.dn.DN}).")

    def open() -> Deferred[None]:
        """
        Make the backend ready (connect, create tables, load seed data).

        @return: a Deferred that fires when it is ready.
        """

    def close() -> Deferred[None]:
        """
        Release what the backend holds.

        @return: a Deferred that fires when it is closed.
        """

    def get(op: Operation, ndn: DN) -> Deferred[Entry]:
        """
        Read one entry.

        @param op: the L{ldapd.operation.Operation}.
        @param ndn: the normalised DN.
        @return: a Deferred that fires with the L{ldapd.entry.Entry}, or fails
            with L{ldapd.results.NoSuchObject} carrying the matched DN (or
            L{ldapd.results.Referral}, from a backend that refers).
        """

    def search(op: Operation, emit: Callable[[Entry | SearchReference], Any]) -> Deferred[None]:
        """
        Find the entries of C{op.search} (base, scope, filter) and pass each to
        C{emit}, one by one, in a stable order (parents before children).

        The backend calls C{op.check()} as it goes (for abandon and the time
        limit) and awaits C{op.cooperate()} every few hundred entries.
        C{emit} may raise (size limit exceeded, abandon); the backend lets the
        exception propagate, and stops. It may return a Deferred: the backend
        waits for it before the next entry (paged results suspend a search
        that way, between pages).

        A backend that serves referral objects as such (the proxy, unless the
        client sent ManageDsaIT) may also call C{emit} with an
        L{ldapd.entry.SearchReference}: the Directory sends it as a
        SearchResultReference, counted neither in the size limit nor in a
        page (as slapd does). Backends that store referral objects as
        ordinary entries never do.

        @param op: the L{ldapd.operation.Operation}.
        @param emit: called with each matching L{ldapd.entry.Entry} (or
            L{ldapd.entry.SearchReference}).
        @return: a Deferred that fires when the search is complete, or fails
            with L{ldapd.results.NoSuchObject} if the base does not exist, or
            with L{ldapd.results.Referral} if it is held elsewhere.
        """

    def authenticate(op: Operation, ndn: DN, password: bytes) -> Deferred[Entry]:
        """
        Check a simple bind's password against the entry's userPassword.

        @param op: the bind L{ldapd.operation.Operation}.
        @param ndn: the normalised DN.
        @param password: the password given.
        @type password: C{bytes}
        @return: a Deferred that fires with the entry, or fails with
            C{LDAPInvalidCredentials} (also when the entry does not exist).
        """

    def add(op: Operation, entry: Entry, hooks: ITransactionHooks) -> Deferred[None]:
        """
        Add an entry in one transaction.

        @param entry: the complete entry, operational attributes included.
        @param hooks: the L{ITransactionHooks}.
        @return: a Deferred; fails with entryAlreadyExists, or noSuchObject
            (with the matched DN) when the parent does not exist.
        """

    def delete(op: Operation, ndn: DN, hooks: ITransactionHooks) -> Deferred[None]:
        """
        Delete a leaf entry in one transaction.

        @return: a Deferred; fails with noSuchObject or notAllowedOnNonLeaf.
        """

    def modify(
        op: Operation, ndn: DN, modifications: list[Modification], hooks: ITransactionHooks
    ) -> Deferred[Entry]:
        """
        Apply a Modify request in one transaction, with
        L{ldapd.entry.Entry.modified}.

        @param modifications: the L{ldapd.entry.Modification}s.
        @return: a Deferred that fires with the new entry.
        """

    def rename(
        op: Operation,
        ndn: DN,
        newDN: DN,
        deleteOldRDN: bool,
        hooks: ITransactionHooks,
        modifications: Sequence[Modification] = (),
    ) -> Deferred[Entry]:
        """
        Rename or move an entry and its whole subtree in one transaction.

        @param newDN: the new (non-normalised) DN.
        @param deleteOldRDN: whether to remove the old RDN's values.
        @param modifications: changes the server makes to the renamed entry
            itself (modifiersName, modifyTimestamp), applied with
            L{ldapd.entry.Entry.modified} after the RDN change.
        @return: a Deferred that fires with the renamed entry; fails with
            noSuchObject (entry or new superior missing) or entryAlreadyExists.
        """


class IPasswordStorage(Interface):
    """
    A backend that keeps passwords in a format of its own (an application's
    user table, read by the application too): when the server sets a
    password (Password Modify, a password it generates, the password
    policy's hashing of a cleartext write), it asks the backend holding the
    entry for the value to store, instead of hashing with its own
    C{password_hash}.
    """

    def storedPassword(op: Operation, ndn: DN, password: bytes) -> Deferred[bytes | None]:
        """
        @param op: the operation that sets the password.
        @param ndn: the normalised DN of the entry.
        @param password: the new password, in cleartext.
        @return: a Deferred firing with the C{userPassword} value to store,
            or with C{None} to have the server hash it with its own scheme.
        """


class IWriteBatches(Interface):
    """
    Optional, for an L{IBackend} that can make many writes in one
    transaction: one commit (one disk sync) for all of them, for a writer
    that makes many in a row (a syncrepl consumer catching up).
    """

    def batch() -> IWriteBatch:
        """
        Begin a batch of writes. One batch at a time per backend.

        @return: an L{IWriteBatch}.
        """


class IWriteBatch(Interface):
    """
    Reads and writes in one transaction of an L{IWriteBatches} backend,
    made in the order called.

    C{get}, C{search}, C{add}, C{delete}, C{modify} and C{rename} take the
    arguments and give the results of the backend's L{IBackend} methods;
    reads see the batch's writes, and each write is its own savepoint: one
    that fails is rolled back alone, the batch goes on. A caller may make
    several calls without awaiting each (a pipeline: the backend works on
    one while the caller prepares the next); a write called before an
    earlier write's failure reached its caller is then not made, and fails
    with L{ldapd.backends.base.WriteSkipped}, so that no write made on the
    assumption that the earlier one succeeded takes effect. What a batch
    writes is durable only once L{commit} returns; until then the
    backend's other writers wait (the sql backend), and whether its other
    readers see it depends on the backend (the sql backend's do not; the
    memory backend, which isolates nothing, shows it at once). A batch
    that cannot go on (its database ended the transaction) fails every
    later call; only L{rollback} is left.
    """

    def get(op: Operation, ndn: DN) -> Deferred[Entry]:
        """
        See L{IBackend.get}.
        """

    def search(op: Operation, emit: Callable[[Entry | SearchReference], Any]) -> Deferred[None]:
        """
        See L{IBackend.search}.
        """

    def findEqual(op: Operation, at: AttributeType, keys: Collection[Any]) -> Deferred[list[Entry]]:
        """
        Read, in one go, the entries of the database that hold a value of
        an attribute type whose equality key is one of C{keys}, as the
        filters C{(at=value)} would find them (through the type's equality
        index, when it has one): for a writer that looks up many entries by
        a unique value at once (a syncrepl consumer, a batch of changes'
        entries by entryUUID).

        @param op: the operation.
        @param at: the attribute type.
        @param keys: the equality keys (L{ldapd.schema.Schema.normalizeValue}).
        @return: a Deferred firing with a list of the entries, each once, in
            no particular order.
        """

    def add(op: Operation, entry: Entry, hooks: ITransactionHooks) -> Deferred[None]:
        """
        See L{IBackend.add}.
        """

    def delete(op: Operation, ndn: DN, hooks: ITransactionHooks) -> Deferred[None]:
        """
        See L{IBackend.delete}.
        """

    def modify(
        op: Operation, ndn: DN, modifications: list[Modification], hooks: ITransactionHooks
    ) -> Deferred[Entry]:
        """
        See L{IBackend.modify}.
        """

    def rename(
        op: Operation,
        ndn: DN,
        newDN: DN,
        deleteOldRDN: bool,
        hooks: ITransactionHooks,
        modifications: Sequence[Modification] = (),
    ) -> Deferred[Entry]:
        """
        See L{IBackend.rename}.
        """

    def commit() -> Deferred[None]:
        """
        Commit everything the batch wrote, and end it.

        @return: a Deferred that fires once it is committed (durably), or
            fails, having rolled everything back.
        """

    def rollback() -> Deferred[None]:
        """
        Undo everything the batch wrote, and end it.

        @return: a Deferred that fires when it is undone.
        """


class IResolvingBackend(Interface):
    """
    A backend whose names another server resolves (the proxy's upstream):
    it answers for referral objects and aliases itself (with referrals,
    continuation references, and the search's C{derefAliases} passed on),
    so the Directory does not resolve them (L{ldapd.naming}).
    """


class IBackendCompare(Interface):
    """
    Optional, for an L{IBackend} that answers Compare itself (the proxy
    forwards it upstream). For a backend that does not provide it, the
    Directory compares the entry it reads with C{get}.
    """

    def compare(
        op: Operation, ndn: DN, at: AttributeType, options: tuple[str, ...], value: bytes
    ) -> Deferred[bool]:
        """
        Carry out a Compare (RFC 4511 §4.10). The Directory has run the
        C{pre_compare} hooks before.

        @param op: the compare L{ldapd.operation.Operation}.
        @param ndn: the normalised DN of the entry.
        @param at: the L{ldapd.schema.AttributeType} of the assertion.
        @param options: the attribute description's options (lower case, sorted).
        @param value: the assertion value.
        @type value: C{bytes}
        @return: a Deferred that fires with whether the entry holds the
            value (compareTrue or compareFalse), or fails with the LDAP
            error (noSuchObject with the matched DN, noSuchAttribute, ...).
        """


class IChangelog(Interface):
    """
    Optional, for an L{IBackend} that keeps the changelog of its naming
    context (the memory and sql backends). Its write transactions provide
    L{IChangelogTransaction}. Records are kept until trimmed.
    """

    def changes(after: int, limit: int) -> Deferred[list[ChangeRecord]]:
        """
        Read committed changes in number order.

        @param after: a change number; only later changes are read (0: all).
        @param limit: the most records to return.
        @return: a Deferred firing with a list of L{ldapd.changes.ChangeRecord}.
        """

    def changeBounds() -> Deferred[tuple[ChangeRecord | None, ChangeRecord | None]]:
        """
        @return: a Deferred firing with the first and the last
            L{ldapd.changes.ChangeRecord} kept, or C{(None, None)} when the
            changelog is empty.
        """

    def trimChanges(before: datetime | None, keep: int | None) -> Deferred[int]:
        """
        Remove old changes: those made before C{before} and all but the
        C{keep} newest. The newest change is never removed, so that a
        consumer's cookie can be told to be still covered by the log.

        @param before: a UTC C{datetime.datetime}, or C{None}.
        @param keep: the number of newest records to keep, or C{None}.
        @return: a Deferred firing with the number of records removed.
        """


class IOperationPlugin(Interface):
    """
    Policy around operations. Every hook is optional, and declared: the chain
    finds them once, when it is built, refuses a method named like a hook that
    no operation runs (L{ldapd.plugins.chain.HOOKS}), and runs plugins in
    configuration order:

      - C{pre_<op>(op, ...)}: before the backend; may raise an LDAP error to
        refuse, or return a replacement for its first argument after C{op}
        (an entry for add, the modifications for modify). May return a Deferred.
      - C{check_<op>(op, txn, ...)} and C{txn_<op>(op, txn, ...)}: synchronous,
        inside the write's transaction (see L{ITransactionHooks}).
      - C{post_<op>(op, resultCode)}: after the outcome is decided and
        before the response is sent; cannot change the result, may add
        response controls to C{op.responseControls}. May return a Deferred.
      - C{filter_entry(op, entry)}: each search result; returns the entry to
        send (possibly with fewer attributes) or C{None} to withhold it.
      - C{disclose_entry(op, entry)}: whether the client may learn that an
        entry exists: an error's matched DN names only such an entry (the
        deepest superior every plugin discloses), and hasSubordinates and
        numSubordinates count only such children. May return a Deferred.
      - C{renew_search(op)}: a persistent or sync search is about to look at
        entries again, long after it began: what was kept of its client's
        access (group memberships, rules) is to be looked up anew. May
        return a Deferred.
      - C{attach(host)}: called once by the L{ldapd.directory.Directory} the
        plugin serves, with a L{ldapd.host.PluginHost}: through it the plugin
        reads and writes entries (C{host.directory.internalOperation()}) and
        registers what it adds (controls, extended operations, views, root
        DSE attributes, timers, open and close hooks), never by setting
        attributes on the Directory.

    C{<op>} is one of C{bind}, C{search}, C{compare}, C{add}, C{delete},
    C{modify}, C{rename}, C{extended} and C{authenticate} for C{pre_} and
    C{post_}; the four writes for C{check_} and C{txn_}. C{pre_bind(op,
    request)} runs before every bind is carried out (anonymous, simple or
    SASL; the L{ldapd.requests.BindRequest}). Every check of
    a password (simple bind, SASL PLAIN, the old password of a change) runs
    C{pre_authenticate(op, check)} (a L{ldapd.passwordcheck.PasswordCheck};
    refuse with invalidCredentials) and C{post_authenticate(op, resultCode)}
    with the check's own outcome, inside the operation that made it.
    """

    name = Attribute("The name the plugin is registered under.")
