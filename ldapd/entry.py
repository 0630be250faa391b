"""
Entries, the changes that writes make to them, and the continuation
references a search may return in place of entries.

An L{Entry} is a DN with attributes, tied to the schema that normalises its
values. The rules of Modify (RFC 4511 §4.6) and of ModifyDN's RDN handling live
here, once, so that every backend applies a change the same way and raises the
same result codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.logger import Logger

from ldapd.dn import DN
from ldapd.escaping import escapeControl
from ldapd.schema import (
    SYNTAXES,
    AttributeType,
    InvalidValue,
    ObjectClass,
    Schema,
    isAttributeDescription,
)

__all__ = ["Attribute", "Entry", "Modification", "SearchReference", "parseDescription"]

_log = Logger()

#: The OID of objectClass.
_OBJECT_CLASS = "2.5.4.0"


def parseDescription(schema: Schema, description: str) -> tuple[AttributeType, tuple[str, ...]]:
    """
    Resolve an attribute description such as C{CN;lang-en}.

    Every description that reaches the directory (in a write, a Compare, a
    filter, a requested attribute, an LDIF file, a replicated entry) is
    resolved here, so this is where its form is checked (RFC 4512 §2.5):
    options are keystrings, so no description can carry a space, a colon or
    a line break into the LDIF and logs it is later written to. The codes
    and messages are slapd's.

    @param schema: the schema.
    @param description: the description from a client or a backend.
    @return: the attribute type and its options, lower-cased and sorted.
    @raise ldaperrors.LDAPUndefinedAttributeType: if the description is
        malformed or the type is not defined.
    """
    key = (id(schema), description)
    cached = _DESCRIPTIONS.get(key)
    if cached is not None and cached[0] is schema:
        return cached[1]
    if not isAttributeDescription(description):
        shown = escapeControl(description)
        if "" in description.split(";")[1:]:
            raise ldaperrors.LDAPUndefinedAttributeType(f"{shown}: zero length option is invalid")
        raise ldaperrors.LDAPUndefinedAttributeType(
            f"{shown}: AttributeDescription contains inappropriate characters"
        )
    name, *options = description.split(";")
    at = schema.attributeType(name)
    if at is None:
        raise ldaperrors.LDAPUndefinedAttributeType(f"{name}: attribute type undefined")
    lowered = tuple(sorted(o.lower() for o in options))
    if "binary" in lowered and not _binaryTransfer(at):
        # RFC 4522 §2: the binary option is for syntaxes that require it.
        raise ldaperrors.LDAPUndefinedAttributeType(
            f"{description}: option \"binary\" not supported with type"
        )
    _remember(_DESCRIPTIONS, key, (schema, (at, lowered)))
    return at, lowered


def _binaryTransfer(at: AttributeType) -> bool:
    """
    @return: whether C{at}'s values are transferred with the binary option
        (RFC 4522), as certificates are.
    """
    syntax = SYNTAXES.get(at.syntax or "")
    return syntax is not None and syntax.binaryTransfer


class Attribute:
    """
    The values of one attribute description in an entry.

    @ivar type: the attribute type.
    @ivar options: the description's options (lower case, sorted).
    """

    __slots__ = ("_values", "options", "type")

    def __init__(self, at: AttributeType, options: tuple[str, ...], values: Iterable[bytes]):
        self.type = at
        self.options = options
        values = tuple(values)
        # Most attributes have one value, held bare: its tuple would cost
        # as much memory as the value in a directory of short values.
        self._values: bytes | tuple[bytes, ...] = values[0] if len(values) == 1 else values

    @classmethod
    def _stored(
        cls, at: AttributeType, options: tuple[str, ...], values: bytes | tuple[bytes, ...]
    ) -> Attribute:
        """
        @param values: values as an attribute holds them (one value bare).
        @return: an attribute of those values.
        """
        attr = cls.__new__(cls)
        attr.type = at
        attr.options = options
        attr._values = values
        return attr

    @property
    def values(self) -> tuple[bytes, ...]:
        """
        The raw values, in the order they were written.
        """
        values = self._values
        return values if values.__class__ is tuple else (values,)  # type: ignore[return-value]

    @property
    def description(self) -> str:
        """
        The attribute description returned to clients: the primary name and options.
        """
        return _description(self.type, self.options)

    def keys(self, schema: Schema) -> dict[Any, bytes]:
        """
        The equality keys of the values (undefined for values that fail their
        rule, which are then compared as bytes). They are computed at each
        call, not kept: a store holding many entries would otherwise hold a
        mapping for each attribute ever matched.

        @param schema: the schema the type belongs to.
        @return: a mapping of key to the value it came from.
        """
        keys = {}
        for v in self.values:
            try:
                keys[schema.equalityKey(self.type, v)] = v
            except InvalidValue:
                keys[v] = v
        return keys

    def __repr__(self) -> str:
        return f"<Attribute {self.description} {list(self.values)!r}>"


@dataclass(frozen=True)
class Modification:
    """
    One change of a Modify request.

    @ivar operation: C{"add"}, C{"delete"}, C{"replace"} or C{"increment"}.
    @ivar description: the attribute description as the client wrote it.
    @ivar values: the values; empty for delete-all and replace-with-nothing.
    @ivar permissive: whether adding a value the attribute has, or deleting
        one it lacks (or an attribute the entry lacks), is not an error but
        changes nothing: the Permissive Modify control's semantics.
    """

    operation: str
    description: str
    values: tuple[bytes, ...] = ()
    permissive: bool = False


@dataclass(frozen=True)
class SearchReference:
    """
    A continuation reference (RFC 4511 §4.5.3): part of a search's scope is
    held by other servers. A backend that serves referral objects as such
    passes one to a search's C{emit} in place of an entry.

    @ivar uris: the LDAP URLs where the search continues (at least one).
    """

    uris: tuple[str, ...]


class _Layout:
    """
    The attribute descriptions of an entry, in order, and the position of
    each by its key (see L{_key}): what entries with the same descriptions
    share.

    @ivar descriptions: the attribute type and options of each attribute.
    @ivar positions: the position of each attribute, by key.
    @ivar byType: the positions of each attribute type's attributes (with
        and without options).
    @ivar withouts: for each set of attribute types an entry of this
        layout was asked for without (L{Entry.without}), the positions
        kept and their layout: an access check asks it of most entries a
        client reads, with the same types.
    @ivar names: the description of each attribute (L{Attribute.description}).
    @ivar named: the position of the attribute each description that
        L{Entry.get} was asked for names (C{None}: none of this layout's),
        with the schema that read it, by the description's text: the same
        few (C{objectClass}, the operational attributes an import stamps)
        are asked of every entry.
    """

    __slots__ = ("byType", "descriptions", "named", "names", "positions", "withouts")

    def __init__(self, descriptions: tuple[tuple[AttributeType, tuple[str, ...]], ...]) -> None:
        self.descriptions = descriptions
        self.names = tuple([_description(at, options) for at, options in descriptions])
        self.positions = {_key(at, options): i for i, (at, options) in enumerate(descriptions)}
        self.byType: dict[AttributeType, tuple[int, ...]] = {}
        for i, (at, _) in enumerate(descriptions):
            self.byType[at] = self.byType.get(at, ()) + (i,)
        self.withouts: dict[frozenset[AttributeType], tuple[tuple[int, ...], _Layout]] = {}
        self.named: dict[str, tuple[Schema, int | None]] = {}


#: The layouts in use, held once for all the entries that have them. A
#: plain dictionary, emptied when full: entries are made in threads too (the
#: sql backend's), and its single operations need no lock.
_LAYOUTS: dict[tuple[tuple[AttributeType, tuple[str, ...]], ...], _Layout] = {}

#: The most layouts held: directories have a few dozen kinds of entries.
_MAX_LAYOUTS = 4096

#: The most sets of types one layout keeps what it is without
#: (L{_Layout.withouts}): plugins leave out a few fixed sets; and the most
#: descriptions it keeps the position of (L{_Layout.named}).
_MAX_WITHOUTS = 64


def _layout(descriptions: tuple[tuple[AttributeType, tuple[str, ...]], ...]) -> _Layout:
    """
    @param descriptions: the attribute types and options of an entry, in order.
    @return: their layout, the same object for the same descriptions
        while the table holds it.
    """
    layout = _LAYOUTS.get(descriptions)
    if layout is None:
        if len(_LAYOUTS) >= _MAX_LAYOUTS:
            _LAYOUTS.clear()
        layout = _LAYOUTS.setdefault(descriptions, _Layout(descriptions))
    return layout


#: The descriptions L{parseDescription} resolved, by schema (its id, the
#: schema kept, as in L{_STORED_LAYOUTS}) and text: every search resolves
#: the few its filter and attribute list name. Only resolved ones are kept:
#: a type added to the schema later resolves no kept description otherwise.
#: Emptied when full, as L{_LAYOUTS}.
_DESCRIPTIONS: dict[tuple[int, str], tuple[Schema, tuple[AttributeType, tuple[str, ...]]]] = {}

#: The layouts of entries as stores write them (L{Entry.fromStored}), by
#: schema (its id; the schema is kept with the layout, to tell a schema
#: made later at the same address) and attribute descriptions: C{None} for
#: descriptions that are not distinct attributes of that schema. Emptied
#: when full, as L{_LAYOUTS}.
_STORED_LAYOUTS: dict[tuple[int, tuple[str, ...]], tuple[Schema, _Layout | None]] = {}


def _storedLayout(schema: Schema, descriptions: tuple[str, ...]) -> _Layout | None:
    """
    @return: the layout of an entry with these attribute descriptions, or
        C{None} if two of them are the same attribute (or one is undefined).
    """
    key = (id(schema), descriptions)
    cached = _STORED_LAYOUTS.get(key)
    if cached is not None and cached[0] is schema:
        return cached[1]
    try:
        parsed = tuple(parseDescription(schema, d) for d in descriptions)
    except ldaperrors.LDAPUndefinedAttributeType:
        layout = None
    else:
        layout = _layout(parsed)
        if len(layout.positions) != len(parsed):
            layout = None
    _remember(_STORED_LAYOUTS, key, (schema, layout))
    return layout


#: The layouts of entries extended with attributes (L{Entry.extended}), by
#: schema (its id, the schema kept as in L{_STORED_LAYOUTS}), the layout
#: extended and the added descriptions: C{None} where an added description
#: is one the entry has. Emptied when full, as L{_LAYOUTS}.
_EXTENDED_LAYOUTS: dict[tuple[int, _Layout, tuple[str, ...]], tuple[Schema, _Layout | None]] = {}

#: The object class checks entries passed (L{Entry.checkObjectClasses}), by
#: schema (its id, the schema kept), layout, objectClass values and the
#: structural class before a Modify: what the check depends on, which the
#: entries of one kind (a directory's people) share. Only passes are kept:
#: a schema only grows, which cannot make a passed check fail. Emptied when
#: full, as L{_LAYOUTS}.
_CLASSES_CHECKED: dict[tuple[int, _Layout, tuple[bytes, ...], bytes | None], Schema] = {}

#: The structural class of each set of objectClass values
#: (L{Entry.structuralClass}), by schema (its id, the schema kept) and
#: values; only found classes are kept, as a class added later could give
#: a structural class to values that had none. Emptied when full.
_STRUCTURAL: dict[tuple[int, tuple[bytes, ...]], tuple[Schema, ObjectClass]] = {}


def _remember(table: dict[Any, Any], key: Any, value: Any) -> None:
    """
    Keep C{value} under C{key} in one of the tables above, emptied when full.
    """
    if len(table) >= _MAX_LAYOUTS:
        table.clear()
    table[key] = value


class Entry:
    """
    A directory entry.

    It holds a tuple of its attributes' values (an attribute's one value
    bare), and a layout of their descriptions, shared by the entries with
    the same descriptions (most of a directory's people, say): an entry
    costs a tuple and its values, not a dictionary and an object an
    attribute. The L{Attribute}s it is read as are made as they are asked for.

    @ivar dn: the name as it is shown to clients.
    @ivar ndn: the normalised name, the key backends store it under.
    @ivar schema: the schema its values are normalised by.
    """

    __slots__ = ("_layout", "_values", "dn", "ndn", "schema")

    def __init__(
        self,
        dn: DN,
        attributes: Mapping[str, Iterable[bytes]] | Iterable[tuple[str, Iterable[bytes]]],
        schema: Schema,
        ndn: DN | None = None,
    ) -> None:
        """
        @param dn: the entry's name.
        @param attributes: attribute descriptions and their values; repeated
            descriptions are merged, and one without values adds nothing.
        @param schema: the schema.
        @param ndn: the normalised name, when the caller already has it.
        @raise ldaperrors.LDAPUndefinedAttributeType: for an undefined attribute type.
        @raise ldapd.dn.InvalidDN: if the DN cannot be normalised.
        """
        attrs: dict[str, Attribute] = {}
        items = attributes.items() if isinstance(attributes, Mapping) else attributes
        for description, values in items:
            at, options = parseDescription(schema, description)
            key = _key(at, options)
            existing = attrs.get(key)
            values = tuple(values)
            if existing is not None:
                values = existing.values + values
            if values:
                attrs[key] = Attribute(at, options, values)
        self._set(dn, ndn if ndn is not None else schema.normalizeDN(dn), schema, attrs)

    @classmethod
    def fromStored(
        cls,
        dn: DN,
        ndn: DN,
        schema: Schema,
        descriptions: tuple[str, ...],
        values: tuple[bytes | tuple[bytes, ...], ...],
    ) -> Entry:
        """
        An entry read back from a store, which wrote each attribute's
        L{Attribute.description} and values: the common case, distinct
        attributes each with values, takes the descriptions' layout as a
        whole instead of resolving and merging attribute by attribute
        (anything else is merged as L{Entry.__init__} merges it).

        An attribute whose description is malformed (RFC 4512 §2.5), which a
        version of ldapd that did not check descriptions may have stored, is
        left out with a warning, so that it never reaches a client or an
        LDIF file; the entry's next write stores it without that attribute.

        @param dn: the entry's name.
        @param ndn: its normalised name.
        @param schema: the schema.
        @param descriptions: the attribute descriptions.
        @param values: each attribute's values: one value bare, more (or
            none) as a tuple.
        @raise ldaperrors.LDAPUndefinedAttributeType: for an undefined type.
        """
        layout = _storedLayout(schema, descriptions)
        if layout is None or () in values:
            pairs: list[tuple[str, Any]] = [(d, v if v.__class__ is tuple else (v,))
                                             for d, v in zip(descriptions, values, strict=True)]
            malformed = [d for d in descriptions if not isAttributeDescription(d)]
            if malformed:
                _log.warn("{dn}: stored attribute descriptions {descriptions} are malformed "
                          "(RFC 4512 §2.5): left out", dn=str(dn),
                          descriptions=", ".join(repr(d) for d in malformed))
                pairs = [(d, v) for d, v in pairs if isAttributeDescription(d)]
            return cls(dn, pairs, schema, ndn)
        entry = cls.__new__(cls)
        entry.dn = dn
        entry.ndn = ndn
        entry.schema = schema
        entry._layout = layout
        entry._values = values
        return entry

    def _set(self, dn: DN, ndn: DN, schema: Schema, attrs: dict[str, Attribute]) -> None:
        self.dn = dn
        self.ndn = ndn
        self.schema = schema
        self._layout = _layout(tuple((a.type, a.options) for a in attrs.values()))
        self._values = tuple(a._values for a in attrs.values())

    @classmethod
    def _fromAttributes(cls, dn: DN, ndn: DN, schema: Schema, attrs: dict[str, Attribute]) -> Entry:
        entry = cls.__new__(cls)
        entry._set(dn, ndn, schema, attrs)
        return entry

    def _renamed(self, dn: DN, ndn: DN, values: tuple[bytes | tuple[bytes, ...], ...]) -> Entry:
        """
        @return: an entry of the same layout as this one, with C{values} for
            its attributes, under the given names.
        """
        entry = Entry.__new__(Entry)
        entry.dn = dn
        entry.ndn = ndn
        entry.schema = self.schema
        entry._layout = self._layout
        entry._values = values
        return entry

    def _mapping(self) -> dict[str, Attribute]:
        """
        @return: a new mapping of attribute key to attribute, to derive a
            changed entry from.
        """
        return {_key(a.type, a.options): a for a in self}

    def __repr__(self) -> str:
        return f"<Entry {self.dn}>"

    def __iter__(self) -> Iterator[Attribute]:
        stored = Attribute._stored
        for (at, options), values in zip(self._layout.descriptions, self._values, strict=True):
            yield stored(at, options, values)

    def typedValues(self) -> Iterator[tuple[AttributeType, tuple[bytes, ...]]]:
        """
        Each attribute's type and raw values, in order, without making its
        L{Attribute}: what a store reads of every entry it indexes.
        """
        for (at, _), values in zip(self._layout.descriptions, self._values, strict=True):
            yield at, values if values.__class__ is tuple else (values,)  # type: ignore[misc]

    def describedValues(self) -> Iterator[tuple[str, tuple[bytes, ...]]]:
        """
        Each attribute's description (L{Attribute.description}) and raw
        values, in order, without making its L{Attribute}: what a store
        writes of every entry.
        """
        for name, values in zip(self._layout.names, self._values, strict=True):
            yield name, values if values.__class__ is tuple else (values,)  # type: ignore[misc]

    def copy(self) -> Entry:
        """
        @return: an independent copy (values are immutable and shared).
        """
        return self._renamed(self.dn, self.ndn, self._values)

    def withDN(self, dn: DN) -> Entry:
        """
        @param dn: a new name.
        @return: the same attributes under C{dn} (for the entries below a
            renamed one).
        """
        return self._renamed(dn, self.schema.normalizeDN(dn), self._values)

    def extended(self, attributes: Iterable[tuple[str, Sequence[bytes]]]) -> Entry:
        """
        The entry with more attributes after its own, as L{Entry.__init__}
        would make it from all of them; the layout of the whole is kept for
        the next entry of the same layout extended with the same
        descriptions (the operational attributes L{ldapd.stamping.stampNew}
        adds to each entry of an import), so that the descriptions are
        resolved once.

        @param attributes: attribute descriptions and their values (at
            least one each).
        @return: a new entry.
        @raise ldaperrors.LDAPUndefinedAttributeType: for an undefined type.
        """
        added = tuple(attributes)
        schema = self.schema
        key = (id(schema), self._layout, tuple([d for d, _ in added]))
        cached = _EXTENDED_LAYOUTS.get(key)
        if cached is not None and cached[0] is schema:
            layout = cached[1]
        else:
            layout = _layout(self._layout.descriptions
                             + tuple(parseDescription(schema, d) for d, _ in added))
            if len(layout.positions) != len(layout.descriptions) or any(not v for _, v in added):
                layout = None
            _remember(_EXTENDED_LAYOUTS, key, (schema, layout))
        if layout is None:
            return Entry(self.dn, [(a.description, a.values) for a in self] + list(added),
                         schema, self.ndn)
        entry = self._renamed(self.dn, self.ndn, self._values + tuple(
            [v[0] if len(v) == 1 else tuple(v) for _, v in added]))
        entry._layout = layout
        return entry

    def compacted(
        self,
        dn: DN,
        ndn: DN,
        share: Callable[[bytes | tuple[bytes, ...]], bytes | tuple[bytes, ...]],
    ) -> Entry:
        """
        The same entry, for a store that holds many: under names equal to
        its own (which may share their superiors' RDNs with other entries'),
        and with each attribute's values replaced by the equal ones C{share}
        returns (which may be another entry's), so that what entries have in
        common is held once. Values are immutable, so sharing them is safe.

        @param dn: a name equal to C{self.dn}.
        @param ndn: a name equal to C{self.ndn}.
        @param share: returns values equal to those it is given: one value
            (bytes) or a tuple of them.
        @return: the compacted entry.
        """
        return self._renamed(dn, ndn, tuple(share(values) for values in self._values))

    def changedTypes(self, other: Entry) -> set[AttributeType]:
        """
        The attribute types whose values differ between this entry and
        C{other}, in any description of the type, for a store that updates
        only what a change touched. Values a changed entry keeps are the
        same objects, and compare at once.

        @param other: another entry, typically this one changed.
        @return: the types with an attribute in one entry and not in the
            other, or with other values.
        """
        mine = dict(zip(self._layout.descriptions, self._values, strict=True))
        theirs = dict(zip(other._layout.descriptions, other._values, strict=True))
        return {d[0] for d in mine.keys() | theirs.keys() if mine.get(d) != theirs.get(d)}

    @property
    def shape(self) -> object:
        """
        What entries with the same attribute descriptions, in the same order,
        share (compared by identity): a key for what depends on nothing
        else, such as which of its attributes a search selects.
        """
        return self._layout

    @property
    def descriptions(self) -> tuple[tuple[AttributeType, tuple[str, ...]], ...]:
        """
        The type and options of each attribute, in order.
        """
        return self._layout.descriptions

    def selected(self, positions: Iterable[tuple[int, bytes]],
                 typesOnly: bool = False) -> list[tuple[bytes, tuple[bytes, ...]]]:
        """
        Some of the attributes, as a search result lists them.

        @param positions: the position of each attribute wanted (in
            L{descriptions}) and the description to give it.
        @param typesOnly: give no values.
        @return: the descriptions, each with its values (or none).
        """
        if typesOnly:
            return [(description, ()) for _, description in positions]
        values = self._values
        chosen = []
        for i, description in positions:
            v = values[i]
            chosen.append((description, v if v.__class__ is tuple else (v,)))
        return chosen  # type: ignore[return-value]

    def hasAnyOf(self, types: frozenset[AttributeType] | set[AttributeType]) -> bool:
        """
        @param types: attribute types.
        @return: whether the entry has an attribute of any of them (with or
            without options).
        """
        return not types.isdisjoint(self._layout.byType)

    def without(self, types: frozenset[AttributeType] | set[AttributeType]) -> Entry:
        """
        @param types: attribute types to leave out.
        @return: a copy without the attributes of those types.
        """
        # From the layout, without making the attributes: an access check
        # does this for most entries it lets a client read.
        layout = self._layout
        found = layout.withouts.get(types) if isinstance(types, frozenset) else None
        if found is None:
            descriptions = layout.descriptions
            kept = tuple(i for i, (at, _) in enumerate(descriptions) if at not in types)
            found = (kept, layout if len(kept) == len(descriptions)
                     else _layout(tuple(descriptions[i] for i in kept)))
            if isinstance(types, frozenset):
                if len(layout.withouts) >= _MAX_WITHOUTS:
                    layout.withouts.clear()
                layout.withouts[types] = found
        kept, keptLayout = found
        values = self._values
        entry = self._renamed(self.dn, self.ndn, tuple([values[i] for i in kept]))
        entry._layout = keptLayout
        return entry

    def get(self, description: str) -> tuple[bytes, ...]:
        """
        @param description: an attribute description, e.g. C{userPassword}.
        @return: the values of exactly that description (no subtypes), or C{()}.
        """
        layout = self._layout
        named = layout.named.get(description)
        if named is not None and named[0] is self.schema:
            i = named[1]
        else:
            name, *options = description.split(";")
            at = self.schema.attributeType(name)
            if at is None:
                # Not kept: a type added to the schema later may have it.
                return ()
            i = layout.positions.get(_key(at, tuple(sorted(o.lower() for o in options if o))))
            if len(layout.named) < _MAX_WITHOUTS:
                layout.named[description] = (self.schema, i)
        if i is None:
            return ()
        values = self._values[i]
        return values if values.__class__ is tuple else (values,)  # type: ignore[return-value]

    def attribute(self, at: AttributeType, options: tuple[str, ...] = ()) -> Attribute | None:
        """
        @param at: an attribute type.
        @param options: the options of the description.
        @return: the attribute of exactly that description, or C{None}.
        """
        i = self._layout.positions.get(_key(at, options))
        return Attribute._stored(at, options, self._values[i]) if i is not None else None

    def matching(self, at: AttributeType, options: tuple[str, ...] = ()) -> list[Attribute]:
        """
        The attributes a filter or an attribute list on C{at} refers to: those
        of C{at} or a subtype, with at least C{options} (RFC 4512 §2.5).

        @param at: the attribute type asked for.
        @param options: the options asked for.
        @return: the matching attributes.
        """
        layout = self._layout
        found = [i for t in self.schema.subtypes(at) for i in layout.byType.get(t, ())]
        if len(found) > 1:
            found.sort()
        attributes = []
        for i in found:
            t, o = layout.descriptions[i]
            if not options or set(options) <= set(o):
                attributes.append(Attribute._stored(t, o, self._values[i]))
        return attributes

    def hasValue(self, at: AttributeType, value: bytes) -> bool:
        """
        @param at: an attribute type (without options).
        @param value: a raw value.
        @return: whether the entry holds C{value} under C{at} or a subtype,
            compared with the type's equality rule.
        @raise InvalidValue: if C{value} is not valid for the rule.
        """
        key = self.schema.equalityKey(at, value)
        return any(key in a.keys(self.schema) for a in self.matching(at))

    def objectClasses(self) -> set[str]:
        """
        @return: the entry's object class values, lower-cased.
        """
        return {v.decode("utf-8", "replace").lower() for v in self.get("objectClass")}

    def validate(self) -> None:
        """
        Check the rules every stored entry must satisfy: an objectClass, the
        RDN's values present, values valid for their syntax, no duplicate
        values, single-valued attributes with one value.

        @raise ldaperrors.LDAPException: the error slapd gives for the first problem.
        """
        if not self.get("objectClass"):
            raise ldaperrors.LDAPObjectClassViolation("no objectClass attribute")
        schema = self.schema
        for (at, options), values in zip(self._layout.descriptions, self._values, strict=True):
            _checkValues(schema, at, options,
                         values if values.__class__ is tuple else (values,))  # type: ignore[arg-type]
        missing = self._missingRDNValue()
        if missing is not None:
            raise ldaperrors.LDAPNamingViolation(
                f"value of naming attribute '{missing}' is not present in entry"
            )
        self.checkObjectClasses()

    def _missingRDNValue(self) -> str | None:
        """
        @return: the type of the first RDN value the entry lacks, or C{None}.
        """
        for ava in self.dn.rdn if self.dn else ():
            at = self.schema.attributeType(ava.type)
            if at is None or not self.hasValue(at, ava.value.encode("utf-8")):
                return ava.type
        return None

    def structuralClass(self) -> ObjectClass | None:
        """
        The entry's structural object class (RFC 4512 §2.4.2): the most
        specific structural class among its classes and their superclasses,
        the value of its C{structuralObjectClass}.

        @return: the class, or C{None} if the entry's classes are undefined
            or do not form one structural chain.
        """
        values = self.get("objectClass")
        key = (id(self.schema), values)
        cached = _STRUCTURAL.get(key)
        if cached is not None and cached[0] is self.schema:
            return cached[1]
        classes = []
        for value in values:
            oc = self.schema.objectClass(value.decode("utf-8", "replace"))
            if oc is None:
                return None
            classes.append(oc)
        closure = {c.oid: c for oc in classes for c in _superclassesOf(oc)}
        structural = [oc for oc in closure.values() if oc.kind == "STRUCTURAL"]
        oids = {oc.oid for oc in structural}
        for oc in structural:
            if oids <= _superclasses(oc):
                _remember(_STRUCTURAL, key, (self.schema, oc))
                return oc
        return None

    def checkObsolete(self) -> None:
        """
        Refuse OBSOLETE attribute types and object classes in an entry about
        to be added (RFC 4512 §4.1: an obsolete element is not to be used in
        new data), with slapd's codes and messages.

        @raise ldaperrors.LDAPConstraintViolation: for an obsolete attribute type.
        @raise ldaperrors.LDAPObjectClassViolation: for an obsolete object class.
        """
        for attr in self:
            _checkNotObsolete(attr.type)
        for value in self.get("objectClass"):
            _checkClassNotObsolete(self.schema, value)

    def checkObjectClasses(self, structuralObjectClass: bytes | None = None) -> None:
        """
        Check the entry against its object classes (RFC 4512 §2.4): every class
        defined, a structural one among them, every MUST attribute present and
        every user attribute allowed by some class (any, with extensibleObject).

        @param structuralObjectClass: the structural class the entry had
            before a Modify, which the Modify may not change (RFC 4512 §2.4.2).
        @raise ldaperrors.LDAPException: invalidAttributeSyntax for an unknown
            class, objectClassModsProhibited for a changed structural class,
            objectClassViolation otherwise, with slapd's messages.
        """
        key = (id(self.schema), self._layout, self.get("objectClass"), structuralObjectClass)
        if _CLASSES_CHECKED.get(key) is not self.schema:
            self._checkObjectClasses(key[2], structuralObjectClass)
            _remember(_CLASSES_CHECKED, key, self.schema)

    def _checkObjectClasses(self, values: tuple[bytes, ...],
                            structuralObjectClass: bytes | None) -> None:
        """
        L{checkObjectClasses}, every time.

        @param values: the entry's objectClass values.
        """
        classes = []
        for i, value in enumerate(values):
            oc = self.schema.objectClass(value.decode("utf-8", "replace"))
            if oc is None:
                raise ldaperrors.LDAPInvalidAttributeSyntax(
                    f"objectClass: value #{i} invalid per syntax"
                )
            classes.append(oc)
        closure = {}
        stack = list(classes)
        while stack:
            oc = stack.pop()
            if oc.oid not in closure:
                closure[oc.oid] = oc
                stack.extend(oc.sup)
        if not any(oc.kind == "STRUCTURAL" for oc in closure.values()):
            raise ldaperrors.LDAPObjectClassViolation("no structural object class provided")
        _checkStructuralChain(classes, closure)
        if structuralObjectClass is not None:
            before = structuralObjectClass.decode("utf-8", "replace")
            after = self.structuralClass()
            if after is not None and after is not self.schema.objectClass(before):
                raise ldaperrors.LDAPObjectClassModsProhibited(
                    f"structural object class modification from '{before}' to "
                    f"'{after.name}' not allowed"
                )
        present = {at for at, _ in self._layout.descriptions}
        # As slapd: the structural class first, then each class the entry
        # lists, each with the requirements it inherits, named in the message.
        structural = self.structuralClass()
        for oc in ([structural] if structural is not None else []) + classes:
            for sup in _superclassesOf(oc):
                for at in sup.must:
                    if at not in present:
                        raise ldaperrors.LDAPObjectClassViolation(
                            f"object class '{oc.name}' requires attribute '{at.name}'"
                        )
        allowed: set[AttributeType] = set()
        for oc in closure.values():
            allowed.update(oc.must)
            allowed.update(oc.may)
        if any(oc.name.lower() == "extensibleobject" for oc in closure.values()):
            return
        for at in present:
            if not at.operational and at not in allowed:
                raise ldaperrors.LDAPObjectClassViolation(f"attribute '{at.name}' not allowed")

    def modified(self, modifications: Iterable[Modification]) -> Entry:
        """
        Apply the changes of a Modify request (RFC 4511 §4.6), all or nothing.

        @param modifications: the changes, applied in order.
        @return: a new entry; this one is unchanged.
        @raise ldaperrors.LDAPException: noSuchAttribute, attributeOrValueExists,
            invalidAttributeSyntax, constraintViolation, notAllowedOnRDN or
            objectClassViolation, as slapd gives them.
        """
        attrs = self._mapping()
        modifications = list(modifications)
        for mod in modifications:
            if mod.values and mod.operation != "delete":
                at, _ = parseDescription(self.schema, mod.description)
                _checkNotObsolete(at)
        for mod in modifications:
            at, options = parseDescription(self.schema, mod.description)
            key = _key(at, options)
            current = attrs.get(key)
            name = mod.description
            if mod.operation != "delete" and at.oid == _OBJECT_CLASS:
                for value in mod.values:
                    _checkClassNotObsolete(self.schema, value)
            if mod.operation == "add":
                if not mod.values:
                    raise ldaperrors.LDAPProtocolError(f"modify/add: {name}: no values given")
                _checkValues(self.schema, at, options, tuple(mod.values))
                if current is not None:
                    _checkEquality(at, f"modify/add: {name}")
                    keys = current.keys(self.schema)
                    added = []
                    for i, v in enumerate(mod.values):
                        k = self.schema.normalizeValue(at, v)
                        if k in keys:
                            if mod.permissive:
                                continue
                            raise ldaperrors.LDAPAttributeOrValueExists(
                                f"modify/add: {name}: value #{i} already exists"
                            )
                        if mod.permissive:
                            # A value given twice is added once.
                            keys[k] = v
                        added.append(v)
                    if not added:
                        continue
                    if at.singleValue:
                        raise ldaperrors.LDAPConstraintViolation(
                            f"attribute '{name}' cannot have multiple values"
                        )
                    attrs[key] = Attribute(at, options, current.values + tuple(added))
                else:
                    attrs[key] = Attribute(at, options, mod.values)
            elif mod.operation == "delete":
                if current is None:
                    if mod.permissive:
                        continue
                    raise ldaperrors.LDAPNoSuchAttribute(f"modify/delete: {name}: no such attribute")
                if not mod.values:
                    del attrs[key]
                    continue
                _checkEquality(at, f"modify/delete: {name}")
                keys = current.keys(self.schema)
                remove = set()
                for i, v in enumerate(mod.values):
                    try:
                        k = self.schema.normalizeValue(at, v)
                    except InvalidValue:
                        raise ldaperrors.LDAPInvalidAttributeSyntax(
                            f"{name}: value #{i} invalid per syntax"
                        ) from None
                    if k not in keys:
                        if mod.permissive:
                            continue
                        raise ldaperrors.LDAPNoSuchAttribute(
                            f"modify/delete: {name}: no such value"
                        )
                    remove.add(keys[k])
                kept = tuple(v for v in current.values if v not in remove)
                if kept:
                    attrs[key] = Attribute(at, options, kept)
                else:
                    del attrs[key]
            elif mod.operation == "replace":
                if mod.values:
                    new = Attribute(at, options, mod.values)
                    _checkValues(self.schema, at, options, new.values)
                    attrs[key] = new
                else:
                    attrs.pop(key, None)
            elif mod.operation == "increment":
                attrs[key] = _incremented(self.schema, current, at, options, mod)
            else:
                raise ldaperrors.LDAPProtocolError(f"unknown modify operation {mod.operation!r}")
        entry = Entry._fromAttributes(self.dn, self.ndn, self.schema, attrs)
        if not entry.get("objectClass"):
            raise ldaperrors.LDAPObjectClassViolation("no objectClass attribute")
        missing = entry._missingRDNValue()
        if missing is not None:
            raise ldaperrors.LDAPNotAllowedOnRDN(
                f"cannot delete the value of naming attribute '{missing}'"
            )
        stored = self.get("structuralObjectClass")
        entry.checkObjectClasses(stored[0] if stored else None)
        return entry

    def renamed(self, newDN: DN, deleteOldRDN: bool) -> Entry:
        """
        The entry under a new name, with the new RDN's values added and, if
        asked, the old RDN's values removed (RFC 4511 §4.9).

        @param newDN: the new name.
        @param deleteOldRDN: whether to delete the old RDN's values.
        @return: a new entry.
        @raise ldapd.dn.InvalidDN: if C{newDN} cannot be normalised.
        @raise ldaperrors.LDAPException: for a single-valued attribute that
            would get a second value, or an entry its object classes no longer
            allow.
        """
        attrs = self._mapping()
        ndn = self.schema.normalizeDN(newDN)
        if deleteOldRDN:
            # Every old value goes, even one the new RDN repeats: it is added
            # back below as the new RDN spells it, as slapd does.
            for ava in self.dn.rdn:
                at, options = parseDescription(self.schema, ava.type)
                attr = attrs.get(_key(at, options))
                if attr is None:
                    continue
                target = self.schema.normalizeValue(at, ava.value.encode("utf-8"))
                keys = attr.keys(self.schema)
                kept = tuple(v for v in attr.values if keys.get(target) != v)
                if kept:
                    attrs[_key(at, options)] = Attribute(at, options, kept)
                else:
                    del attrs[_key(at, options)]
        for ava in newDN.rdn:
            at, options = parseDescription(self.schema, ava.type)
            value = ava.value.encode("utf-8")
            try:
                present = Entry._fromAttributes(newDN, ndn, self.schema, attrs).hasValue(at, value)
            except InvalidValue as e:
                raise ldaperrors.LDAPInvalidAttributeSyntax(f"{ava.type}: {e}") from None
            if not present:
                attr = attrs.get(_key(at, options))
                new = Attribute(at, options, (attr.values if attr else ()) + (value,))
                _checkValues(self.schema, at, options, new.values)
                attrs[_key(at, options)] = new
        entry = Entry._fromAttributes(newDN, ndn, self.schema, attrs)
        entry.checkObjectClasses()
        return entry


def _superclassesOf(oc: ObjectClass) -> list[ObjectClass]:
    """
    @return: C{oc} and all its superclasses, C{oc} first.
    """
    seen: dict[str, ObjectClass] = {}
    stack = [oc]
    while stack:
        c = stack.pop()
        if c.oid not in seen:
            seen[c.oid] = c
            stack.extend(c.sup)
    return list(seen.values())


def _superclasses(oc: ObjectClass) -> set[str]:
    """
    @return: the OIDs of C{oc} and all its superclasses.
    """
    return {c.oid for c in _superclassesOf(oc)}


def _checkStructuralChain(classes: list[ObjectClass], closure: dict[str, ObjectClass]) -> None:
    """
    Check that an entry's structural classes form one chain, the most
    specific (the entry's structural class) descending from all the others
    (RFC 4512 §2.4.2).

    @param classes: the entry's classes, in the order of its values.
    @param closure: the entry's classes and their superclasses, by OID.
    @raise ldaperrors.LDAPObjectClassViolation: with slapd's message naming
        the structural classes that do not descend from one another.
    """
    structural = [oc for oc in closure.values() if oc.kind == "STRUCTURAL"]
    oids = {oc.oid for oc in structural}
    ancestry = {oc.oid: _superclasses(oc) for oc in structural}
    if any(oids <= ancestry[oc.oid] for oc in structural):
        return
    leaves = [
        oc.name for oc in classes
        if oc.oid in ancestry
        and not any(oc.oid in ancestry[other.oid] for other in structural if other is not oc)
    ]
    raise ldaperrors.LDAPObjectClassViolation(
        f"invalid structural object class chain ({'/'.join(leaves)})"
    )


def _checkEquality(at: AttributeType, context: str) -> None:
    """
    Values can be added to or deleted from an attribute only if they can be
    compared with its values.

    @raise ldaperrors.LDAPInappropriateMatching: if C{at} has no equality
        rule, as slapd.
    """
    if at.equality is None:
        raise ldaperrors.LDAPInappropriateMatching(f"{context}: no equality matching rule")


def _checkNotObsolete(at: AttributeType) -> None:
    """
    @raise ldaperrors.LDAPConstraintViolation: if C{at} is OBSOLETE, as slapd.
    """
    if at.obsolete:
        raise ldaperrors.LDAPConstraintViolation(f"{at.name}: attribute is obsolete")


def _checkClassNotObsolete(schema: Schema, value: bytes) -> None:
    """
    @param value: an objectClass value.
    @raise ldaperrors.LDAPObjectClassViolation: if it names an OBSOLETE
        class, as slapd.
    """
    name = value.decode("utf-8", "replace")
    oc = schema.objectClass(name)
    if oc is not None and oc.obsolete:
        raise ldaperrors.LDAPObjectClassViolation(f"objectClass '{name}' is OBSOLETE")


def _key(at: AttributeType, options: tuple[str, ...]) -> str:
    return ";".join((at.oid,) + options)


def _checkValues(schema: Schema, at: AttributeType, options: tuple[str, ...],
                 values: tuple[bytes, ...]) -> None:
    """
    Check one attribute's values for syntax, duplicates and SINGLE-VALUE,
    with slapd's messages (which name a duplicate by its first occurrence).

    @param at: the attribute's type.
    @param options: its options.
    @param values: its values.
    """
    if "binary" not in options and _binaryTransfer(at):
        raise ldaperrors.LDAPUndefinedAttributeType(f"{at.name}: requires ;binary transfer")
    if len(values) == 1:
        # Most attributes: no duplicate to look for.
        try:
            schema.checkValue(at, values[0])
        except InvalidValue:
            raise ldaperrors.LDAPInvalidAttributeSyntax(
                f"{_description(at, options)}: value #0 invalid per syntax"
            ) from None
        return
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        try:
            key = schema.checkValue(at, v)
        except InvalidValue:
            raise ldaperrors.LDAPInvalidAttributeSyntax(
                f"{_description(at, options)}: value #{i} invalid per syntax"
            ) from None
        if key in seen:
            raise ldaperrors.LDAPAttributeOrValueExists(
                f"{_description(at, options)}: value #{seen[key]} provided more than once"
            )
        seen[key] = i
    if at.singleValue and len(values) > 1:
        raise ldaperrors.LDAPConstraintViolation(
            f"{_description(at, options)}: multiple values provided")


def _description(at: AttributeType, options: tuple[str, ...]) -> str:
    """
    @return: the description of an attribute of type C{at} with C{options}
        (L{Attribute.description}).
    """
    return ";".join((at.name,) + options)


def _incremented(
    schema: Schema,
    current: Attribute | None,
    at: AttributeType,
    options: tuple[str, ...],
    mod: Modification,
) -> Attribute:
    """
    Apply a Modify-Increment (RFC 4525) to one attribute, checking the
    request before the entry as slapd does.
    """
    name = mod.description
    if at.equality is None or at.equality.name != "integerMatch":
        raise ldaperrors.LDAPConstraintViolation(
            f"{name}: attribute syntax inappropriate for increment"
        )
    if len(mod.values) != 1:
        raise ldaperrors.LDAPProtocolError(f"modify/increment: {name}: exactly one value needed")
    try:
        delta = schema.normalizeValue(at, mod.values[0])
    except InvalidValue:
        raise ldaperrors.LDAPInvalidAttributeSyntax(
            f"{name}: value #0 invalid per syntax"
        ) from None
    if current is None:
        raise ldaperrors.LDAPNoSuchAttribute(f"modify/increment: {name}: no such attribute")
    return Attribute(
        at, options, (str(schema.normalizeValue(at, v) + delta).encode() for v in current.values)
    )
