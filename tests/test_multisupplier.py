"""
Multi-supplier replication without processes: the merge of two versions of
an entry (L{ldapd.syncrepl.multi}), the per-server-ID CSN helpers
(L{ldapd.csn}), the provider's per-server-ID cookies, and the
C{[[replica]]} configuration with C{multi_supplier = true}.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial import unittest

from ldapd.changes import DELETE
from ldapd.csn import csnSID, csnVector, mergeCSNs, newerThan
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.plugins.changelog import Changelog
from ldapd.registry import ConfigError
from ldapd.schema import Schema
from ldapd.syncrepl.codec import DELETE as STATE_DELETE
from ldapd.syncrepl.codec import NEW_COOKIE, REFRESH_AND_PERSIST, SYNC_ID_SET, Cookie
from ldapd.syncrepl.consumer import Suppliers
from ldapd.syncrepl.multi import (
    ATTRIBUTE_CSN,
    attributeCSNs,
    created,
    createdCSN,
    merge,
    stamped,
)
from test_syncconsumer import loadReplicaConfig
from test_syncprovider import ALICE, PEOPLE, ProviderTestsBase, StampedEarlier

SCHEMA = Schema.standard()
BASE = "dc=example,dc=com"
UUID = b"5be7d6fc-ee3a-4d3d-91d7-d90b30afeb7f"


def csn(second: int, sid: int) -> bytes:
    """
    @return: a CSN of the given second and server ID.
    """
    return b"20261207120%03d.000000Z#000000#%03x#000000" % (second, sid)


def person(uid: str, csnValue: bytes, **attributes: bytes) -> Entry:
    """
    @return: a person entry under ou=people, with an entryUUID and entryCSN.
    """
    pairs: list[tuple[str, Any]] = [
        ("objectClass", [b"inetOrgPerson"]), ("uid", [uid.encode()]), ("cn", [b"Test"]),
        ("sn", [b"Test"]), ("entryUUID", [UUID]), ("entryCSN", [csnValue]),
    ]
    pairs += [(name, [value]) for name, value in attributes.items()]
    return Entry(DN.parse(f"uid={uid},ou=people,{BASE}"), pairs, SCHEMA)


def changed(old: Entry, new: Entry, csnValue: bytes) -> Entry:
    """
    @return: C{new}, a local write's version of C{old}, stamped as the
        changelog plugin stamps it.
    """
    return stamped(old, _withCSN(new, csnValue), csnValue)


def _withCSN(entry: Entry, csnValue: bytes) -> Entry:
    kept = [(a.description, a.values) for a in entry if a.type.name != "entryCSN"]
    return Entry(entry.dn, kept + [("entryCSN", [csnValue])], SCHEMA)


def _replace(entry: Entry, name: str, value: bytes) -> Entry:
    kept = [(a.description, a.values) for a in entry if a.type.name.lower() != name.lower()]
    return Entry(entry.dn, kept + [(name, [value])], SCHEMA)


def _renamed(entry: Entry) -> Entry:
    """
    @return: C{entry} renamed to C{uid=moved} (its old RDN value removed).
    """
    return Entry(DN.parse(f"uid=moved,ou=people,{BASE}"),
                 [(a.description, a.values) for a in entry if a.type.name != "uid"]
                 + [("uid", [b"moved"])], SCHEMA)


def _content(entry: Entry) -> tuple[str, list[tuple[str, list[bytes]]]]:
    return (str(entry.ndn), sorted((a.description.lower(), sorted(a.values)) for a in entry))


class CSNTests(unittest.SynchronousTestCase):
    """
    The per-server-ID CSN helpers.
    """

    def test_merge(self) -> None:
        """
        Merged sets of context CSNs keep the greatest of each server ID.
        """
        self.assertEqual(mergeCSNs([csn(1, 1), csn(5, 2)], [csn(3, 1), csn(2, 2), csn(4, 3)]),
                         [csn(3, 1), csn(5, 2), csn(4, 3)])
        self.assertEqual(csnSID(csn(1, 0x12)), 0x12)
        self.assertIsNone(csnSID(b"garbage"))

    def test_newerThan(self) -> None:
        """
        A CSN is newer than a vector that holds less of its server ID, or
        nothing of it.
        """
        vector = csnVector([csn(5, 1), csn(3, 2)])
        self.assertTrue(newerThan(csn(6, 1), vector))
        self.assertFalse(newerThan(csn(5, 1), vector))
        self.assertFalse(newerThan(csn(2, 2), vector))
        self.assertTrue(newerThan(csn(1, 3), vector))


class MergeTests(unittest.SynchronousTestCase):
    """
    Two versions of an entry, changed on two suppliers from one original,
    merge to the same entry on both, whichever way round.
    """

    def setUp(self) -> None:
        self.original = person("mover", csn(1, 1))

    def assertConverges(self, a: Entry, b: Entry) -> Entry:
        """
        Merging either version into the other gives one entry.
        """
        onA, onB = merge(a, b), merge(b, a)
        self.assertEqual(_content(onA), _content(onB))
        # Merging again changes nothing: no change circulates.
        self.assertEqual(_content(merge(onA, b)), _content(onA))
        self.assertEqual(_content(merge(onB, a)), _content(onB))
        return onA

    def test_replaceLaterWins(self) -> None:
        """
        One attribute replaced on both: the later value everywhere, with
        the later entryCSN.
        """
        a = changed(self.original, _replace(self.original, "description", b"a"), csn(2, 1))
        b = changed(self.original, _replace(self.original, "description", b"b"), csn(3, 2))
        merged = self.assertConverges(a, b)
        self.assertEqual(merged.get("description"), (b"b",))
        self.assertEqual(merged.get("entryCSN"), (csn(3, 2),))

    def test_differentAttributes(self) -> None:
        """
        Different attributes changed on each: both changes are kept.
        """
        a = changed(self.original, _replace(self.original, "mail", b"m@example.com"), csn(2, 1))
        b = changed(self.original, _replace(self.original, "telephoneNumber", b"1"), csn(3, 2))
        merged = self.assertConverges(a, b)
        self.assertEqual(merged.get("mail"), (b"m@example.com",))
        self.assertEqual(merged.get("telephoneNumber"), (b"1",))

    def test_renameAndModify(self) -> None:
        """
        Renamed on one supplier, modified on the other (later): the entry
        has the new name and the modification.
        """
        a = changed(self.original, _renamed(self.original), csn(2, 1))
        b = changed(self.original, _replace(self.original, "description", b"b"), csn(3, 2))
        merged = self.assertConverges(a, b)
        self.assertEqual(str(merged.dn), f"uid=moved,ou=people,{BASE}")
        self.assertEqual(merged.get("uid"), (b"moved",))
        self.assertEqual(merged.get("description"), (b"b",))

    def test_rdnValueKept(self) -> None:
        """
        Renamed on one supplier while its naming attribute was replaced
        later on the other: the new RDN's value stays in the entry.
        """
        a = changed(self.original, _renamed(self.original), csn(2, 1))
        b = changed(self.original, _replace(self.original, "uid", b"other"), csn(3, 2))
        merged = self.assertConverges(a, b)
        self.assertEqual(str(merged.dn), f"uid=moved,ou=people,{BASE}")
        self.assertEqual(sorted(merged.get("uid")), [b"moved", b"other"])

    def test_unstampedWholeEntry(self) -> None:
        """
        A version whose last write stamped nothing (slapd's, among the
        suppliers) is kept whole if its entryCSN is the later, and loses
        whole if not, as slapd resolves conflicts.
        """
        a = changed(self.original, _replace(self.original, "mail", b"m@example.com"), csn(2, 1))
        fromSlapd = _withCSN(_replace(self.original, "description", b"slapd"), csn(3, 2))
        merged = self.assertConverges(a, fromSlapd)
        self.assertEqual(_content(merged), _content(fromSlapd))
        earlier = _withCSN(_replace(self.original, "description", b"slapd"), csn(1, 2))
        self.assertEqual(_content(self.assertConverges(a, earlier)), _content(a))

    def test_stamped(self) -> None:
        """
        A local write stamps the types it changed, and the name when it
        renamed the entry; CSNs of earlier changes are kept.
        """
        a = changed(self.original, _replace(self.original, "description", b"a"), csn(2, 1))
        self.assertEqual(attributeCSNs(a), {"description": csn(2, 1)})
        b = changed(a, _renamed(a), csn(4, 1))
        self.assertEqual(attributeCSNs(b), {"description": csn(2, 1), "dn": csn(4, 1),
                                            "uid": csn(4, 1)})
        self.assertEqual(len(b.get(ATTRIBUTE_CSN)), 3)

    def test_created(self) -> None:
        """
        A local add stamps its CSN as the add's, which later writes and
        merges keep; an entry never changed since its add still merges
        whole, by C{entryCSN}.
        """
        added = created(self.original, csn(1, 1))
        self.assertEqual(createdCSN(added), csn(1, 1))
        self.assertIsNone(createdCSN(self.original))
        a = changed(added, _replace(added, "description", b"a"), csn(2, 1))
        self.assertEqual(createdCSN(a), csn(1, 1))
        b = changed(added, _renamed(added), csn(3, 2))
        self.assertEqual(createdCSN(self.assertConverges(a, b)), csn(1, 1))
        later = _withCSN(_replace(added, "sn", b"Later"), csn(4, 2))
        self.assertEqual(_content(self.assertConverges(added, later)), _content(later))


class ConfigTests(unittest.SynchronousTestCase):
    """
    C{[[replica]]} tables with C{multi_supplier = true}.
    """

    def load(self, replicas: str, plugin: str = '[[plugin]]\nname = "changelog"\nsid = 1\n') -> Any:
        return loadReplicaConfig(self, 'backend = "memory"\n', f"{plugin}\n{replicas}")

    def replica(self, provider: str, extra: str = "multi_supplier = true\n") -> str:
        return f'[[replica]]\nsuffix = "{BASE}"\nprovider = "{provider}"\n{extra}\n'

    def test_valid(self) -> None:
        """
        One table per other supplier: the database takes writes (no
        referral) and knows its consumers; each consumer's service has a
        name of its own.
        """
        config = self.load(self.replica("ldap://b") + self.replica("ldap://c"))
        db = config.directory.databases[0]
        self.assertIsNone(db.replica)
        self.assertEqual(list(db.suppliers.consumers), list(config.replicas))
        self.assertEqual(len({consumer.name for consumer in config.replicas}), 2)
        self.assertTrue(all(c.settings.multiSupplier for c in config.replicas))

    def assertProblem(self, replicas: str, where: str, problem: str, **kwargs: str) -> None:
        with self.assertRaises(ConfigError) as caught:
            self.load(replicas, **kwargs)
        message = str(caught.exception)
        self.assertIn(f"ldapd.toml: {where}: ", message)
        self.assertIn(problem, message)

    def test_problems(self) -> None:
        """
        Without the changelog plugin, or without a sid, or mixed with a
        single provider's table, or chaining writes, it is refused.
        """
        self.assertProblem(self.replica("ldap://b"), "replica[0].multi_supplier",
                           "changelog plugin", plugin="")
        self.assertProblem(self.replica("ldap://b"), "replica[0].multi_supplier", "sid",
                           plugin='[[plugin]]\nname = "changelog"\n')
        self.assertProblem(self.replica("ldap://b") + self.replica("ldap://c", ""),
                           "replica[1].suffix", "multi_supplier = true")
        self.assertProblem(self.replica("ldap://c", "") + self.replica("ldap://b"),
                           "replica[1].suffix", "two [[replica]] tables")
        self.assertProblem(self.replica("ldap://b", "multi_supplier = true\nchain_writes = true\n"),
                           "replica[0].chain_writes", "takes writes itself")


class ProviderTests(ProviderTestsBase):
    """
    The provider of a database replicated between suppliers (sid 1): one
    CSN per server ID in its cookies, each compared with the consumer's of
    the same server ID, and a consumer's own changes never sent back to it.
    """

    withChangelog = False

    def makeDirectory(self) -> Any:
        self.extraPlugins = (Changelog(sid=1),)
        backend = super().makeDirectory()
        db = self.directory.databases[0]
        db.suppliers = Suppliers(db.normalizedSuffix)
        return backend

    def contextCSNs(self) -> dict[int | None, bytes]:
        suffix = self.successResultOf(
            self.backend.get(None, self.schema.normalizeDN(DN.parse(BASE))))
        return csnVector(suffix.get("contextCSN"))

    def writeAs(self, sid: int, dn: str, value: bytes) -> None:
        """
        Modify an entry with CSNs of another server ID, as if made there.
        """
        self.directory.csn.sid = sid
        try:
            self.modify(dn, "description", value)
        finally:
            self.directory.csn.sid = 1

    def cookie(self, sid: int, *csns: bytes) -> bytes:
        return b"rid=001,sid=%03x,csn=" % sid + b";".join(csns)

    def test_perServerID(self) -> None:
        """
        The cookie carries the CSN of each server ID; a consumer is sent
        the changes newer than its CSN of their server ID, but never those
        of its own server ID.
        """
        self.modify(ALICE, "description", b"one")
        before = self.contextCSNs()[1]
        self.writeAs(2, f"uid=bob,{PEOPLE}", b"from two")
        self.modify(ALICE, "description", b"two")
        vector = self.contextCSNs()
        self.assertEqual(sorted(vector), [1, 2])
        sent = self.refresh(self.cookie(3, before))
        self.assertEqual(sorted(self.entries(sent)), [ALICE.lower(), f"uid=bob,{PEOPLE}".lower()])
        self.assertEqual(sent[-1].done.cookie, b"rid=001,sid=001,csn=" + vector[1] + b";" + vector[2])
        sent = self.refresh(self.cookie(2, before))
        self.assertEqual(sorted(self.entries(sent)), [ALICE.lower()])
        sent = self.refresh(self.cookie(3, before, vector[2]))
        self.assertEqual(sorted(self.entries(sent)), [ALICE.lower()])
        sent = self.refresh(self.cookie(3, vector[1], vector[2]))
        self.assertEqual(self.entries(sent), {})

    def test_consumerNewer(self) -> None:
        """
        A cookie is refused as newer than the provider only for the
        provider's own server ID: a consumer may hold later changes of
        another supplier than the provider has yet.
        """
        own = self.contextCSNs()[1]
        later = b"29990101000000.000000Z#000000#%03x#000000"
        sent = self.refresh(self.cookie(3, own, later % 2))
        self.assertEqual(sent[-1].resultCode, 0)
        sent = self.refresh(self.cookie(3, later % 1))
        self.assertEqual([(s.kind, s.resultCode) for s in sent], [("done", 53)])

    def test_retiredServerID(self) -> None:
        """
        A cookie naming a server ID whose changes the log no longer holds
        (a supplier retired long ago), of which the consumer has all this
        server has, is still covered: the consumer is sent the changes
        since, not the present phase.
        """
        retired = b"20000101000000.000000Z#000000#005#000000"
        held = self.contextCSNs()[1]
        self.modify(ALICE, "description", b"after")
        sent = self.refresh(self.cookie(3, held, retired))
        self.assertEqual([s.kind for s in sent], ["entry", "done"])
        self.assertEqual(sent[0].dn.lower(), ALICE.lower())

    def test_committedOutOfOrder(self) -> None:
        """
        A change stamped before another but committed after it reaches a
        consumer that resumes with a cookie naming the later one: of each
        server ID, every change the log holds after the record of the
        cookie's CSN is sent, whatever its CSN.
        """
        earlier = StampedEarlier(self.directory)
        self.modify(ALICE, "description", b"later")
        cookie = Cookie.parse(self.refresh(self.cookie(3))[-1].done.cookie)
        self.assertEqual(cookie.csns, (self.contextCSNs()[1],))
        earlier.commit(lambda: self.modify(f"uid=bob,{PEOPLE}", "description", b"earlier"))
        sent = self.refresh(replace(cookie, sid=3).format())
        self.assertEqual(sorted(self.entries(sent)), [f"uid=bob,{PEOPLE}".lower()])
        self.assertEqual(self.entries(sent)[f"uid=bob,{PEOPLE}".lower()].attributes["description"],
                         [b"earlier"])

    def test_committedOutOfOrderPersist(self) -> None:
        """
        The persist stage sends every change committed after the refresh,
        one stamped before the consumer's cookie included, but the
        consumer's own.
        """
        earlier = StampedEarlier(self.directory)
        self.modify(ALICE, "description", b"later")
        sent, d, op = self.sync(REFRESH_AND_PERSIST, self.cookie(3, self.contextCSNs()[1]))
        del sent[:]
        earlier.commit(lambda: self.modify(f"uid=bob,{PEOPLE}", "description", b"earlier"))
        self.assertEqual(sent[-1].dn.lower(), f"uid=bob,{PEOPLE}".lower())
        self.writeAs(3, ALICE, b"from three")
        self.assertEqual((sent[-1].kind, sent[-1].info.kind), ("info", NEW_COOKIE))
        op.abandon()
        self.successResultOf(d)

    def test_deleteCSN(self) -> None:
        """
        A consumer that names C{ldapdAttributeCSN} (ldapd's, among
        suppliers) is sent each delete with the CSN of its record, as
        C{entryCSN}, in the refresh too (not in a syncIdSet); another
        consumer is sent a delete's name alone.
        """
        held = self.contextCSNs()[1]
        self.delete(f"uid=bob,{PEOPLE}")
        deleted = self.contextCSNs()[1]
        named = (b"*", b"+", ATTRIBUTE_CSN.encode())
        sent = self.refresh(self.cookie(3, held), attributes=named)
        self.assertEqual([(s.kind, s.dn.lower(), s.attributes) for s in sent if s.kind == "entry"],
                         [("entry", f"uid=bob,{PEOPLE}".lower(), {"entryCSN": [deleted]})])
        self.assertEqual([s.info.kind for s in self.refresh(self.cookie(3, held))
                          if s.kind == "info"], [SYNC_ID_SET])
        sent, d, op = self.sync(REFRESH_AND_PERSIST, self.cookie(3, deleted), attributes=named)
        self.delete(f"uid=carol,{PEOPLE}")
        self.assertEqual((sent[-1].state.state, sent[-1].attributes),
                         (STATE_DELETE, {"entryCSN": [self.contextCSNs()[1]]}))
        op.abandon()
        self.successResultOf(d)

    def test_replicatedDeleteCSN(self) -> None:
        """
        A delete a consumer applies with the CSN its supplier sent is
        recorded with that CSN, and leaves C{contextCSN} as it was (the
        consumer's cookie moves it); without one it gets this server's
        own, and moves this server's value.
        """
        before = self.contextCSNs()
        origin = csn(30, 2)
        self.deleteReplicated(f"uid=bob,{PEOPLE}", origin)
        _, last = self.successResultOf(self.backend.changeBounds())
        self.assertEqual((last.kind, last.csn), ("delete", origin))
        self.assertEqual(self.contextCSNs(), before)
        self.deleteReplicated(f"uid=carol,{PEOPLE}", None)
        _, last = self.successResultOf(self.backend.changeBounds())
        self.assertEqual(csnSID(last.csn), 1)
        self.assertEqual(self.contextCSNs()[1], last.csn)

    def deleteReplicated(self, dn: str, origin: bytes | None) -> None:
        """
        Delete an entry as a consumer applies a supplier's delete.
        """
        op = self.directory.internalOperation()
        op.originCSN = origin
        ndn = self.schema.normalizeDN(DN.parse(dn))
        self.successResultOf(Deferred.fromCoroutine(self.directory.writeReplicated(
            op, DELETE, ndn, lambda backend, hooks: backend.delete(op, ndn, hooks))))
