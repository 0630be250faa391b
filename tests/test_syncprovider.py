"""
The syncrepl provider (RFC 4533): in memory with a L{task.Clock} (phases,
cookies, the persist phase, limits, access control, back-pressure), then over
the wire with python-ldap's C{SyncreplConsumer}, and with a real OpenLDAP
slapd consumer replicating from the real C{twist ldapd} through adds,
modifies, deletes, renames with newSuperior, a burst of 1,000 changes and
kill -9 of either side; after each step both directories are compared entry
by entry (every user attribute and entryUUID).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ldap
from ldap.controls import LDAPControl
from ldap.extop import ExtendedRequest
from ldap.ldapobject import SimpleLDAPObject
from ldap.syncrepl import SyncreplConsumer
from ldaptor.protocols import pureber, pureldap
from twisted.internet import task
from twisted.trial import unittest

from ldapd._codec import RESPONSE_DECODER, IntermediateResponse, encodeMessage
from ldapd._framing import Framer
from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.limits import Limits
from ldapd.operation import Connection, Identity, Operation
from ldapd.plugins.changelog import Changelog
from ldapd.schema import Schema
from ldapd.syncrepl.codec import (
    ADD,
    DELETE,
    MODIFY,
    NEW_COOKIE,
    REFRESH_AND_PERSIST,
    REFRESH_ONLY,
    REFRESH_PRESENT,
    SYNC_DONE,
    SYNC_ID_SET,
    SYNC_REQUEST,
    SYNC_STATE,
    SyncDone,
    SyncInfo,
    SyncRequest,
    decodeSyncDone,
    decodeSyncInfo,
    decodeSyncState,
    uuidFromBytes,
)
from ldapd.testing import (
    EXAMPLE_LDIF,
    SLAPD,
    ServerProcess,
    ServerTestsMixin,
    SlapdProcess,
    exampleConfig,
    privatePostgreSQLSchema,
    wireFilter,
)
from test_sql_integration import CONFIG as SQL_CONFIG
from test_syncconsumer import (
    BASE,
    PASSWORD,
    ROOT_DN,
    ConsumerTestsMixin,
    consumerServer,
    ldapmodify,
    person,
    slapdProvider,
)

PEOPLE = f"ou=people,{BASE}"
ALICE = f"uid=alice,{PEOPLE}"
OLD_CSN = b"20000101000000.000000Z#000000#000#000000"


@dataclass
class Sent:
    """
    One message a sync search sent, decoded.

    @ivar kind: C{"entry"}, C{"info"} or C{"done"}.
    @ivar dn: an entry's DN.
    @ivar state: an entry's Sync State (L{ldapd.syncrepl.codec.SyncState}).
    @ivar attributes: an entry's attributes, by name.
    @ivar info: a Sync Info message.
    @ivar resultCode: the SearchResultDone's result code.
    @ivar done: its Sync Done control, if any.
    @ivar controls: the message's controls, by OID.
    """

    kind: str
    dn: str = ""
    state: Any = None
    attributes: dict[str, list[bytes]] = field(default_factory=dict)
    info: SyncInfo | None = None
    resultCode: int | None = None
    done: SyncDone | None = None
    controls: dict[str, bytes | None] = field(default_factory=dict)


def _decode(pdu: bytes, controls: Any) -> Sent:
    message, _ = pureber.berDecodeObject(RESPONSE_DECODER, encodeMessage(1, pdu, controls))
    value = message.value
    found = {
        oid.decode() if isinstance(oid, bytes) else oid: v for oid, _, v in message.controls or ()
    }
    if isinstance(value, IntermediateResponse):
        return Sent("info", info=decodeSyncInfo(value.responseValue), controls=found)
    if isinstance(value, pureldap.LDAPSearchResultEntry):
        return Sent(
            "entry",
            value.objectName.decode(),
            decodeSyncState(found[SYNC_STATE]) if SYNC_STATE in found else None,
            {name.decode(): [bytes(v) for v in values] for name, values in value.attributes},
            controls=found,
        )
    done = decodeSyncDone(found[SYNC_DONE]) if SYNC_DONE in found else None
    return Sent("done", resultCode=value.resultCode, done=done, controls=found)


class _HideBob:
    """
    A plugin that withholds uid=bob from every search, as access control
    would.
    """

    name = "hidebob"

    def filter_entry(self, op: Operation, entry: Any) -> Any:
        return None if entry.get("uid") == (b"bob",) else entry


class StampedEarlier:
    """
    A directory's CSN generator that hands out one CSN made before others:
    the write it stamps commits after writes stamped later, as when two
    writes run at once and the later one commits first.
    """

    def __init__(self, directory: Directory) -> None:
        """
        Make the CSN now (the stamp of a write that has begun), and give it
        to the next write of C{directory} once L{commit} is called.
        """
        self._directory = directory
        self._generator = directory.csn
        self.sid = self._generator.sid
        self.csn = self._generator(datetime.now(timezone.utc))

    def __call__(self, when: datetime) -> bytes:
        return self.csn

    def commit(self, write: Any) -> None:
        """
        Run C{write}, stamped with the CSN made earlier.
        """
        self._directory.csn = self  # type: ignore[assignment]
        try:
            write()
        finally:
            self._directory.csn = self._generator


class ProviderTestsBase(unittest.TestCase):
    """
    A directory with the example organisation in a memory backend, with the
    changelog plugin (hence the provider), on a L{task.Clock}; requests come
    from a connection bound as the root DN.
    """

    withChangelog = True
    extraPlugins: tuple[Any, ...] = ()

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.schema = Schema.standard()
        self.backend = self.makeDirectory()
        self.connection = Connection("test", self.clock)
        self.writer = Connection("writer", self.clock)
        dn = DN.parse(ROOT_DN)
        self.connection.identity = self.writer.identity = Identity(
            dn, self.schema.normalizeDN(dn), isRoot=True
        )
        self.nextId = 1

    def makeDirectory(self) -> Any:
        suffix = DN.parse(BASE)
        backend = MemoryBackend(self.schema.normalizeDN(suffix), self.schema, self.clock)
        plugins = ([Changelog()] if self.withChangelog else []) + list(self.extraPlugins)
        self.directory = Directory(
            [Database(suffix, backend, DN.parse(ROOT_DN), PASSWORD.encode(), EXAMPLE_LDIF)],
            plugins,
            schema=self.schema,
            limits=Limits(sizeLimit=5, timeLimit=60),
            reactor=self.clock,
        )
        self.successResultOf(self.directory.open())
        self.addCleanup(self.directory.close)
        return backend

    def start(
        self,
        request: Any,
        controls: list[tuple[str, bool, bytes | None]] | None = None,
        directory: Directory | None = None,
        connection: Connection | None = None,
    ) -> tuple[list[Sent], Any, Operation]:
        """
        Start a request, as it arrives from the wire, on the test connection
        (or C{connection}).

        @return: the list its decoded responses go to, the Deferred of its
            execution, and the operation.
        """
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, controls=controls, id=self.nextId).toWire())
        message = framer.next()
        self.nextId += 1
        op = Operation(connection or self.connection, message.messageId, message.request, message.controls)
        sent: list[Sent] = []
        d = (directory or self.directory).execute(
            op, lambda pdu, ctrls=(): sent.append(_decode(pdu, ctrls))
        )
        return sent, d, op

    def searchWith(
        self,
        controls: list[tuple[str, bool, bytes | None]],
        base: str = BASE,
        filterText: str = "(objectClass=*)",
        scope: int = 2,
        attributes: tuple[bytes, ...] = (b"*", b"+"),
        **kw: Any,
    ) -> tuple[list[Sent], Any, Operation]:
        """
        Start a search with request controls.
        """
        return self.start(
            pureldap.LDAPSearchRequest(
                baseObject=base,
                scope=scope,
                filter=wireFilter(filterText),
                attributes=list(attributes),
                **kw,
            ),
            controls,
        )

    def sync(
        self,
        mode: int = REFRESH_ONLY,
        cookie: bytes | None = None,
        critical: bool = True,
        **kw: Any,
    ) -> tuple[list[Sent], Any, Operation]:
        """
        Start a search with the Sync Request control.
        """
        return self.searchWith([(SYNC_REQUEST, critical, SyncRequest(mode, cookie).encode())], **kw)

    def refresh(self, cookie: bytes | None = None, **kw: Any) -> list[Sent]:
        """
        @return: the responses of a finished refreshOnly search.
        """
        sent, d, _ = self.sync(REFRESH_ONLY, cookie, **kw)
        self.successResultOf(d)
        return sent

    def write(self, request: Any, directory: Directory | None = None) -> None:
        sent, d, _ = self.start(request, directory=directory, connection=self.writer)
        self.successResultOf(d)
        self.assertEqual(sent[-1].resultCode, 0)

    def modify(
        self, dn: str, name: str, *values: bytes, directory: Directory | None = None
    ) -> None:
        self.write(
            pureldap.LDAPModifyRequest(
                object=dn,
                modification=[
                    pureber.BERSequence(
                        [
                            pureber.BEREnumerated(2),
                            pureber.BERSequence(
                                [
                                    pureldap.LDAPAttributeDescription(name),
                                    pureber.BERSet(
                                        [pureldap.LDAPAttributeValue(v) for v in values]
                                    ),
                                ]
                            ),
                        ]
                    )
                ],
            ),
            directory,
        )

    def add(self, uid: str, parent: str = PEOPLE) -> None:
        self.write(
            pureldap.LDAPAddRequest(
                entry=f"uid={uid},{parent}",
                attributes=[
                    (
                        pureldap.LDAPAttributeDescription(name),
                        pureber.BERSet([pureldap.LDAPAttributeValue(value)]),
                    )
                    for name, value in [
                        ("objectClass", "inetOrgPerson"),
                        ("uid", uid),
                        ("cn", "New"),
                        ("sn", "Person"),
                    ]
                ],
            )
        )

    def delete(self, dn: str) -> None:
        self.write(pureldap.LDAPDelRequest(entry=dn))

    def rename(self, dn: str, newRDN: str, newSuperior: str | None = None) -> None:
        self.write(
            pureldap.LDAPModifyDNRequest(
                entry=dn, newrdn=newRDN, deleteoldrdn=1, newSuperior=newSuperior
            )
        )

    def uuid(self, dn: str) -> bytes:
        entry = self.successResultOf(self.backend.get(None, self.schema.normalizeDN(DN.parse(dn))))
        return entry.get("entryUUID")[0]

    def contextCSN(self) -> bytes:
        suffix = self.successResultOf(
            self.backend.get(None, self.schema.normalizeDN(DN.parse(BASE)))
        )
        return max(suffix.get("contextCSN"))

    def entries(self, sent: list[Sent]) -> dict[str, Sent]:
        return {s.dn.lower(): s for s in sent if s.kind == "entry"}

    def assertState(self, message: Sent, state: int, dn: str) -> None:
        self.assertEqual(
            (message.kind, message.state.state, message.dn.lower()), ("entry", state, dn.lower())
        )
        if state != DELETE:
            self.assertEqual(uuidFromBytes(message.state.entryUUID).encode(), self.uuid(dn))


class RefreshTests(ProviderTestsBase):
    """
    The refresh stage: the present phase without a covered cookie, the
    changes since it with one.
    """

    def test_full(self) -> None:
        """
        Without a cookie every entry is sent in full with state add and its
        entryUUID as syncUUID; the Sync Done control carries the contextCSN
        and refreshDeletes FALSE (the consumer removes what it was not sent).
        """
        sent = self.refresh()
        entries = self.entries(sent)
        self.assertEqual(len(entries), 20)
        self.assertState(entries[ALICE.lower()], ADD, ALICE)
        self.assertIn("sn", entries[ALICE.lower()].attributes)
        self.assertIn("entryCSN", entries[ALICE.lower()].attributes)
        self.assertNotIn("numSubordinates", entries[ALICE.lower()].attributes)
        self.assertEqual((sent[-1].kind, sent[-1].resultCode), ("done", 0))
        self.assertEqual(sent[-1].done, SyncDone(b"csn=" + self.contextCSN(), False))

    def test_upToDate(self) -> None:
        """
        A cookie naming the contextCSN gets nothing but the cookie back,
        with the consumer's rid, and refreshDeletes TRUE.
        """
        sent = self.refresh(b"rid=7,csn=" + self.contextCSN())
        self.assertEqual([s.kind for s in sent], ["done"])
        self.assertEqual(sent[0].done, SyncDone(b"rid=007,csn=" + self.contextCSN(), True))

    def test_resumedPastLateCommit(self) -> None:
        """
        A change stamped before another but committed after it, while the
        consumer was away with a cookie naming the later one (the
        contextCSN still), is sent in the refresh from that cookie: the log
        is read from the cookie's record on, not by CSN alone.
        """
        bob = f"uid=bob,{PEOPLE}"
        earlier = StampedEarlier(self.directory)
        self.modify(ALICE, "sn", b"Later")
        cookie = b"rid=1,csn=" + self.contextCSN()
        earlier.commit(lambda: self.modify(bob, "sn", b"Earlier"))
        self.assertEqual(b"csn=" + self.contextCSN(), cookie[6:])
        sent = self.refresh(cookie)
        byDN = self.entries(sent)
        self.assertEqual(list(byDN), [bob.lower()])
        self.assertState(byDN[bob.lower()], MODIFY, bob)
        self.assertEqual(byDN[bob.lower()].attributes["sn"], [b"Earlier"])

    def test_changesSince(self) -> None:
        """
        A cookie the changelog covers gets only what changed since: changed
        and new entries in full, and a delete (syncUUID) for each entry
        deleted, moved out of the search's scope or withheld; refreshDeletes
        TRUE.
        """
        cookie = b"rid=1,csn=" + self.contextCSN()
        bob, dave = self.uuid(f"uid=bob,{PEOPLE}"), self.uuid(f"uid=dave,{PEOPLE}")
        self.modify(ALICE, "sn", b"Changed")
        self.add("newbie")
        self.delete(f"uid=bob,{PEOPLE}")
        self.rename(f"uid=dave,{PEOPLE}", "uid=dave", f"ou=groups,{BASE}")
        self.modify(f"uid=carol,{PEOPLE}", "description", b"x")
        self.modify(f"uid=carol,{PEOPLE}", "description", b"y")
        sent = self.refresh(cookie, base=PEOPLE)
        entries = [s for s in sent if s.kind == "entry"]
        self.assertEqual(len(entries), 3)
        byDN = self.entries(sent)
        self.assertState(byDN[ALICE.lower()], MODIFY, ALICE)
        self.assertEqual(byDN[ALICE.lower()].attributes["sn"], [b"Changed"])
        self.assertState(byDN[f"uid=newbie,{PEOPLE}"], ADD, f"uid=newbie,{PEOPLE}")
        self.assertEqual(byDN[f"uid=carol,{PEOPLE}"].attributes["description"], [b"y"])
        # Deletes go as slapd's syncprov sends them: syncUUIDs, no names.
        sets = [s.info for s in sent if s.kind == "info"]
        self.assertTrue(all(i.kind == SYNC_ID_SET and i.refreshDeletes for i in sets))
        deleted = {uuidFromBytes(u).encode() for i in sets for u in i.syncUUIDs}
        self.assertEqual(deleted, {bob, dave})
        self.assertEqual(sent[-1].done, SyncDone(b"rid=001,csn=" + self.contextCSN(), True))

    def test_addedThenDeleted(self) -> None:
        """
        An entry added and deleted since the cookie is sent as a delete (its
        syncUUID): the consumer may hold it, having committed the add before
        the cookie that covers it came, and resumed from the older cookie.
        """
        cookie = b"rid=1,csn=" + self.contextCSN()
        self.add("fleeting")
        fleeting = self.uuid(f"uid=fleeting,{PEOPLE}")
        self.delete(f"uid=fleeting,{PEOPLE}")
        sent = self.refresh(cookie)
        self.assertEqual([s.dn for s in sent if s.kind == "entry"], [])
        [idSet] = [s.info for s in sent if s.kind == "info"]
        self.assertEqual([uuidFromBytes(u).encode() for u in idSet.syncUUIDs], [fleeting])
        # With a cookie that covers the delete: slapd's consumer deletes only
        # the entries whose entryCSN the syncIdSet's cookie (else its own)
        # covers.
        self.assertEqual(idSet.cookie, b"rid=001,csn=" + self.contextCSN())

    def test_renamedThenMoved(self) -> None:
        """
        Each entry is sent once, under its current name, parents first: an
        entry renamed and then moved with its parent is sent after the
        parent (whose move takes the child along on the consumer), under its
        new name in the new parent.
        """
        cookie = b"rid=1,csn=" + self.contextCSN()
        self.rename(ALICE, "uid=alicia")
        self.rename(PEOPLE, "ou=staff", f"ou=groups,{BASE}")
        sent = self.refresh(cookie)
        self.assertEqual(
            [(s.dn, s.state.state) for s in sent if s.kind == "entry"],
            [
                (f"ou=staff,ou=groups,{BASE}", MODIFY),
                (f"uid=alicia,ou=staff,ou=groups,{BASE}", MODIFY),
            ],
        )

    def test_movedThenDeleted(self) -> None:
        """
        A child moved away from its parent is sent before the parent's
        delete, and a new entry under the name of a deleted one after the
        delete.
        """
        cookie = b"rid=1,csn=" + self.contextCSN()
        self.rename(ALICE, "uid=alice", f"ou=groups,{BASE}")
        bob = self.uuid(f"uid=bob,{PEOPLE}")
        self.delete(f"uid=bob,{PEOPLE}")
        self.add("bob")
        sent = self.refresh(cookie)
        self.assertEqual(
            [(s.dn, s.state.state) if s.kind == "entry" else
             (s.info.kind, s.info.refreshDeletes, [uuidFromBytes(u).encode()
                                                   for u in s.info.syncUUIDs])
             for s in sent if s.kind != "done"],
            [
                (f"uid=alice,ou=groups,{BASE}", MODIFY),
                (SYNC_ID_SET, True, [bob]),
                (f"uid=bob,{PEOPLE}", ADD),
            ],
        )

    def test_notCovered(self) -> None:
        """
        A cookie older than the oldest change kept gets a present phase,
        every entry's syncUUID in a syncIdSet (as slapd's syncprov sends
        them), ended by refreshPresent (refreshDone FALSE) so that the
        consumer removes what is gone; then a delete phase, the entries
        changed since in full, and refreshDeletes TRUE.
        """
        cookie = b"rid=1,csn=" + self.contextCSN()
        self.modify(ALICE, "sn", b"Changed")
        self.modify(f"uid=bob,{PEOPLE}", "sn", b"Changed")
        self.successResultOf(self.backend.trimChanges(None, 1))
        sent = self.refresh(cookie)
        [idSet, ended] = [s.info for s in sent if s.kind == "info"]
        self.assertEqual((idSet.kind, idSet.refreshDeletes), (SYNC_ID_SET, False))
        self.assertEqual(len(idSet.syncUUIDs), 20)
        self.assertIn(
            self.uuid(f"uid=carol,{PEOPLE}"),
            {uuidFromBytes(u).encode() for u in idSet.syncUUIDs},
        )
        self.assertEqual((ended.kind, ended.refreshDone), (REFRESH_PRESENT, False))
        self.assertEqual([s.kind for s in sent].index("entry"), 2)
        byDN = self.entries(sent)
        self.assertEqual(sorted(byDN), sorted([ALICE.lower(), f"uid=bob,{PEOPLE}"]))
        self.assertState(byDN[ALICE.lower()], ADD, ALICE)
        self.assertEqual(sent[-1].done, SyncDone(b"rid=001,csn=" + self.contextCSN(), True))

    def test_serverID(self) -> None:
        """
        The cookie names the server ID the changelog plugin gives, as
        slapd's names its serverID.
        """
        self.directory.csn.sid = 10
        sent = self.refresh(b"rid=1,csn=" + self.contextCSN())
        self.assertEqual(sent[-1].done.cookie, b"rid=001,sid=00a,csn=" + self.contextCSN())

    def test_emptyCookie(self) -> None:
        """
        A cookie of slapd's consumer that holds nothing yet (its rid alone)
        gets the full content.
        """
        sent = self.refresh(b"rid=123")
        self.assertEqual(len(self.entries(sent)), 20)
        self.assertEqual(sent[-1].done.cookie, b"rid=123,csn=" + self.contextCSN())

    def test_consumerNewer(self) -> None:
        """
        A cookie newer than anything the provider has is refused with
        unwillingToPerform, as slapd does.
        """
        sent = self.refresh(b"rid=1,csn=29990101000000.000000Z#000000#000#000000")
        self.assertEqual([(s.kind, s.resultCode) for s in sent], [("done", 53)])

    def test_badRequests(self) -> None:
        """
        A malformed cookie, a malformed control value and alias
        dereferencing while searching are protocolErrors.
        """
        self.assertEqual(self.refresh(b"rid=x")[-1].resultCode, 2)
        sent, d, _ = self.start(
            pureldap.LDAPSearchRequest(baseObject=BASE),
            [(SYNC_REQUEST, True, b"\x30\x03\x0a\x01\x07")],
        )
        self.successResultOf(d)
        self.assertEqual(sent[-1].resultCode, 2)
        self.assertEqual(self.refresh(derefAliases=3)[-1].resultCode, 2)

    def test_sizeLimit(self) -> None:
        """
        The size limit applies to the refresh as to any search.
        """
        self.connection.identity = Identity()
        sent = self.refresh()
        self.assertEqual((sent[-1].kind, sent[-1].resultCode), ("done", 4))
        self.assertEqual(len(self.entries(sent)), 5)


class WithheldTests(ProviderTestsBase):
    """
    Entries the plugins withhold (access control) are never sent, nor their
    names or entryUUIDs: a change to one sends nothing but a new cookie, as
    slapd's syncprov does.
    """

    extraPlugins = (_HideBob(),)

    def test_withheld(self) -> None:
        """
        The refresh leaves the withheld entry out; when it changes, or is
        renamed, or deleted, the consumer is told nothing of it.
        """
        sent = self.refresh()
        self.assertNotIn(f"uid=bob,{PEOPLE}", self.entries(sent))
        cookie = sent[-1].done.cookie
        self.modify(f"uid=bob,{PEOPLE}", "sn", b"Hidden")
        self.rename(f"uid=bob,{PEOPLE}", "uid=bob", f"ou=groups,{BASE}")
        sent = self.refresh(cookie)
        self.assertEqual([s.kind for s in sent], ["done"])
        self.assertGreater(sent[-1].done.cookie, cookie)

    def test_withheldPersist(self) -> None:
        """
        In the persist stage, a change to a withheld entry, and its delete,
        send a new cookie only.
        """
        sent, d, op = self.sync(REFRESH_AND_PERSIST)
        del sent[:]
        self.modify(f"uid=bob,{PEOPLE}", "sn", b"Hidden")
        self.delete(f"uid=bob,{PEOPLE}")
        self.assertEqual([(s.kind, s.info.kind) for s in sent], [("info", NEW_COOKIE)] * 2)
        op.abandon()
        self.successResultOf(d)


class PersistTests(ProviderTestsBase):
    """
    refreshAndPersist: the refresh, a Sync Info message, then each change as
    it commits.
    """

    def persist(self, **kw: Any) -> tuple[list[Sent], Any, Operation]:
        sent, d, op = self.sync(REFRESH_AND_PERSIST, **kw)
        self.assertNoResult(d)
        return sent, d, op

    def test_changes(self) -> None:
        """
        After the refresh (ended by a refreshPresent Sync Info with
        refreshDone) each change is sent with a cookie: adds and modifies
        with the entry, a rename with its new name, and a delete for an
        entry deleted, moved out of scope or no longer matching the filter.
        Abandoning ends the search without a response.
        """
        sent, d, op = self.persist(
            base=PEOPLE, filterText="(&(objectClass=person)(!(description=gone)))"
        )
        self.assertEqual(len(self.entries(sent)), 8)
        info = sent[-1].info
        self.assertEqual(
            (info.kind, info.refreshDone, info.cookie),
            (REFRESH_PRESENT, True, b"csn=" + self.contextCSN()),
        )
        del sent[:]
        self.add("newbie")
        self.assertState(sent[-1], ADD, f"uid=newbie,{PEOPLE}")
        self.assertEqual(sent[-1].state.cookie, b"csn=" + self.contextCSN())
        self.modify(ALICE, "sn", b"Changed")
        self.assertState(sent[-1], MODIFY, ALICE)
        self.rename(ALICE, "uid=alicia")
        self.assertState(sent[-1], MODIFY, f"uid=alicia,{PEOPLE}")
        self.modify(f"uid=bob,{PEOPLE}", "description", b"gone")
        self.assertEqual((sent[-1].state.state, sent[-1].attributes), (DELETE, {}))
        self.rename(f"uid=carol,{PEOPLE}", "uid=carol", f"ou=groups,{BASE}")
        self.assertEqual(sent[-1].state.state, DELETE)
        self.delete(f"uid=dave,{PEOPLE}")
        self.assertEqual(sent[-1].state.state, DELETE)
        self.assertEqual(sent[-1].state.cookie, b"csn=" + self.contextCSN())
        count = len(sent)
        self.modify(f"ou=groups,{BASE}", "description", b"out of scope")
        self.assertEqual(sent[-1].info, SyncInfo(0, b"csn=" + self.contextCSN()))
        self.assertEqual(len(sent), count + 1)
        op.abandon()
        self.successResultOf(d)
        self.assertEqual([s for s in sent if s.kind == "done"], [])

    def test_otherProcess(self) -> None:
        """
        Changes another server process commits to the same database (here a
        second directory over the same backend, whose writes this one is not
        told of) are found by looking at the changelog every second.
        """
        sent, d, op = self.persist()
        other = Directory(
            [Database(DN.parse(BASE), self.backend, DN.parse(ROOT_DN), PASSWORD.encode())],
            [Changelog()],
            schema=self.schema,
            reactor=self.clock,
        )
        del sent[:]
        self.modify(ALICE, "sn", b"Elsewhere", directory=other)
        self.assertEqual(sent, [])
        self.clock.advance(1)
        self.assertState(sent[-1], MODIFY, ALICE)
        op.abandon()

    def test_limitsEndWithRefresh(self) -> None:
        """
        The time limit applies to the refresh only, as in slapd: the persist
        phase of a client with limits goes on past it.
        """
        self.connection.identity = Identity()
        sent, d, op = self.persist(base=f"uid=alice,{PEOPLE}")
        self.clock.advance(3600)
        self.modify(ALICE, "sn", b"Later")
        self.assertState(sent[-1], MODIFY, ALICE)
        self.assertNoResult(d)
        op.abandon()

    def test_committedOutOfOrder(self) -> None:
        """
        A change stamped before another but committed after it reaches a
        consumer that resumed with a cookie naming the later one: the
        persist stage sends what the changelog holds after the refresh,
        whatever its CSN.
        """
        earlier = StampedEarlier(self.directory)
        self.modify(ALICE, "sn", b"Later")
        sent, d, op = self.persist(cookie=b"csn=" + self.contextCSN())
        self.assertEqual(sent[-1].info.cookie, b"csn=" + self.contextCSN())
        earlier.commit(lambda: self.modify(f"uid=bob,{PEOPLE}", "sn", b"Earlier"))
        self.assertState(sent[-1], MODIFY, f"uid=bob,{PEOPLE}")
        self.assertEqual(sent[-1].attributes["sn"], [b"Earlier"])
        op.abandon()

    def test_backPressure(self) -> None:
        """
        Nothing is sent while the client is not reading; when the changelog
        is trimmed past changes it has not been sent, the search ends with
        e-syncRefreshRequired (4096).
        """
        sent, d, op = self.persist()
        del sent[:]
        self.connection.pause()
        self.modify(ALICE, "sn", b"One")
        self.modify(ALICE, "sn", b"Two")
        self.modify(f"uid=bob,{PEOPLE}", "sn", b"Three")
        self.assertEqual(sent, [])
        self.successResultOf(self.backend.trimChanges(None, 1))
        self.connection.resume()
        self.assertEqual(sent[-1].resultCode, 4096)
        self.successResultOf(d)


class NoProviderTests(ProviderTestsBase):
    """
    Without the changelog plugin there is no provider, as slapd without
    syncprov.
    """

    withChangelog = False

    def test_critical(self) -> None:
        """
        A critical Sync Request control is unavailableCriticalExtension
        (12); a non-critical one is ignored.
        """
        self.assertEqual([s.resultCode for s in self.refresh()], [12])
        sent = self.refresh(critical=False)
        self.assertEqual(len(self.entries(sent)), 20)
        self.assertIsNone(sent[0].state)

    def test_rootDSE(self) -> None:
        """
        The root DSE names the control only when the provider is there.
        """
        self.assertNotIn(SYNC_REQUEST.encode(), self.directory.rootDSE.entry.get("supportedControl"))
        self.withChangelog = True
        self.makeDirectory()
        self.assertIn(SYNC_REQUEST.encode(), self.directory.rootDSE.entry.get("supportedControl"))


def providerConfig() -> str:
    """
    @return: the example configuration (SQLite) with the changelog plugin.
    """
    return exampleConfig() + '\n[[plugin]]\nname = "changelog"\n'


class _Consumer(SimpleLDAPObject, SyncreplConsumer):
    """
    python-ldap's syncrepl consumer, keeping entries in a dict and recording
    what it is told.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.cookie: str | None = None
        self.entries: dict[str, tuple[str, dict[str, list[bytes]]]] = {}
        self.told: list[str] = []

    def syncrepl_get_cookie(self) -> str | None:
        return self.cookie

    def syncrepl_set_cookie(self, cookie: str) -> None:
        self.cookie = cookie

    def syncrepl_entry(self, dn: str, attributes: dict[str, list[bytes]], uuid: str) -> None:
        self.entries[uuid] = (dn, attributes)
        self.told.append(f"entry {dn}")

    def syncrepl_delete(self, uuids: list[str]) -> None:
        for uuid in uuids:
            known = self.entries.pop(uuid, None)
            self.told.append(f"delete {known[0] if known else uuid}")

    def syncrepl_present(self, uuids: list[str] | None, refreshDeletes: bool = False) -> None:
        if uuids is None and not refreshDeletes:
            self.told.append("present phase")

    def syncrepl_refreshdone(self) -> None:
        self.told.append("refresh done")

    def refreshOnly(self) -> None:
        msgid = self.syncrepl_search(BASE, ldap.SCOPE_SUBTREE, mode="refreshOnly")
        while self.syncrepl_poll(msgid=msgid, all=1):
            pass

    def pollUntil(self, msgid: int, done: Any) -> None:
        deadline = time.monotonic() + 30
        while not done() and time.monotonic() < deadline:
            try:
                self.syncrepl_poll(msgid=msgid, timeout=0.2)
            except ldap.TIMEOUT:
                pass


class PythonLDAPTests(ServerTestsMixin, unittest.SynchronousTestCase):
    """
    python-ldap's C{SyncreplConsumer} against the real server.
    """

    serverConfig = providerConfig()

    def setUp(self) -> None:
        super().setUp()
        self.consumer = _Consumer(self.server.url)
        self.consumer.simple_bind_s(ROOT_DN, PASSWORD)
        self.addCleanup(self.consumer.unbind_s)

    def write(self, ldif: str) -> None:
        done = ldapmodify(self.server.url, ldif)
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_refreshOnlyWithCookie(self) -> None:
        """
        A first refresh copies everything (present phase); with its cookie
        the next gets only what changed since.
        """
        self.consumer.refreshOnly()
        self.assertIn("present phase", self.consumer.told)
        count = len(self.consumer.entries)
        self.assertGreaterEqual(count, 20)
        del self.consumer.told[:]
        self.write(person("pl1") + f"dn: {ALICE}\nchangetype: modify\nreplace: sn\nsn: PL\n\n")
        self.consumer.refreshOnly()
        self.assertEqual(sorted(self.consumer.told), [f"entry {ALICE}", f"entry uid=pl1,{PEOPLE}"])
        self.assertEqual(len(self.consumer.entries), count + 1)
        self.assertTrue(self.consumer.cookie.startswith("csn="))

    def test_refreshAndPersist(self) -> None:
        """
        After the refresh, changes arrive as they are made, deletes among
        them.
        """
        msgid = self.consumer.syncrepl_search(BASE, ldap.SCOPE_SUBTREE, mode="refreshAndPersist")
        self.consumer.pollUntil(msgid, lambda: "refresh done" in self.consumer.told)
        self.write(person("pl2") + f"dn: uid=pl2,{PEOPLE}\nchangetype: delete\n\n" + person("pl3"))
        self.consumer.pollUntil(msgid, lambda: f"entry uid=pl3,{PEOPLE}" in self.consumer.told)
        after = self.consumer.told[self.consumer.told.index("refresh done") + 1 :]
        self.assertIn(f"entry uid=pl3,{PEOPLE}", after)
        self.assertNotIn(f"uid=pl2,{PEOPLE}", {dn for dn, _ in self.consumer.entries.values()})
        self.consumer.abandon(msgid)

    def test_malformed(self) -> None:
        """
        A malformed Sync Request control is a protocolError, and the
        connection goes on serving.
        """
        control = LDAPControl(SYNC_REQUEST, True, b"\x30\x03\x0a\x01\x07")
        self.assertRaises(
            ldap.PROTOCOL_ERROR,
            self.consumer.search_ext_s,
            BASE,
            ldap.SCOPE_BASE,
            serverctrls=[control],
        )
        self.assertEqual(len(self.consumer.search_s(BASE, ldap.SCOPE_BASE)), 1)


class CancelTestsMixin:
    """
    Cancel (RFC 3909) on a refreshAndPersist search, with the answers
    slapd gives: the search ends with canceled (118), the Cancel succeeds;
    a Cancel naming no running operation is noSuchOperation (119).

    @ivar url: the provider's URL.
    """

    url: str

    def connect(self) -> _Consumer:
        consumer = _Consumer(self.url)
        consumer.simple_bind_s(ROOT_DN, PASSWORD)
        self.addCleanup(consumer.unbind_s)  # type: ignore[attr-defined]
        return consumer

    def test_cancelPersist(self) -> None:
        """
        A refreshAndPersist search, canceled in its persist stage, answers
        canceled, and the Cancel success; the connection goes on serving.
        """
        consumer = self.connect()
        msgid = consumer.syncrepl_search(BASE, ldap.SCOPE_SUBTREE, mode="refreshAndPersist")
        consumer.pollUntil(msgid, lambda: "refresh done" in consumer.told)
        cancel = consumer.cancel(msgid)
        self.assertRaises(ldap.CANCELLED, consumer.pollUntil, msgid,  # type: ignore[attr-defined]
                          lambda: False)
        self.assertEqual(consumer.result(cancel)[0], ldap.RES_EXTENDED)
        self.assertEqual(len(consumer.search_s(BASE, ldap.SCOPE_BASE)), 1)

    def test_cancelNothing(self) -> None:
        """
        A Cancel naming no operation under way is noSuchOperation.
        """
        consumer = self.connect()
        self.assertRaises(ldap.NO_SUCH_OPERATION,  # type: ignore[attr-defined]
                          consumer.result, consumer.cancel(77))


    def test_cancelMalformed(self) -> None:
        """
        A Cancel whose value is not a message id is a protocolError.
        """
        consumer = self.connect()
        request = ExtendedRequest("1.3.6.1.1.8", b"\x30\x00")
        self.assertRaises(ldap.PROTOCOL_ERROR, consumer.extop_s, request)  # type: ignore[attr-defined]


class CancelTests(CancelTestsMixin, unittest.SynchronousTestCase):
    """
    Cancel against ldapd.
    """

    def setUp(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-cancel-"))
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        server = ServerProcess(providerConfig(), folder)
        server.start()
        self.addCleanup(server.stop)
        self.url = server.url


class SlapdCancelTests(CancelTestsMixin, unittest.SynchronousTestCase):
    """
    The same against slapd with syncprov.
    """

    def setUp(self) -> None:
        slapd = slapdProvider()
        self.addCleanup(slapd.stop)
        self.url = slapd.url


class SharedPostgreSQLTests(unittest.SynchronousTestCase):
    """
    Two server processes on one PostgreSQL database, each with the
    changelog plugin.
    """

    def test_otherProcessWrites(self) -> None:
        """
        A refreshAndPersist consumer of one server gets the changes clients
        make through the other (found by its look at the changelog every
        second), with the cookie of each.
        """
        url = privatePostgreSQLSchema(self)
        folder = Path(tempfile.mkdtemp(prefix="ldapd-shared-"))
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        servers = []
        for name in ("a", "b"):
            (folder / name).mkdir()
            process = ServerProcess(
                SQL_CONFIG % url + '\n[[plugin]]\nname = "changelog"\n', folder / name
            )
            process.start()
            self.addCleanup(process.stop)
            servers.append(process)
        first, second = servers
        consumer = _Consumer(first.url)
        consumer.simple_bind_s(ROOT_DN, PASSWORD)
        self.addCleanup(consumer.unbind_s)
        msgid = consumer.syncrepl_search(BASE, ldap.SCOPE_SUBTREE, mode="refreshAndPersist")
        consumer.pollUntil(msgid, lambda: "refresh done" in consumer.told)
        cookie = consumer.cookie
        done = ldapmodify(second.url, person("elsewhere"))
        self.assertEqual(done.returncode, 0, done.stderr)
        consumer.pollUntil(msgid, lambda: f"entry uid=elsewhere,{PEOPLE}" in consumer.told)
        self.assertIn(f"entry uid=elsewhere,{PEOPLE}", consumer.told)
        self.assertGreater(consumer.cookie, cookie)
        consumer.abandon(msgid)


class LdapdPairMixin(ConsumerTestsMixin):
    """
    The real ldapd (SQLite, changelog plugin) as provider, ldapd's own
    consumer (C{[[replica]]}, SQLite) replicating from it.
    """

    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = Path(tempfile.mkdtemp(prefix="ldapd-provider-"))
        (cls.folder / "provider").mkdir()
        cls.provider = ServerProcess(providerConfig(), cls.folder / "provider")  # type: ignore[assignment]
        cls.provider.start()
        try:
            cls.consumer = consumerServer(cls.provider.url, cls.folder)
            cls.consumer.start()
        except BaseException:
            cls.provider.stop()
            shutil.rmtree(cls.folder, ignore_errors=True)
            raise


class LdapdConsumerTests(LdapdPairMixin, unittest.SynchronousTestCase):
    """
    ldapd's own consumer replicating from ldapd's provider.
    """

    def test_changesAndRestart(self) -> None:
        """
        Adds, modifies, deletes and the rename of a subtree reach the
        consumer; killed (-9) and restarted, it resumes from its cookie.
        """
        self.assertConverged()
        self.write(
            person("l2l1")
            + f"dn: {ALICE}\nchangetype: modify\nreplace: sn\nsn: Changed\n\n"
            + f"dn: uid=bob,{PEOPLE}\nchangetype: delete\n\n"
            + f"dn: {PEOPLE}\nchangetype: modrdn\nnewrdn: ou=persons\ndeleteoldrdn: 1\n\n"
        )
        content = self.assertConverged()
        self.assertEqual(content[f"uid=alice,ou=persons,{BASE}"]["sn"], [b"Changed"])
        self.consumer.process.kill()  # type: ignore[union-attr]
        self.consumer.process.wait()  # type: ignore[union-attr]
        self.write(person("l2l2", f"ou=persons,{BASE}"))
        self.consumer.start()
        self.assertConverged()
        phases = re.findall(r"syncrepl \w+ rid=\S+: (\w+) refresh", self.provider.log())
        self.assertEqual((phases[0], phases[-1]), ("present", "delete"))


#: The slapd consumer's syncrepl directive: {provider} and {type} are filled in.
SYNCREPL = (
    "index objectClass,entryUUID,entryCSN eq\n"
    "syncrepl rid=123 provider={provider} bindmethod=simple "
    f'binddn="{ROOT_DN}" credentials={PASSWORD} searchbase="{BASE}" '
    'type={type} interval=00:00:00:01 retry="1 +" timeout=5\n'
)


def slapdConsumer(provider: str, mode: str) -> SlapdProcess:
    """
    @param provider: the provider's URL.
    @param mode: C{refreshAndPersist} or C{refreshOnly} (every second).
    @return: an empty slapd replicating from C{provider}, not started.
    """
    if not SLAPD.is_file():
        raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
    return SlapdProcess(
        BASE, ROOT_DN, PASSWORD, databaseConfig=SYNCREPL.format(provider=provider, type=mode)
    )


class SlapdPairMixin(ConsumerTestsMixin):
    """
    The real ldapd (SQLite, changelog plugin) as provider, an OpenLDAP slapd
    as consumer.
    """

    consumerMode = "refreshAndPersist"

    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = Path(tempfile.mkdtemp(prefix="ldapd-provider-"))
        cls.provider = ServerProcess(providerConfig(), cls.folder)  # type: ignore[assignment]
        cls.provider.start()
        try:
            cls.consumer = slapdConsumer(cls.provider.url, cls.consumerMode)  # type: ignore[assignment]
            cls.consumer.start()
        except BaseException:
            cls.provider.stop()
            shutil.rmtree(cls.folder, ignore_errors=True)
            raise



class SlapdConsumerMixin(SlapdPairMixin):
    """
    The changes an OpenLDAP slapd consumer of ldapd must replicate.
    """

    def refreshes(self) -> list[str]:
        """
        @return: how the provider refreshed slapd's consumer (rid 123), each
            time it connected: C{present}, C{delete} or C{none}.
        """
        return re.findall(r"syncrepl \w+ rid=123: (\w+) refresh", self.provider.log())

    def test_initialRefresh(self) -> None:
        """
        The consumer starts empty and copies every entry, with its entryUUID.
        """
        self.assertConverged()

    def test_addModifyDelete(self) -> None:
        """
        Adds, modifies (values added, replaced, removed) and deletes reach
        the consumer.
        """
        parent = f"ou=prov-amd,{BASE}"
        self.write(
            f"dn: {parent}\nchangetype: add\nobjectClass: organizationalUnit\n"
            "ou: prov-amd\n\n"
            + person("amd1", parent, mail="a@example.com")
            + person("amd2", parent)
        )
        self.assertConverged()
        self.write(
            f"dn: uid=amd1,{parent}\nchangetype: modify\nreplace: sn\nsn: Changed\n-\n"
            "add: description\ndescription: one\ndescription: two\n-\ndelete: mail\n-\n\n"
            f"dn: uid=amd2,{parent}\nchangetype: delete\n\n"
        )
        content = self.assertConverged()
        self.assertEqual(content[f"uid=amd1,{parent}"]["sn"], [b"Changed"])
        self.assertNotIn(f"uid=amd2,{parent}", content)

    def test_renameNewSuperior(self) -> None:
        """
        A rename and the move of a subtree under a new superior keep the
        entries' entryUUIDs on the consumer.
        """
        self.write(
            f"dn: ou=prov-from,{BASE}\nchangetype: add\nobjectClass: organizationalUnit\n"
            f"ou: prov-from\n\ndn: ou=prov-to,{BASE}\nchangetype: add\n"
            "objectClass: organizationalUnit\nou: prov-to\n\n"
            + person("mover", f"ou=prov-from,{BASE}")
            + person("renamed", f"ou=prov-from,{BASE}")
        )
        before = self.assertConverged()
        self.write(
            f"dn: uid=renamed,ou=prov-from,{BASE}\nchangetype: modrdn\n"
            "newrdn: uid=newname\ndeleteoldrdn: 1\n\n"
            f"dn: ou=prov-from,{BASE}\nchangetype: modrdn\nnewrdn: ou=prov-moved\n"
            f"deleteoldrdn: 1\nnewsuperior: ou=prov-to,{BASE}\n\n"
        )
        after = self.assertConverged()
        self.assertEqual(
            after[f"uid=mover,ou=prov-moved,ou=prov-to,{BASE}"]["entryuuid"],
            before[f"uid=mover,ou=prov-from,{BASE}"]["entryuuid"],
        )
        self.assertIn(f"uid=newname,ou=prov-moved,ou=prov-to,{BASE}", after)

    def test_moveThenDelete(self) -> None:
        """
        A child moved away from its parent and the parent deleted, and an
        entry deleted and added again under its name, in one ldapmodify,
        reach the consumer in an order it can apply.
        """
        parent = f"ou=prov-doomed,{BASE}"
        self.write(
            f"dn: {parent}\nchangetype: add\nobjectClass: organizationalUnit\n"
            "ou: prov-doomed\n\n" + person("orphan", parent) + person("again")
        )
        before = self.assertConverged()
        self.write(
            f"dn: uid=orphan,{parent}\nchangetype: modrdn\nnewrdn: uid=orphan\n"
            f"deleteoldrdn: 1\nnewsuperior: {PEOPLE}\n\n"
            f"dn: {parent}\nchangetype: delete\n\n"
            f"dn: uid=again,{PEOPLE}\nchangetype: delete\n\n" + person("again")
        )
        after = self.assertConverged()
        self.assertNotIn(parent, after)
        self.assertNotEqual(
            after[f"uid=again,{PEOPLE}"]["entryuuid"], before[f"uid=again,{PEOPLE}"]["entryuuid"]
        )


class SlapdPersistTests(SlapdConsumerMixin, unittest.SynchronousTestCase):
    """
    A slapd refreshAndPersist consumer: the changes above, a burst, and
    either side killed.
    """

    def test_burst(self) -> None:
        """
        A burst of 1,000 changes (500 adds, 400 modifies, 100 deletes) in
        one ldapmodify arrives complete.
        """
        parent = f"ou=prov-burst,{BASE}"
        ldif = f"dn: {parent}\nchangetype: add\nobjectClass: organizationalUnit\nou: prov-burst\n\n"
        ldif += "".join(person(f"burst{i}", parent) for i in range(500))
        ldif += "".join(
            f"dn: uid=burst{i},{parent}\nchangetype: modify\nreplace: sn\nsn: B{i}\n\n"
            for i in range(399)
        )
        ldif += "".join(
            f"dn: uid=burst{i},{parent}\nchangetype: delete\n\n" for i in range(400, 500)
        )
        self.write(ldif)
        content = self.assertConverged(420)
        self.assertEqual(content[f"uid=burst7,{parent}"]["sn"], [b"B7"])

    def test_consumerKilled(self) -> None:
        """
        A consumer killed (-9) and restarted resumes from its cookie: the
        provider sends it the changes since, not the full content.
        """
        self.assertConverged()
        self.consumer.process.kill()  # type: ignore[union-attr]
        self.consumer.process.wait()  # type: ignore[union-attr]
        self.write(
            person("whiledown1")
            + person("whiledown2")
            + f"dn: {ALICE}\nchangetype: modify\nreplace: sn\nsn: Down\n\n"
        )
        before = len(self.refreshes())
        self.consumer.start()
        self.assertConverged()
        self.assertEqual(self.refreshes()[before:], ["delete"])

    def test_providerKilled(self) -> None:
        """
        When the provider is killed (-9) and restarted, the consumer
        reconnects and catches up with what changed since, from its cookie.
        """
        self.assertConverged()
        self.provider.process.kill()  # type: ignore[union-attr]
        self.provider.process.wait()  # type: ignore[union-attr]
        self.provider.start()
        self.write(person("afterrestart") + f"dn: uid=bob,{PEOPLE}\nchangetype: delete\n\n")
        self.assertConverged()
        refreshes = self.refreshes()
        self.assertTrue(refreshes)
        self.assertNotIn("present", refreshes)


class SlapdRefreshOnlyTests(SlapdConsumerMixin, unittest.SynchronousTestCase):
    """
    A slapd refreshOnly consumer, polling every second.
    """

    consumerMode = "refreshOnly"
