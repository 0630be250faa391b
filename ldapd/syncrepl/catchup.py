"""
What a consumer must be sent to catch up with a run of changes, and in
which order it can apply it.

A consumer that was away while entries were added, modified, renamed, moved
and deleted is sent each entry the run changed once: in full, under its
current name, if it still exists (and the consumer may see it), or as a
delete if it is gone. The consumer applies these messages one after the
other, looking entries up by their entryUUID (renaming them when the name
differs), so the order matters: a parent must be in place before its
children, a name must have been vacated before another entry takes it, an
entry must have lost its children before it is deleted. The log order of
the changes does not give that order once several changes are merged into
one message (a child added under a parent that was modified later; an entry
renamed twice, with another entry taking its first name in between).

L{namesBefore} works out, from the run's records alone, the name each
changed entry had on the consumer before the run (undoing the renames of
its ancestors); L{order} then follows the consumer's names step by step and
sends each message as soon as the consumer can apply it, in log order
otherwise (and breaks the circles that entries swapping names make, where
one of them is a leaf). Entries the run did not change are never sent: they
move with their renamed ancestors on the consumer as on the provider.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, NamedTuple, Sequence

from ldapd.changes import ADD, RENAME, ChangeRecord
from ldapd.dn import DN, RDN

__all__ = ["Ordered", "Step", "namesBefore", "order", "renamedDN", "settledCSNs", "uuidKey"]

#: A normalised name as the planning compares it: its RDNs, leaf first.
_Name = tuple[RDN, ...]


def uuidKey(record: ChangeRecord) -> bytes:
    """
    @return: the entryUUID a record names, in the form planning keys entries by.
    """
    return record.entryUUID.lower()


def renamedDN(record: ChangeRecord) -> DN:
    """
    @param record: a rename record.
    @return: the name the rename gave its entry.
    @raise ValueError: if the record names no new RDN, or bad DNs.
    """
    if record.newRDN is None:
        raise ValueError("a rename record without its new RDN")
    rdn = DN.parse(record.newRDN).rdn
    if record.newSuperior:
        return DN.parse(record.newSuperior).child(rdn)
    return DN.parse(record.targetDN).parent().child(rdn)


@dataclass(frozen=True)
class Step:
    """
    One message of a catch-up.

    @ivar uuid: the entry's entryUUID (L{uuidKey}).
    @ivar before: its normalised name on the consumer before the run;
        C{None} when the consumer does not have it.
    @ivar after: its normalised name now, when it is sent; C{None} for a
        delete.
    @ivar entry: what is sent: the entry as the search returns it, or
        C{None} for a delete.
    """

    uuid: bytes
    before: DN | None
    after: DN | None
    entry: Any = None


def settledCSNs(records: Sequence[ChangeRecord], steps: Sequence[Step]) -> list[bytes | None]:
    """
    What a consumer holds once the first steps of a catch-up are applied,
    as a cookie can say it: a consumer resuming from a cookie gets every
    change the log holds after that cookie's record (and, before it, those
    with newer CSNs), so a cookie may name a record only when every step
    whose entry changed last at or before it has been sent.

    @param records: the run, in log order.
    @param steps: its messages, in the order they are sent.
    @return: for each C{n} from 0 to C{len(steps)}, the greatest CSN of the
        records before the earliest last change of C{steps[n:]} (all of
        them for C{n = len(steps)}); C{None} where there is no such record.
    """
    lastAt: dict[bytes, int] = {}
    for i, record in enumerate(records):
        lastAt[uuidKey(record)] = i
    greatest: list[bytes | None] = []
    csn: bytes | None = None
    for record in records:
        csn = record.csn if csn is None else max(csn, record.csn)
        greatest.append(csn)
    settled: list[bytes | None] = [csn]
    earliest = len(records)
    for step in reversed(steps):
        earliest = min(earliest, lastAt.get(step.uuid, earliest))
        settled.append(greatest[earliest - 1] if earliest > 0 else None)
    settled.reverse()
    return settled


def namesBefore(
    records: Sequence[ChangeRecord], normalize: Callable[[DN], DN]
) -> dict[bytes, DN | None]:
    """
    The name each entry changed by a run had before it.

    An entry's first record names it as it was named just before that
    change; ancestors renamed earlier in the run had moved it there, so
    their renames are undone, latest first.

    @param records: the run, in log order.
    @param normalize: normalises a DN.
    @return: for each entry the run changed (by L{uuidKey}), its normalised
        name before the run, or C{None} if the run added it. Entries whose
        records cannot be read are left out.
    @raise ValueError: never; unreadable records are skipped.
    """
    first: dict[bytes, int] = {}
    for n, record in enumerate(records):
        first.setdefault(uuidKey(record), n)
    names: dict[bytes, DN | None] = {}
    pending = _Names()
    for n in range(len(records) - 1, -1, -1):
        record = records[n]
        if record.kind == RENAME:
            try:
                old = normalize(DN.parse(record.targetDN)).rdns
                new = normalize(renamedDN(record)).rdns
            except ValueError:
                old = new = ()
            if new:
                pending.move(new, old, exclude=uuidKey(record))
        uuid = uuidKey(record)
        if first[uuid] != n:
            continue
        if record.kind == ADD:
            names[uuid] = None
            continue
        try:
            pending.put(uuid, normalize(DN.parse(record.targetDN)).rdns)
        except ValueError:
            continue
    for uuid, name in pending.at.items():
        names[uuid] = DN(name)
    return names


class Ordered(NamedTuple):
    """
    A catch-up's messages in the order to send them.

    @ivar steps: the messages.
    @ivar stuck: the entries whose messages no order made applicable (names
        swapped between entries), sent last in log order, when none of them
        could be moved out of the way.
    """

    steps: list[Step]
    stuck: list[bytes]


def order(steps: Iterable[Step], leaves: Collection[bytes] = frozenset()) -> Ordered:
    """
    Order a catch-up's messages so that the consumer can apply each when
    it comes: log order (the order of C{steps}) wherever that works.

    Renames that depend on each other in a circle (a to c, b to a, c to
    b) can be applied in no order: one entry of the circle that is a leaf
    on both sides is then sent as a delete, and later as an add under its
    new name (the same entry, entryUUID and all, to the consumer), which
    frees its name for the others.

    @param steps: the messages, in the log order of their entries' last
        changes.
    @param leaves: the entries (by L{uuidKey}) known to have no children
        now, which may be sent so.
    @return: the same messages, ordered.
    """
    steps = list(steps)
    consumer = _Consumer(steps)
    done: list[Step] = []
    waiting: list[Step] = []
    for step in steps:
        if consumer.ready(step):
            consumer.apply(step)
            done.append(step)
            consumer.drain(waiting, done)
        else:
            waiting.append(step)
    consumer.drain(waiting, done)
    while waiting and consumer.breakCircle(waiting, done, leaves):
        consumer.drain(waiting, done)
    done.extend(waiting)
    return Ordered(done, [step.uuid for step in waiting])


class _Names:
    """
    Entries' names, and how many of them lie below each name, so that the
    rename of an entry without tracked descendants costs nothing.

    @ivar at: each entry's name.
    @ivar byName: the entry at each name.
    """

    def __init__(self) -> None:
        self.at: dict[bytes, _Name] = {}
        self.byName: dict[_Name, bytes] = {}
        self._below: Counter[_Name] = Counter()

    def put(self, uuid: bytes, name: _Name) -> None:
        """
        Name an entry (again).
        """
        self.remove(uuid)
        self.at[uuid] = name
        self.byName[name] = uuid
        self._below.update(name[i:] for i in range(1, len(name)))

    def remove(self, uuid: bytes) -> None:
        """
        Forget an entry.
        """
        name = self.at.pop(uuid, None)
        if name is None:
            return
        if self.byName.get(name) == uuid:
            del self.byName[name]
        self._below.subtract(name[i:] for i in range(1, len(name)))

    def hasBelow(self, name: _Name) -> bool:
        """
        @return: whether an entry is named below C{name}.
        """
        return self._below[name] > 0

    def move(self, old: _Name, new: _Name, exclude: bytes | None = None) -> None:
        """
        Rename the entries below C{old} (and at it, but for C{exclude}) as
        a subtree rename of C{old} to C{new} renames them.
        """
        size = len(old)
        moving = [
            (uuid, name) for uuid, name in self.at.items()
            if uuid != exclude and len(name) >= size and name[len(name) - size:] == old
        ] if self.hasBelow(old) or old in self.byName else []
        for uuid, name in moving:
            self.put(uuid, name[: len(name) - size] + new)


class _Consumer:
    """
    The consumer's names of the entries a catch-up sends, as it applies
    the messages.
    """

    def __init__(self, steps: Sequence[Step]) -> None:
        self.names = _Names()
        for step in steps:
            if step.before is not None:
                self.names.put(step.uuid, step.before.rdns)
        self.pending = {step.uuid: step for step in steps}
        self.targets = {step.after.rdns: step.uuid for step in steps if step.after is not None}

    def _staysAt(self, uuid: bytes, name: _Name) -> bool:
        step = self.pending.get(uuid)
        return step is None or (step.after is not None and step.after.rdns == name)

    def ready(self, step: Step) -> bool:
        """
        @return: whether the consumer can apply C{step} now.
        """
        if step.after is None:
            # A delete: its entry must have no children left.
            before = self.names.at.get(step.uuid)
            return before is None or not self.names.hasBelow(before)
        name = step.after.rdns
        for i in range(1, len(name)):
            # Its new ancestors must be in place...
            ancestor = self.targets.get(name[i:])
            if ancestor is not None and ancestor != step.uuid and ancestor in self.pending:
                return False
        for i in range(len(name)):
            # ...and nothing on its way that is still to move or go.
            there = self.names.byName.get(name[i:])
            if there is not None and there != step.uuid and not self._staysAt(there, name[i:]):
                return False
        return True

    def apply(self, step: Step) -> None:
        """
        Follow what applying C{step} does to the consumer's names.
        """
        del self.pending[step.uuid]
        if step.after is None:
            self.names.remove(step.uuid)
            return
        before = self.names.at.get(step.uuid)
        if before is not None and before != step.after.rdns:
            self.names.move(before, step.after.rdns)
        self.names.put(step.uuid, step.after.rdns)

    def breakCircle(self, waiting: list[Step], done: list[Step], leaves: Collection[bytes]) -> bool:
        """
        Send the first waiting entry that the consumer holds as a leaf, is
        a leaf now and is renamed or moved, as a delete now and an add
        later.

        @return: whether one was found.
        """
        for i, step in enumerate(waiting):
            before = self.names.at.get(step.uuid)
            if (step.after is not None and before is not None and step.uuid in leaves
                    and not self.names.hasBelow(before)):
                delete = Step(step.uuid, DN(before), None)
                self.pending[step.uuid] = delete
                self.apply(delete)
                done.append(delete)
                waiting[i] = Step(step.uuid, None, step.after, step.entry)
                self.pending[step.uuid] = waiting[i]
                return True
        return False

    def drain(self, waiting: list[Step], done: list[Step]) -> None:
        """
        Apply the waiting steps that have become applicable, earliest first,
        until none is.
        """
        progress = True
        while progress:
            progress = False
            for i, step in enumerate(waiting):
                if self.ready(step):
                    del waiting[i]
                    self.apply(step)
                    done.append(step)
                    progress = True
                    break
