"""
Multi-supplier replication: the state that lets two versions of one entry,
changed on two servers at once, be merged the same way on every server.

A database replicated between suppliers (C{[[replica]]} tables with
C{multi_supplier = true}) keeps, on each entry, the CSN of the last change
of each of its attribute types and of its name, in the operational
attribute C{ldapdAttributeCSN} (values C{<csn> <type>}, C{dn} for the name,
C{entryUUID} for the entry's add; a type not listed has not changed since
the entry was added). The C{changelog} plugin stamps them in each local
write's transaction (L{created}, L{stamped}), and they travel with the entry to the other suppliers, whose
consumers merge the entry they are sent with their own (L{merge}): each
attribute type, and the name, from the version that changed it last. So a
replace of one attribute made on two servers at once settles on the later
value everywhere, and a rename made on one server and a modify made on
another both take effect, as 389 Directory Server resolves them with its
per-attribute CSNs (OpenLDAP's slapd resolves by the whole entry's
C{entryCSN} unless delta-syncrepl is used).
"""

from __future__ import annotations

from ldapd.entry import Entry, Modification

__all__ = ["ATTRIBUTE_CSN", "attributeCSNs", "created", "createdCSN", "merge", "stamped"]

#: The operational attribute holding the CSNs of an entry's attributes.
ATTRIBUTE_CSN = "ldapdAttributeCSN"

#: The name's key in L{ATTRIBUTE_CSN}.
_NAME = "dn"

#: The add's key in L{ATTRIBUTE_CSN}: an entry's entryUUID is set by its
#: add and never changes.
_CREATED = "entryuuid"

#: Types every write stamps, taken from the version with the greater
#: C{entryCSN}; and the types merged by other rules (the CSNs themselves,
#: contextCSN, which is the database's state, not the entry's).
_WHOLE_ENTRY = frozenset({"entrycsn", "modifytimestamp", "modifiersname"})
_NOT_MERGED = _WHOLE_ENTRY | {ATTRIBUTE_CSN.lower(), "contextcsn"}


def attributeCSNs(entry: Entry) -> dict[str, bytes]:
    """
    @return: the CSN of the last change of each attribute type (its name,
        lower-cased) and of the name (C{"dn"}), as stamped on C{entry}.
    """
    csns: dict[str, bytes] = {}
    for value in entry.get(ATTRIBUTE_CSN):
        csn, _, name = value.partition(b" ")
        key = name.decode("utf-8", "replace").lower()
        if key and csn > csns.get(key, b""):
            csns[key] = csn
    return csns


def _withCSNs(entry: Entry, csns: dict[str, bytes]) -> Entry:
    """
    @return: C{entry} with C{csns} as its L{ATTRIBUTE_CSN}.
    """
    values = [b"%s %s" % (csn, name.encode()) for name, csn in sorted(csns.items())]
    kept = [(a.description, a.values) for a in entry
            if a.type.name.lower() != ATTRIBUTE_CSN.lower()]
    return Entry(entry.dn, kept + ([(ATTRIBUTE_CSN, values)] if values else []),
                 entry.schema, entry.ndn)


def created(entry: Entry, csn: bytes) -> Entry:
    """
    @param entry: an entry a local write adds.
    @param csn: the add's CSN.
    @return: C{entry} with the CSN of its add in its L{ATTRIBUTE_CSN}.
    """
    csns = attributeCSNs(entry)
    csns[_CREATED] = csn
    return _withCSNs(entry, csns)


def createdCSN(entry: Entry) -> bytes | None:
    """
    @return: the CSN of the add of C{entry}, if it was stamped (L{created}).
    """
    return attributeCSNs(entry).get(_CREATED)


def stamped(old: Entry, new: Entry, csn: bytes) -> Entry:
    """
    A local write's new version of an entry, with the CSN of the write
    given to each attribute type it changed and, if it renamed the entry,
    to its name.

    @param old: the entry before the write.
    @param new: the entry after it.
    @param csn: the write's CSN.
    @return: C{new} with its L{ATTRIBUTE_CSN} brought up to date, or C{new}
        itself when the write changed nothing that is merged.
    """
    changed = {at.name.lower() for at in old.changedTypes(new)} - _NOT_MERGED
    if new.ndn != old.ndn:
        changed.add(_NAME)
    if not changed:
        return new
    csns = attributeCSNs(new)
    csns.update((name, csn) for name in changed)
    return _withCSNs(new, csns)


def _entryCSN(entry: Entry) -> bytes:
    return max(entry.get("entryCSN"), default=b"")


def _stampedLast(entry: Entry, csns: dict[str, bytes]) -> bool:
    """
    @return: whether the last write of C{entry} stamped attribute CSNs
        (its C{entryCSN} is one of them, not that of its add alone).
    """
    return _entryCSN(entry) in (csn for key, csn in csns.items() if key != _CREATED)


def merge(local: Entry, incoming: Entry) -> Entry:
    """
    Merge the version of an entry another supplier sent with the local
    one (both of one entryUUID): each attribute type, and the name, from
    the version whose CSN for it is the greater (on a tie, or with no CSN
    on either side, from the version with the greater C{entryCSN}, the
    local one if they are equal); C{entryCSN}, C{modifyTimestamp} and
    C{modifiersName} from the version with the greater C{entryCSN}; each
    CSN the greater of the two. Every supplier merging the same two
    versions, in either order, comes to the same entry. A version whose
    last write stamped no CSNs (an add never changed since, or a write of
    a server that does not stamp them: slapd among the suppliers) makes
    the merge keep the whole version with the later C{entryCSN}, as slapd
    does. Values of the new
    RDN that the merge would leave out (its attribute changed later on
    another server) are kept, so that the entry stays valid.

    @return: the merged entry (equal in content to C{local} when the
        incoming version has nothing newer).
    """
    mine, theirs = attributeCSNs(local), attributeCSNs(incoming)
    incomingLater = _entryCSN(incoming) > _entryCSN(local)
    if not (_stampedLast(local, mine) and _stampedLast(incoming, theirs)):
        # A version last written by a server that stamps no attribute
        # CSNs (slapd, as a supplier of the group), or never changed since
        # its add: the whole entry with the later entryCSN, as slapd keeps it.
        return incoming if incomingLater else local

    def fromIncoming(key: str) -> bool:
        a, b = mine.get(key, b""), theirs.get(key, b"")
        return b > a or (b == a and incomingLater)

    byType = dict.fromkeys(attr.type.name.lower() for source in (local, incoming)
                           for attr in source)
    attributes: list[tuple[str, tuple[bytes, ...]]] = []
    for name in byType:
        if name == ATTRIBUTE_CSN.lower() or name == "contextcsn":
            continue
        take = incomingLater if name in _WHOLE_ENTRY else fromIncoming(name)
        source = incoming if take else local
        attributes.extend((a.description, a.values) for a in source
                          if a.type.name.lower() == name)
    dn = incoming.dn if fromIncoming(_NAME) else local.dn
    merged = Entry(dn, attributes, local.schema)
    missing = [Modification("add", ava.type, (ava.value.encode("utf-8"),)) for ava in dn.rdn
               if (at := local.schema.attributeType(ava.type)) is not None
               and not merged.hasValue(at, ava.value.encode("utf-8"))]
    if missing:
        merged = merged.modified(missing)
    csns = dict(mine)
    for key, csn in theirs.items():
        if csn > csns.get(key, b""):
            csns[key] = csn
    return _withCSNs(merged, csns)
