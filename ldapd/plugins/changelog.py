"""
The C{changelog} plugin: what replication is built on.

Inside each write's transaction (its C{txn_*} hooks, as 389's retro
changelog is a betxn plugin) it

  - appends a L{ChangeRecord} to the changelog of the database written to,
    when its backend keeps one (L{IChangelog}: the memory and sql
    backends; the proxy's upstream servers keep their own);
  - keeps the suffix entry's C{contextCSN} (RFC 4533, as slapd's syncprov
    overlay): one value per server ID, the greatest CSN of the changes
    made with that server ID.

so a change and its record commit or roll back together. In a database
replicated between several suppliers (C{[[replica]]} tables with
C{multi_supplier = true}) it also stamps, on each entry a local write
changes, the CSN of each attribute it changed (L{ldapd.syncrepl.multi}),
by which the suppliers merge concurrent changes. It also sets the
server ID written into every C{entryCSN} (config key C{sid}), serves the
records of one database as the read-only retro changelog C{cn=changelog}
(draft-good-ldap-changelog, as 389 Directory Server serves it: only the
root DN reads it under the default access policy), names it in the root
DSE with C{firstChangeNumber} and C{lastChangeNumber}, and trims the
changelogs by age and count at start-up and every minute.

Configuration::

    [[plugin]]
    name = "changelog"
    max_age = "7d"          # records older than this are removed
    max_entries = 100000    # at most this many records are kept
    sid = 1                 # server ID (0 to 4095) in CSNs and contextCSN
    database = "dc=example,dc=com"   # whose records cn=changelog shows
    passwords = "omit"      # or "keep": password values in the records' changes

A record's C{changes} never holds the values of C{userPassword} (and its
subtypes), C{authPassword} or C{pwdHistory} unless C{passwords = "keep"}:
they are left out, as 389's retro changelog leaves out the attributes it is
told to (C{nsslapd-exclude-attrs}). Replication does not need them there:
the syncrepl provider sends entries as they are now.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ldapd.changes import ADD, DELETE, MODIFY, RENAME, ChangeRecord
from ldapd.csn import csnTime, mergeCSNs
from ldapd.directory import Database
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.extensions import ControlType
from ldapd.filters import (
    And,
    Approx,
    Equality,
    Filter,
    GreaterOrEqual,
    LessOrEqual,
    Or,
    Present,
    Substrings,
)
from ldapd.gentime import formatTime
from ldapd.host import PluginHost
from ldapd.interfaces import IBackend, IChangelog, IChangelogTransaction, IOperationPlugin
from ldapd.ldif import formatLine, formatModification
from ldapd.operation import Operation, Scope
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.results import NoSuchObject
from ldapd.schema import AttributeType, Schema
from ldapd.syncrepl.codec import SYNC_REQUEST, decodeSyncRequest
from ldapd.syncrepl.multi import created, stamped
from ldapd.syncrepl.provider import SyncProvider

__all__ = ["CHANGELOG_DN", "PASSWORD_HANDLING", "Changelog", "ChangelogFactory", "changeRecord"]

#: Where the retro changelog is served.
CHANGELOG_DN = "cn=changelog"

#: The C{changeType} of each kind of change.
_CHANGE_TYPES = {ADD: b"add", DELETE: b"delete", MODIFY: b"modify", RENAME: b"modrdn"}

#: Records read from a changelog at a time, by a search of cn=changelog.
_BATCH = 256

#: The attribute types of the records' entries.
_RECORD_TYPES = ("objectClass", "changeNumber", "targetDN", "changeType", "changes", "changeTime",
                 "targetEntryUUID", "newRDN", "deleteOldRDN", "newSuperior")

#: The values of C{passwords}: leave the password attributes out of the
#: records' C{changes} (the default), or keep them there.
PASSWORD_HANDLING = ("omit", "keep")

#: The attribute types (with their subtypes) C{passwords = "omit"} leaves
#: out: passwords and the hashes of former ones.
_PASSWORD_TYPES = ("userPassword", "authPassword", "pwdHistory")

#: Seconds between two trimmings.
_TRIM_INTERVAL = 60.0

_log = Logger()




def _lines(entry: Entry, skip: frozenset[str] = frozenset()) -> bytes:
    """
    @return: the attributes of C{entry} as LDIF lines, but those of the
        types named (lower-cased) in C{skip}.
    """
    return b"".join(formatLine(a.description, v) for a in entry
                    if a.type.name.lower() not in skip for v in a.values)


def _replacements(old: Entry, new: Entry, skip: frozenset[str] = frozenset()) -> bytes:
    """
    The difference between two versions of an entry as LDIF modify
    operations: C{replace: x} with the new values of each changed
    attribute, an empty C{replace: x} for each removed one. Attributes of
    the types named (lower-cased) in C{skip} are left out.
    """
    before = {a.description: a.values for a in old if a.type.name.lower() not in skip}
    out = []
    for attr in new:
        description = attr.description
        if attr.type.name.lower() in skip:
            continue
        # A changed entry shares its unchanged attributes with the old one,
        # so most comparisons are of one tuple with itself.
        if before.pop(description, None) != attr.values:
            out.append(formatModification("replace", description, attr.values))
    for description in before:
        out.append(formatModification("replace", description, ()))
    return b"".join(out)


def changeRecord(kind: str, old: Entry | None, new: Entry | None, csn: bytes,
                 withheld: frozenset[AttributeType] = frozenset()) -> ChangeRecord:
    """
    The changelog record of a write, with C{changes} as 389's retro
    changelog writes them: the entry's attributes for an add, C{replace}
    blocks for a modify and for the server's own changes to a renamed entry.

    @param kind: L{ADD}, L{DELETE}, L{MODIFY} or L{RENAME}.
    @param old: the entry before (C{None} for an add).
    @param new: the entry after (C{None} for a delete).
    @param csn: the change's CSN; its time is the record's.
    @param withheld: attribute types whose values (and changes) C{changes}
        leaves out.
    @return: the record, not yet numbered.
    """
    skip = frozenset(at.name.lower() for at in withheld)
    subject = new if old is None else old
    assert subject is not None
    uuid = subject.get("entryUUID")
    record = ChangeRecord(0, csn, csnTime(csn), kind, str(subject.dn),
                          uuid[0] if uuid else b"")
    if kind == ADD:
        assert new is not None
        return dataclasses.replace(record, changes=_lines(new, skip))
    if kind == MODIFY:
        assert old is not None and new is not None
        return dataclasses.replace(record, changes=_replacements(old, new, skip))
    if kind == RENAME:
        assert old is not None and new is not None
        schema = new.schema
        deleted = False
        for ava in old.dn.rdn:
            at = schema.attributeType(ava.type)
            if at is not None and not new.hasValue(at, ava.value.encode("utf-8")):
                deleted = True
        rdnTypes = frozenset(
            (at.name if at is not None else ava.type).lower()
            for ava in (*old.dn.rdn, *new.dn.rdn)
            for at in (schema.attributeType(ava.type),)
        )
        moved = new.ndn.parent() != old.ndn.parent()
        return dataclasses.replace(
            record,
            changes=_replacements(old, new, rdnTypes | skip),
            newRDN=str(DN(new.dn.rdns[:1])),
            deleteOldRDN=deleted,
            newSuperior=str(new.dn.parent()) if moved else None,
        )
    return record


@implementer(IOperationPlugin)
class Changelog:
    """
    Records every change in its database's changelog and keeps contextCSN.

    @ivar maxAge: records older than this are trimmed.
    @ivar maxEntries: at most this many records are kept (the newest).
    @ivar sid: the server ID written into CSNs.
    @ivar database: the suffix whose changelog C{cn=changelog} shows, or
        C{None} for the first database that keeps one.
    @ivar passwords: one of L{PASSWORD_HANDLING}: whether records' C{changes}
        leave password values out (C{"omit"}) or keep them.
    @ivar view: the database serving C{cn=changelog} (once attached, if a
        database keeps a changelog).
    """

    name = "changelog"

    def __init__(
        self,
        maxAge: timedelta = timedelta(days=7),
        maxEntries: int = 100000,
        sid: int = 0,
        database: DN | None = None,
        databaseError: Callable[[str], Exception] = ValueError,
        passwords: str = "omit",
    ) -> None:
        """
        @param maxAge: how long records are kept.
        @param maxEntries: how many records are kept at most.
        @param sid: the server ID, 0 to 4095.
        @param database: the suffix whose records C{cn=changelog} shows.
        @param databaseError: builds the error raised when C{database}
            names no database that keeps a changelog.
        @param passwords: one of L{PASSWORD_HANDLING}.
        @raise ValueError: for a server ID out of range or an unknown
            C{passwords}.
        """
        if not 0 <= sid <= 0xFFF:
            raise ValueError("sid must be between 0 and 4095")
        if passwords not in PASSWORD_HANDLING:
            raise ValueError(f"passwords must be one of {', '.join(PASSWORD_HANDLING)}")
        self.passwords = passwords
        self._withheld: frozenset[AttributeType] = frozenset()
        self.maxAge = maxAge
        self.maxEntries = maxEntries
        self.sid = sid
        self.database = database
        self._databaseError = databaseError
        self.directory: Any = None
        self._contextCSN: AttributeType | None = None
        self.view: Database | None = None
        self._source: IChangelog | None = None

    # Set-up

    def attach(self, host: PluginHost) -> None:
        """
        Set the server ID of the directory's changes, carry out the Sync
        Request control (the syncrepl provider), serve C{cn=changelog} from
        the changelog of the configured (or first) database that keeps one,
        and trim the changelogs every minute.

        @raise Exception: built by C{databaseError}, when the configured
            C{database} does not exist or keeps no changelog.
        """
        directory = self.directory = host.directory
        self._contextCSN = directory.schema.attributeType("contextCSN")
        if self.passwords == "omit":
            schema = directory.schema
            self._withheld = frozenset().union(*(
                schema.subtypes(at) for at in map(schema.attributeType, _PASSWORD_TYPES)
                if at is not None
            ))
        host.setServerId(self.sid)
        provider = SyncProvider(directory)
        host.addControl(ControlType(SYNC_REQUEST, decodeSyncRequest, frozenset({"search"}),
                                    search=provider.searchWith))
        host.addTimer(_TRIM_INTERVAL, self.trim)
        kept = []
        for db in directory.configuredDatabases:
            if IChangelog.providedBy(db.backend):
                kept.append(db)
            else:
                _log.info("changelog: {suffix} keeps no changelog ({backend}): it is not "
                          "replicated", suffix=str(db.suffix), backend=type(db.backend).__name__)
        if self.database is not None:
            wanted = directory.schema.normalizeDN(self.database)
            shown = [db for db in kept if db.normalizedSuffix == wanted]
            if not shown:
                raise self._databaseError(f"{self.database} is not a database that keeps a "
                                          "changelog")
        else:
            shown = kept
        if not shown:
            return
        suffix = DN.parse(CHANGELOG_DN)
        self._source = IChangelog(shown[0].backend)
        self.view = Database(suffix, _ChangelogView(directory.schema.normalizeDN(suffix),
                                                    self._source, self))
        host.addView(self.view)
        host.addRootDSEAttributes(self._rootDSE)

    async def _rootDSE(self) -> Sequence[tuple[str, Sequence[bytes]]]:
        """
        @return: the root DSE's C{changelog}, C{firstChangeNumber} and
            C{lastChangeNumber} (0 and 0 for an empty changelog).
        """
        assert self._source is not None
        first, last = await self._source.changeBounds()
        return [
            ("changelog", [CHANGELOG_DN.encode()]),
            ("firstChangeNumber", [str(first.number if first else 0).encode()]),
            ("lastChangeNumber", [str(last.number if last else 0).encode()]),
        ]

    # Trimming

    @defer.inlineCallbacks
    def trim(self) -> Any:
        """
        Remove, from every changelog, the records older than C{maxAge} and
        all but the C{maxEntries} newest. A failure is logged; the next
        trimming tries again.

        @return: a Deferred firing with the number of records removed.
        """
        now = datetime.fromtimestamp(self.directory.reactor.seconds(), timezone.utc)
        removed = 0
        for db in self.directory.databases:
            if not IChangelog.providedBy(db.backend):
                continue
            try:
                removed += yield db.backend.trimChanges(now - self.maxAge, self.maxEntries)
            except Exception:
                _log.failure("changelog: trimming {suffix} failed", suffix=str(db.suffix))
        return removed

    # Inside the write's transaction

    def _record(self, kind: str, op: Operation, txn: Any, old: Entry | None,
                new: Entry | None) -> None:
        if not IChangelogTransaction.providedBy(txn):
            return
        subject = new if new is not None else old
        assert subject is not None
        csn = new.get("entryCSN") if new is not None else ()
        if csn:
            stamp = csn[0]
        elif kind == DELETE and op.replicated and op.originCSN is not None:
            stamp = op.originCSN
        else:
            stamp = self.directory.csn(datetime.now(timezone.utc))
        # Appended first: on PostgreSQL that takes the changelog's lock, so
        # the read and update of contextCSN below are serialised too.
        txn.appendChange(changeRecord(kind, old, new, stamp, self._withheld))
        db = self.directory.databaseFor(subject.ndn)
        if db is None:
            return
        multi = db.suppliers is not None
        if multi and not op.replicated and new is not None:
            # What the other suppliers merge by, and judge a present phase
            # by (ldapd.syncrepl.multi); a replicated write keeps the CSNs
            # it was merged with.
            merged = stamped(old, new, stamp) if old is not None else created(new, stamp)
            if merged is not new:
                txn.put(merged)
        # A syncrepl consumer keeps contextCSN itself, as its provider's
        # cookie: a replicated delete's CSN, unless the supplier sent its
        # own, is made here, not by the provider, and must not move a single
        # provider's consumer's state ahead of it. Among suppliers, whose
        # consumers merge their cookies into contextCSN per server ID, such
        # a delete is this server's own change.
        if not op.replicated or (multi and kind == DELETE and stamp != op.originCSN):
            self._updateContextCSN(txn, db.normalizedSuffix, stamp)

    def _updateContextCSN(self, txn: Any, suffix: DN, csn: bytes) -> None:
        """
        Put C{csn} in the suffix entry's C{contextCSN} as the value of its
        server ID (this server's, or, for a change made on another server
        and imported with its CSN, that server's), unless the value there
        is already greater.
        """
        entry = txn.get(suffix)
        if entry is None:
            return
        values = entry.get("contextCSN")
        merged = mergeCSNs(values, [csn])
        if sorted(merged) == sorted(values):
            return
        # Built directly rather than with modified(): contextCSN is
        # operational, so nothing about the entry's classes needs checking.
        kept = [(a.description, a.values) for a in entry if a.type is not self._contextCSN]
        txn.put(Entry(entry.dn, kept + [("contextCSN", merged)], entry.schema, entry.ndn))

    def txn_add(self, op: Operation, txn: Any, entry: Entry) -> None:
        """
        Record an add.
        """
        self._record(ADD, op, txn, None, entry)

    def txn_delete(self, op: Operation, txn: Any, entry: Entry) -> None:
        """
        Record a delete, with a CSN of its own (or, replicated from a
        supplier that sent it, its origin's: L{Operation.originCSN}).
        """
        self._record(DELETE, op, txn, entry, None)

    def txn_modify(self, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        """
        Record a modify.
        """
        self._record(MODIFY, op, txn, old, new)

    def txn_rename(self, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        """
        Record a rename (of the renamed entry only, for a subtree).
        """
        self._record(RENAME, op, txn, old, new)


def _numberBounds(f: Filter) -> tuple[int, int | None]:
    """
    The range of change numbers a filter can match, from its C{changeNumber}
    assertions (at the top or in a top-level AND), so that a search for
    C{(changeNumber>=N)} starts at N.

    @return: the lowest number and the highest (or C{None}).
    """
    low, high = 0, None
    for part in f.parts if isinstance(f, And) else (f,):
        if not isinstance(part, (Equality, GreaterOrEqual, LessOrEqual)):
            continue
        if part.type.name != "changeNumber" or not isinstance(part.key, int):
            continue
        if isinstance(part, (Equality, GreaterOrEqual)):
            low = max(low, part.key)
        if isinstance(part, (Equality, LessOrEqual)):
            high = part.key if high is None else min(high, part.key)
    return low, high


def _excludesRecords(f: Filter, schema: Schema, recordTypes: frozenset[AttributeType]) -> bool:
    """
    Whether a filter asserts something of an attribute no record has (the
    C{(ldapdACI=*)} the acl plugin looks for in every database), so that a
    search need not read the changelog at all.

    @param recordTypes: the attribute types of the records' entries.
    """
    if isinstance(f, (Present, Equality, Substrings, GreaterOrEqual, LessOrEqual, Approx)):
        return not schema.subtypes(f.type) & recordTypes
    if isinstance(f, And):
        return any(_excludesRecords(part, schema, recordTypes) for part in f.parts)
    if isinstance(f, Or):
        return all(_excludesRecords(part, schema, recordTypes) for part in f.parts)
    return False


@implementer(IBackend)
class _ChangelogView:
    """
    The read-only backend of C{cn=changelog}: the records of one changelog
    as C{changeNumber=N,cn=changelog} entries, found by routing, scopes,
    filters, paging and size limits as any others.

    @ivar source: the L{IChangelog} whose records it shows.
    """

    def __init__(self, suffix: DN, source: Any, plugin: Changelog) -> None:
        self.suffix = suffix
        self.source = source
        self._plugin = plugin
        self._schema = plugin.directory.schema
        self._recordTypes = frozenset(self._schema.attributeType(name) for name in _RECORD_TYPES)
        self._container = Entry(DN.parse(CHANGELOG_DN), [
            ("objectClass", [b"top", b"extensibleObject"]),
            ("cn", [b"changelog"]),
        ], self._schema, suffix)

    def open(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def close(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def entry(self, record: ChangeRecord) -> Entry:
        """
        @return: the C{cn=changelog} entry of a record.
        """
        attributes = [
            ("objectClass", [b"top", b"changeLogEntry"]),
            ("changeNumber", [str(record.number).encode()]),
            ("targetDN", [record.targetDN.encode("utf-8")]),
            ("changeType", [_CHANGE_TYPES[record.kind]]),
            ("changes", [record.changes] if record.changes else []),
            ("changeTime", [formatTime(record.time)]),
            ("targetEntryUUID", [record.entryUUID] if record.entryUUID else []),
        ]
        if record.newRDN is not None:
            attributes.append(("newRDN", [record.newRDN.encode("utf-8")]))
            attributes.append(("deleteOldRDN", [b"TRUE" if record.deleteOldRDN else b"FALSE"]))
        if record.newSuperior is not None:
            attributes.append(("newSuperior", [record.newSuperior.encode("utf-8")]))
        return Entry(DN.parse(f"changeNumber={record.number},{CHANGELOG_DN}"), attributes,
                     self._schema)

    async def _find(self, ndn: DN) -> Entry:
        """
        @return: the entry of C{ndn}.
        @raise NoSuchObject: if there is none.
        """
        if ndn == self.suffix:
            return self._container
        if ndn.parent() == self.suffix and len(ndn.rdn) == 1:
            ava = ndn.rdn[0]
            at = self._schema.attributeType(ava.type)
            if at is not None and at.name == "changeNumber" and ava.value.isdigit():
                number = int(ava.value)
                found = await self.source.changes(number - 1, 1)
                if found and found[0].number == number:
                    return self.entry(found[0])
        raise NoSuchObject("no such object", self._container.dn)

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        return defer.Deferred.fromCoroutine(self._find(ndn))

    def authenticate(self, op: Operation, ndn: DN, password: bytes) -> defer.Deferred[Entry]:
        return defer.fail(ldaperrors.LDAPInvalidCredentials())

    def search(self, op: Operation, emit: Callable[[Entry], Any]) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _emit(self, op: Operation, emit: Callable[[Entry], Any], entry: Entry) -> None:
        assert op.search is not None
        if op.search.filter.match(entry) is True:
            waiting = emit(entry)
            if waiting is not None:
                await waiting

    async def _search(self, op: Operation, emit: Callable[[Entry], Any]) -> None:
        params = op.search
        assert params is not None
        base = await self._find(params.base)
        if base is not self._container:
            if params.scope != Scope.ONE:
                await self._emit(op, emit, base)
            return
        if params.scope != Scope.ONE:
            await self._emit(op, emit, base)
        if params.scope == Scope.BASE or _excludesRecords(params.filter, self._schema,
                                                          self._recordTypes):
            return
        low, high = _numberBounds(params.filter)
        after = max(low - 1, 0)
        while high is None or after < high:
            op.check()
            records = await self.source.changes(after, _BATCH)
            if not records:
                return
            for record in records:
                if high is not None and record.number > high:
                    return
                await self._emit(op, emit, self.entry(record))
            if len(records) < _BATCH:
                return
            after = records[-1].number
            await op.cooperate()

    def _readOnly(self, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return defer.fail(ldaperrors.LDAPUnwillingToPerform("the changelog is read-only"))

    add = delete = modify = rename = _readOnly


class ChangelogFactory:
    """
    Builds L{Changelog} from C{[[plugin]] name = "changelog"} with
    C{max_age} (a duration, default 7d), C{max_entries} (default 100000),
    C{sid} (0 to 4095, default 0), C{database} (a suffix) and C{passwords}
    (one of L{PASSWORD_HANDLING}, default C{"omit"}).
    """

    name = "changelog"
    description = ("CSNs, contextCSN and a changelog for every database; the retro changelog "
                   "cn=changelog; the base of the syncrepl provider.")

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> Changelog:
        """
        @param table: the plugin's configuration.
        @param context: the L{ConfigContext}.
        @raise ldapd.registry.ConfigError: naming the key that is wrong.
        """
        config = ConfigTable(table, context,
                             {"max_age", "max_entries", "sid", "database", "passwords"})
        maxAge = config.duration("max_age", 7 * 86400)
        maxEntries = config.integer("max_entries", 100000, minimum=1,
                                    expected="a positive integer")
        sid = config.integer("sid", 0, minimum=0, maximum=0xFFF,
                             expected="a server ID from 0 to 4095")
        database = config.dn("database")
        passwords = config.choice("passwords", PASSWORD_HANDLING, "omit")
        return Changelog(timedelta(seconds=maxAge), maxEntries, sid, database,
                         lambda problem: context.error("database", problem), passwords)
