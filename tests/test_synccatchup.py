"""
The provider's catch-up (L{ldapd.syncrepl.catchup}): the planning of what a
consumer is sent and in which order, from records alone; then, at the
provider, seeded random sequences of adds, modifies, renames, moves and
deletes of entries and of their ancestors, replayed to consumers that apply
each message as strictly as slapd's consumer does (an entry is looked up by
its entryUUID; a rename needs its new parent and a free name; a delete needs
a leaf) from cookies taken at random earlier points, in both refresh phases.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

from twisted.trial import unittest

from ldapd.changes import ADD, DELETE, MODIFY, RENAME, ChangeRecord
from ldapd.dn import DN
from ldapd.filters import compileFilter
from ldapd.operation import Scope, SearchParameters
from ldapd.schema import Schema
from ldapd.syncrepl.catchup import Step, namesBefore, order, settledCSNs
from ldapd.syncrepl.codec import ADD as STATE_ADD
from ldapd.syncrepl.codec import DELETE as STATE_DELETE
from ldapd.syncrepl.codec import MODIFY as STATE_MODIFY
from ldapd.syncrepl.codec import PRESENT, REFRESH_PRESENT, SYNC_ID_SET, uuidFromBytes
from ldapd.testing import parseFilter
from test_syncprovider import BASE, PEOPLE, ProviderTestsBase, Sent

SCHEMA = Schema.standard()


def _dn(text: str) -> DN:
    return SCHEMA.normalizeDN(DN.parse(text))


def _record(n: int, kind: str, uuid: str, target: str, newRDN: str | None = None,
            newSuperior: str | None = None) -> ChangeRecord:
    return ChangeRecord(
        n, b"%d" % n, datetime(2026, 1, 1, tzinfo=timezone.utc), kind, target, uuid.encode(),
        newRDN=newRDN, deleteOldRDN=True if kind == RENAME else None, newSuperior=newSuperior,
    )


class NamesBeforeTests(unittest.SynchronousTestCase):
    """
    L{namesBefore} finds each changed entry's name before a run of changes.
    """

    def test_renamedAncestor(self) -> None:
        """
        An entry first changed after its parent's rename had, before the
        run, its name under the parent's old name.
        """
        names = namesBefore([
            _record(1, RENAME, "p", f"ou=a,{BASE}", "ou=b"),
            _record(2, MODIFY, "c", f"uid=x,ou=b,{BASE}"),
            _record(3, RENAME, "c", f"uid=x,ou=b,{BASE}", "uid=y"),
        ], SCHEMA.normalizeDN)
        self.assertEqual(names, {b"p": _dn(f"ou=a,{BASE}"), b"c": _dn(f"uid=x,ou=a,{BASE}")})

    def test_added(self) -> None:
        """
        An entry the run added had no name before it, even when deleted and
        added again under the same name, the second time with another
        entryUUID.
        """
        names = namesBefore([
            _record(1, DELETE, "old", f"uid=x,{PEOPLE}"),
            _record(2, ADD, "new", f"uid=x,{PEOPLE}"),
            _record(3, RENAME, "new", f"uid=x,{PEOPLE}", "uid=y"),
        ], SCHEMA.normalizeDN)
        self.assertEqual(names, {b"old": _dn(f"uid=x,{PEOPLE}"), b"new": None})


class OrderTests(unittest.SynchronousTestCase):
    """
    L{order} sends each message when the consumer can apply it.
    """

    def assertOrder(self, steps: list[Step], expected: list[bytes]) -> None:
        self.assertEqual([s.uuid for s in order(steps).steps], expected)

    def test_parentFirst(self) -> None:
        """
        A child added under a parent whose last change came later is sent
        after its parent.
        """
        self.assertOrder([
            Step(b"c", None, _dn(f"uid=c,ou=p,{BASE}")),
            Step(b"p", None, _dn(f"ou=p,{BASE}")),
        ], [b"p", b"c"])

    def test_nameVacated(self) -> None:
        """
        An entry taking a name another entry leaves (by a rename later
        followed by another) comes after that entry has left.
        """
        self.assertOrder([
            Step(b"new", None, _dn(f"uid=a,{PEOPLE}")),
            Step(b"old", _dn(f"uid=a,{PEOPLE}"), _dn(f"uid=arr,{PEOPLE}")),
        ], [b"old", b"new"])

    def test_deleteAfterChildrenLeft(self) -> None:
        """
        An entry is deleted once its children have moved away, and a new
        entry takes its name after the delete.
        """
        self.assertOrder([
            Step(b"p", _dn(f"ou=p,{BASE}"), None),
            Step(b"again", None, _dn(f"ou=p,{BASE}")),
            Step(b"c", _dn(f"uid=c,ou=p,{BASE}"), _dn(f"uid=c,{PEOPLE}")),
        ], [b"c", b"p", b"again"])

    def test_movedSubtree(self) -> None:
        """
        A subtree moved and then a child in it renamed: the parent goes
        first; the consumer's names of the children follow it.
        """
        self.assertOrder([
            Step(b"c", _dn(f"uid=c,ou=p,{BASE}"), _dn(f"uid=d,ou=p,ou=q,{BASE}")),
            Step(b"p", _dn(f"ou=p,{BASE}"), _dn(f"ou=p,ou=q,{BASE}")),
            Step(b"x", None, _dn(f"uid=c,ou=p,{BASE}")),
        ], [b"p", b"c", b"x"])

    def test_swap(self) -> None:
        """
        Two entries that swapped names are sent in log order, and said to
        be stuck, when neither is known to be a leaf.
        """
        steps = [
            Step(b"a", _dn(f"uid=a,{PEOPLE}"), _dn(f"uid=b,{PEOPLE}")),
            Step(b"b", _dn(f"uid=b,{PEOPLE}"), _dn(f"uid=a,{PEOPLE}")),
        ]
        ordered = order(steps)
        self.assertEqual((ordered.steps, ordered.stuck), (steps, [b"a", b"b"]))

    def test_swapOfLeaves(self) -> None:
        """
        Of two leaves that swapped names, the first is sent as a delete,
        then the second under its new name, then the first as an add under
        its own.
        """
        a, b = _dn(f"uid=a,{PEOPLE}"), _dn(f"uid=b,{PEOPLE}")
        ordered = order([Step(b"a", a, b, "A"), Step(b"b", b, a, "B")], leaves={b"a", b"b"})
        self.assertEqual(ordered, ([Step(b"a", a, None), Step(b"b", b, a, "B"),
                                    Step(b"a", None, b, "A")], []))


class SettledCSNsTests(unittest.SynchronousTestCase):
    """
    L{settledCSNs} names, after each message of a catch-up, the greatest
    CSN a consumer resuming from it loses nothing with.
    """

    def test_inLogOrder(self) -> None:
        """
        Messages sent in the log order of their entries' last changes
        settle each last change's CSN as they go, and a change of an entry
        sent later is settled only once that entry is sent.
        """
        records = [_record(1, ADD, "a", f"uid=a,{PEOPLE}"), _record(2, ADD, "b", f"uid=b,{PEOPLE}"),
                   _record(3, MODIFY, "a", f"uid=a,{PEOPLE}"),
                   _record(4, DELETE, "c", f"uid=c,{PEOPLE}")]
        steps = [Step(b"b", None, _dn(f"uid=b,{PEOPLE}"), "B"),
                 Step(b"a", None, _dn(f"uid=a,{PEOPLE}"), "A"),
                 Step(b"c", _dn(f"uid=c,{PEOPLE}"), None)]
        self.assertEqual(settledCSNs(records, steps), [b"1", b"2", b"3", b"4"])

    def test_delayed(self) -> None:
        """
        A message held back behind a later one holds the CSN back with it:
        nothing after its entry's last change is settled until it is sent.
        """
        records = [_record(1, MODIFY, "a", f"uid=a,{PEOPLE}"),
                   _record(2, DELETE, "b", f"uid=b,{PEOPLE}"),
                   _record(3, MODIFY, "c", f"uid=c,{PEOPLE}")]
        steps = [Step(b"c", _dn(f"uid=c,{PEOPLE}"), _dn(f"uid=c,{PEOPLE}"), "C"),
                 Step(b"b", _dn(f"uid=b,{PEOPLE}"), None),
                 Step(b"a", _dn(f"uid=a,{PEOPLE}"), _dn(f"uid=a,{PEOPLE}"), "A")]
        self.assertEqual(settledCSNs(records, steps), [None, None, None, b"3"])


class StrictConsumer:
    """
    A consumer applying sync messages as slapd's does, refusing what slapd
    refuses: its entries by entryUUID, their names, and their attributes.

    @ivar entries: entryUUID to (normalised name, attributes).
    @ivar takenOver: how many entries an add took the name of.
    """

    def __init__(self, test: unittest.TestCase) -> None:
        self.test = test
        self.entries: dict[bytes, tuple[DN, dict[str, list[bytes]]]] = {}
        self.byName: dict[DN, bytes] = {}
        self.present: set[bytes] = set()
        self.takenOver = 0

    def _fail(self, why: str) -> None:
        self.test.fail(why)

    def apply(self, messages: list[Sent]) -> None:
        """
        Apply a refresh's messages; after a present phase, delete what was
        not mentioned.
        """
        for message in messages:
            if message.kind == "info" and message.info.kind == REFRESH_PRESENT:
                # The end of a present phase a delete phase follows.
                self._deleteNotPresent()
            if message.kind == "info" and message.info.kind == SYNC_ID_SET:
                for octets in message.info.syncUUIDs:
                    uuid = uuidFromBytes(octets).encode()
                    if message.info.refreshDeletes:
                        self._delete(uuid)
                    else:
                        self.present.add(uuid)
            if message.kind != "entry":
                continue
            uuid = uuidFromBytes(message.state.entryUUID).encode()
            state = message.state.state
            self.present.add(uuid)
            if state == STATE_DELETE:
                self._delete(uuid)
            elif state in (STATE_ADD, STATE_MODIFY):
                self._put(uuid, _dn(message.dn), message.attributes)
            else:
                self.test.assertEqual(state, PRESENT)
        done = messages[-1]
        if done.kind == "done" and done.done is not None and not done.done.refreshDeletes:
            self._deleteNotPresent()
        self.present = set()

    def _deleteNotPresent(self) -> None:
        gone = [u for u in self.entries if u not in self.present]
        for uuid in sorted(gone, key=lambda u: -len(self.entries[u][0])):
            self._delete(uuid)

    def _delete(self, uuid: bytes) -> None:
        if uuid not in self.entries:
            return
        name = self.entries[uuid][0]
        children = [n for n in self.byName if len(n) > len(name) and n.isWithin(name)]
        if children:
            self._fail(f"delete of {name} which has children {children}")
        del self.entries[uuid]
        del self.byName[name]

    def _put(self, uuid: bytes, name: DN, attributes: dict[str, list[bytes]]) -> None:
        old = self.entries.get(uuid, (None, None))[0]
        if old is None and name in self.byName:
            # As slapd's consumer does when an add finds the name taken:
            # the entry there becomes the one sent. Only the present phase
            # may need it: it does not know what the consumer had.
            self.takenOver += 1
            old = name
            del self.entries[self.byName[name]]
        elif old != name:
            if name in self.byName:
                self._fail(f"{name} is taken by {self.byName[name]!r}, wanted by {uuid!r}")
            if name != _dn(BASE) and name.parent() not in self.byName:
                self._fail(f"no parent for {name}")
        if old is not None and old != name:
            for other, (otherName, otherAttributes) in list(self.entries.items()):
                if otherName.isWithin(old):
                    del self.byName[otherName]
                    moved = otherName.moved(old, name)
                    self.entries[other] = (moved, otherAttributes)
                    self.byName[moved] = other
        self.entries[uuid] = (name, dict(attributes))
        self.byName[name] = uuid

    def content(self) -> dict[DN, dict[str, list[bytes]]]:
        """
        @return: the entries by name, their attributes in a comparable form.
        """
        return {
            name: {a.lower(): sorted(v) for a, v in attributes.items()}
            for name, attributes in self.entries.values()
        }


class RandomCatchUpTests(ProviderTestsBase):
    """
    Seeded random sequences of changes at the provider; consumers that were
    up to date at random earlier points catch up from their cookies, in the
    delete phase while the changelog covers them and in the present phase
    once it no longer does, and hold exactly the provider's entries.
    """

    attributes = (b"*", b"entryUUID")

    def consumerNow(self) -> StrictConsumer:
        """
        @return: a consumer filled by a full refresh.
        """
        consumer = StrictConsumer(self)
        consumer.apply(self.refresh(attributes=self.attributes))
        return consumer

    def names(self) -> list[DN]:
        """
        @return: the normalised names of the provider's entries, sorted.
        """
        op = self.directory.internalOperation()
        op.search = SearchParameters(_dn(BASE), Scope.SUB, compileFilter(parseFilter(
            "(objectClass=*)"), self.schema))
        found: list[Any] = []
        self.successResultOf(self.backend.search(op, found.append))
        return sorted((e.ndn for e in found), key=str)

    def randomChange(self, rng: random.Random, serial: list[int], swaps: bool) -> None:
        """
        Make one random change: add a person or an organizational unit,
        modify, rename a leaf (often the same one again), move a unit with
        its subtree, delete a leaf, delete an entry and add another under
        its name, or (with C{swaps}) have two people swap names.
        """
        names = self.names()
        units = [n for n in names if n.rdn[0].type == "ou" or n == _dn(BASE)]
        parents = {n.parent() for n in names}
        leaves = [n for n in names if n != _dn(BASE) and n not in parents]
        serial[0] += 1
        kind = rng.choice(["add", "add", "unit", "modify", "rename", "rename", "move", "delete",
                           "again"] + ["swap"] * swaps)
        if kind == "add" or not leaves:
            self.add(f"r{serial[0]}", str(rng.choice(units)))
        elif kind == "unit":
            parent = rng.choice([u for u in units if len(u) <= 4])
            self.write(_addUnit(f"u{serial[0]}", str(parent)))
        elif kind == "modify":
            target = rng.choice([n for n in names if n.rdn[0].type == "uid"] or leaves)
            self.modify(str(target), "description", b"d%d" % serial[0])
        elif kind == "rename":
            target = rng.choice(leaves)
            rdn = target.rdn[0]
            parent = str(rng.choice(units)) if rng.random() < 0.3 else None
            if parent is not None and _dn(parent) in (target, target.parent()):
                parent = None
            newRDN = f"{rdn.type}={rdn.value}r"
            if _dn(f"{newRDN},{parent or target.parent()}") not in names:
                self.rename(str(target), newRDN, parent)
        elif kind == "move":
            movable = [u for u in units if len(u) > 2]
            if not movable:
                return
            unit = rng.choice(movable)
            parents = [u for u in units if not u.isWithin(unit) and u != unit.parent()]
            if not parents:
                return
            parent = rng.choice(parents)
            if _dn(f"ou={unit.rdn[0].value}m,{parent}") not in names:
                self.rename(str(unit), f"ou={unit.rdn[0].value}m", str(parent))
        elif kind == "delete":
            self.delete(str(rng.choice(leaves)))
        elif kind == "swap":
            # Two people swap names through a third.
            people = [n for n in leaves if n.rdn[0].type == "uid"]
            if len(people) < 2:
                return
            first, second = rng.sample(people, 2)
            through = f"uid=swap{serial[0]}"
            self.rename(str(first), through, str(second.parent()))
            self.rename(str(second), f"uid={first.rdn[0].value}", str(first.parent()))
            self.rename(f"{through},{second.parent()}", f"uid={second.rdn[0].value}")
        else:
            target = rng.choice([n for n in leaves if n.rdn[0].type == "uid"] or leaves)
            self.delete(str(target))
            if target.rdn[0].type == "uid":
                self.add(target.rdn[0].value, str(target.parent()))
            else:
                self.write(_addUnit(target.rdn[0].value, str(target.parent())))

    def runSeed(self, seed: int, changes: int = 40, trim: bool = False) -> None:
        """
        In a new directory, make C{changes} random changes, taking a
        consumer and its cookie
        before each of them with some probability; then catch every consumer
        up (after trimming the changelog to its last record when C{trim})
        and compare it with the provider.
        """
        self.backend = self.makeDirectory()
        rng = random.Random(seed)
        serial = [0]
        consumers = []
        for _ in range(changes):
            if rng.random() < 0.2:
                consumers.append((b"rid=1,csn=" + self.contextCSN(), self.consumerNow()))
            # The present phase sends changed entries in the order it finds
            # them, knowing nothing of the consumer's names: swaps are for
            # the catch-up from the changelog only.
            self.randomChange(rng, serial, swaps=not trim)
            self.clock.advance(0.001)
        if trim:
            self.successResultOf(self.backend.trimChanges(None, 1))
        expected = self.consumerNow().content()
        for cookie, consumer in consumers:
            sent = self.refresh(cookie, attributes=self.attributes)
            self.assertEqual(sent[-1].resultCode, 0)
            consumer.apply(sent)
            self.assertEqual(consumer.content(), expected, f"seed {seed}, cookie {cookie!r}")
            self.assertEqual(consumer.takenOver, 0)

    def test_deletePhase(self) -> None:
        """
        Consumers catching up from the changelog converge, for every seed.
        """
        for seed in range(25):
            self.runSeed(seed)

    def test_presentPhase(self) -> None:
        """
        Consumers whose cookies the trimmed changelog no longer covers
        converge through the present phase.
        """
        for seed in range(100, 110):
            self.runSeed(seed, trim=True)


def _addUnit(ou: str, parent: str) -> Any:
    """
    @return: the add request of an organizational unit.
    """
    from ldaptor.protocols import pureber, pureldap

    return pureldap.LDAPAddRequest(
        entry=f"ou={ou},{parent}",
        attributes=[
            (pureldap.LDAPAttributeDescription(name),
             pureber.BERSet([pureldap.LDAPAttributeValue(v)]))
            for name, v in [("objectClass", "organizationalUnit"), ("ou", ou)]
        ],
    )
