"""
The schema: attribute types and object classes, and the normalisation of
attribute descriptions, values and DNs that everything else relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ldapd._resources import dataFolder
from ldapd.dn import AVA, DN, RDN, InvalidDN
from ldapd.schema.matching import RULES, InvalidValue, MatchingRule
from ldapd.schema.parser import SchemaError, parseDescription, readSchemaFile
from ldapd.schema.syntaxes import SYNTAXES, Syntax

__all__ = ["AttributeType", "ObjectClass", "Schema", "STANDARD_FILES", "STANDARD_SCHEMAS"]

#: The schema files ldapd ships (C{schema/<name>.schema}). C{nis} and
#: C{rfc2307bis} are alternatives: they define the same OIDs.
STANDARD_SCHEMAS = (
    "core", "cosine", "inetorgperson", "nis", "rfc2307bis", "ppolicy", "dyngroup", "ldapd",
    "changelog", "memberof", "monitor",
)

#: The shipped schemas a directory loads unless configured otherwise, in
#: dependency order.
STANDARD_FILES = ("core", "cosine", "inetorgperson", "nis", "ppolicy", "dyngroup", "ldapd",
                  "changelog", "memberof", "monitor")

_USER = "userApplications"


@dataclass(eq=False)
class AttributeType:
    """
    An attribute type (RFC 4512 §4.1.2) with its inherited rules resolved.

    @ivar name: the primary name, the form ldapd returns to clients.
    @ivar usage: C{userApplications} or one of the operational usages.
    @ivar definition: the description as published in cn=Subschema.
    """

    oid: str
    names: tuple[str, ...]
    definition: str
    sup: AttributeType | None = None
    equality: MatchingRule | None = None
    ordering: MatchingRule | None = None
    substr: MatchingRule | None = None
    syntax: str | None = None
    singleValue: bool = False
    noUserModification: bool = False
    collective: bool = False
    obsolete: bool = False
    usage: str = _USER

    @property
    def name(self) -> str:
        """
        The primary name (the OID for an unnamed type).
        """
        return self.names[0] if self.names else self.oid

    @property
    def operational(self) -> bool:
        """
        Whether this is an operational attribute, returned only for C{+} or by name.
        """
        return self.usage != _USER

    def __repr__(self) -> str:
        return f"<AttributeType {self.name}>"


@dataclass(eq=False)
class ObjectClass:
    """
    An object class (RFC 4512 §4.1.1).

    @ivar kind: C{"ABSTRACT"}, C{"STRUCTURAL"} or C{"AUXILIARY"}.
    """

    oid: str
    names: tuple[str, ...]
    definition: str
    sup: tuple[ObjectClass, ...] = ()
    kind: str = "STRUCTURAL"
    must: tuple[AttributeType, ...] = ()
    may: tuple[AttributeType, ...] = ()
    obsolete: bool = False

    @property
    def name(self) -> str:
        """
        The primary name.
        """
        return self.names[0] if self.names else self.oid


@dataclass
class Schema:
    """
    A set of attribute types and object classes.

    Lookups are case-insensitive by any name or by numeric OID.
    """

    _types: dict[str, AttributeType] = field(default_factory=dict)
    _classes: dict[str, ObjectClass] = field(default_factory=dict)
    _typeList: list[AttributeType] = field(default_factory=list)
    _classList: list[ObjectClass] = field(default_factory=list)
    _subtypes: dict[int, frozenset[AttributeType]] = field(default_factory=dict)
    _superclasses: dict[str, frozenset[str]] = field(default_factory=dict)
    # The lower-cased primary names normalised DNs use, one string a type.
    _lowerNames: dict[AttributeType, str] = field(default_factory=dict)
    # The keys of DN values (L{dnKey}), for the few DNs most entries hold
    # (creatorsName, modifiersName, group members); forgotten when a type
    # is added, which may change how a DN normalises.
    _dnKeys: dict[bytes, str] = field(default_factory=dict)
    # The normalised form of each RDN normalised lately (L{normalizeDN}):
    # the names a directory is asked for share their superiors' RDNs (a
    # bind DN's ou=people,dc=example,dc=com); forgotten as L{_dnKeys}.
    _normalRDNs: dict[RDN, RDN] = field(default_factory=dict)
    # The values of each type that passed L{checkValue} lately, with their
    # keys: the entries of an import repeat their object classes, creator,
    # timestamps within a second, structural class and many values (a
    # surname, a department); and an entry's index keys, made right after
    # it was checked (L{equalityKey}), are not made again. Forgotten as
    # L{_dnKeys}, and when a class is added (objectIdentifierMatch).
    _checked: dict[AttributeType, dict[bytes, Any]] = field(default_factory=dict)
    # What checkValue runs on the values of each type (L{_check}).
    _checks: dict[AttributeType, tuple[Callable[[bytes], None] | None, Callable[..., Any], bool]] = (
        field(default_factory=dict))

    @classmethod
    def standard(cls, extraFiles: Iterable[Path] = (), names: Iterable[str] = STANDARD_FILES) -> Schema:
        """
        Build the standard schema (core, cosine, inetOrgPerson, NIS, password
        policy, dynamic groups) plus extra files.

        @param extraFiles: further schema files, loaded in order after the standard ones.
        @param names: the shipped schemas to load, in order, from
            L{STANDARD_SCHEMAS} (e.g. C{rfc2307bis} in place of C{nis}).
        @return: the schema.
        @raise SchemaError: naming file and line of a broken definition, or
            an unknown shipped schema.
        """
        schema = cls()
        base = _schemaDirectory()
        for name in names:
            if name not in STANDARD_SCHEMAS:
                raise SchemaError(
                    f"unknown schema {name!r} (known: {', '.join(STANDARD_SCHEMAS)})"
                )
            schema.loadFile(base / f"{name}.schema")
        for path in extraFiles:
            schema.loadFile(Path(path))
        return schema

    def loadFile(self, path: Path) -> None:
        """
        Add the definitions of one schema file.

        @param path: the file.
        @raise SchemaError: naming file and line of a broken definition.
        """
        for kind, text, where in readSchemaFile(path):
            try:
                if kind == "attributeTypes":
                    self.addAttributeType(text)
                else:
                    self.addObjectClass(text)
            except SchemaError as e:
                raise SchemaError(str(e), where) from None

    def addAttributeType(self, text: str) -> AttributeType:
        """
        Add one AttributeTypeDescription.

        @param text: the description.
        @return: the new type.
        @raise SchemaError: if it is malformed, duplicates a name or OID, or
            refers to an unknown supertype or matching rule.
        """
        self._dnKeys.clear()
        self._normalRDNs.clear()
        self._checked.clear()
        d = parseDescription(text)
        names = tuple(d.get("NAME", ()))
        sup = None
        if "SUP" in d:
            sup = self.attributeType(d["SUP"][0])
            if sup is None:
                raise SchemaError(f"unknown SUP {d['SUP'][0]}")
        elif "SYNTAX" not in d:
            raise SchemaError("an attribute type needs SYNTAX or SUP")

        def rule(keyword: str, inherited: MatchingRule | None) -> MatchingRule | None:
            if keyword not in d:
                return inherited
            found = RULES.get(str(d[keyword]).lower())
            if found is None:
                raise SchemaError(f"unknown matching rule {d[keyword]}")
            return found

        syntax = d.get("SYNTAX")
        if syntax and str(syntax).split("{")[0] not in SYNTAXES:
            raise SchemaError(f"unknown syntax {syntax}")
        at = AttributeType(
            oid=str(d["OID"]),
            names=names,
            definition=text,
            sup=sup,
            equality=rule("EQUALITY", sup.equality if sup else None),
            ordering=rule("ORDERING", sup.ordering if sup else None),
            substr=rule("SUBSTR", sup.substr if sup else None),
            syntax=str(syntax).split("{")[0] if syntax else (sup.syntax if sup else None),
            singleValue="SINGLE-VALUE" in d,
            noUserModification="NO-USER-MODIFICATION" in d,
            collective="COLLECTIVE" in d,
            obsolete="OBSOLETE" in d,
            usage=str(d.get("USAGE", sup.usage if sup else _USER)),
        )
        self._register(self._types, at, names)
        self._typeList.append(at)
        self._subtypes.clear()
        return at

    def addObjectClass(self, text: str) -> ObjectClass:
        """
        Add one ObjectClassDescription.

        @param text: the description.
        @return: the new class.
        @raise SchemaError: if it is malformed or refers to something unknown.
        """
        self._checked.clear()
        d = parseDescription(text)
        names = tuple(d.get("NAME", ()))

        def types(keyword: str) -> tuple[AttributeType, ...]:
            found = []
            for name in d.get(keyword, ()):
                at = self.attributeType(name)
                if at is None:
                    raise SchemaError(f"unknown attribute type {name} in {keyword}")
                found.append(at)
            return tuple(found)

        sups = []
        for name in d.get("SUP", ()):
            sup = self.objectClass(name)
            if sup is None:
                raise SchemaError(f"unknown SUP {name}")
            sups.append(sup)
        kind = "STRUCTURAL"
        for k in ("ABSTRACT", "AUXILIARY"):
            if k in d:
                kind = k
        oc = ObjectClass(
            oid=str(d["OID"]),
            names=names,
            definition=text,
            sup=tuple(sups),
            kind=kind,
            must=types("MUST"),
            may=types("MAY"),
            obsolete="OBSOLETE" in d,
        )
        self._register(self._classes, oc, names)
        self._classList.append(oc)
        self._superclasses.clear()
        return oc

    @staticmethod
    def _register(table: dict[str, Any], item: Any, names: tuple[str, ...]) -> None:
        keys = [item.oid.lower()] + [n.lower() for n in names]
        for key in keys:
            if key in table:
                raise SchemaError(f"{key} is defined twice")
        for key in keys:
            table[key] = item

    @property
    def attributeTypes(self) -> list[AttributeType]:
        """
        Every attribute type, in definition order.
        """
        return list(self._typeList)

    @property
    def objectClasses(self) -> list[ObjectClass]:
        """
        Every object class, in definition order.
        """
        return list(self._classList)

    def attributeType(self, name: str) -> AttributeType | None:
        """
        @param name: a name or OID, in any case, without options.
        @return: the attribute type, or C{None} if it is undefined.
        """
        return self._types.get(name.lower())

    def objectClass(self, name: str) -> ObjectClass | None:
        """
        @param name: a name or OID, in any case.
        @return: the object class, or C{None} if it is undefined.
        """
        return self._classes.get(name.lower())

    def subtypes(self, at: AttributeType) -> frozenset[AttributeType]:
        """
        @param at: an attribute type.
        @return: C{at} and every type derived from it (a filter on C{name}
            matches C{cn} and C{sn}).
        """
        key = id(at)
        found = self._subtypes.get(key)
        if found is None:
            found = frozenset(t for t in self._typeList if _derivesFrom(t, at))
            self._subtypes[key] = found
        return found

    def superclasses(self, oid: str) -> frozenset[str]:
        """
        @param oid: the OID of an object class (as objectIdentifierMatch
            normalises objectClass values).
        @return: the OIDs of the class and all its superclasses; empty for an
            unknown class.
        """
        found = self._superclasses.get(oid)
        if found is None:
            oc = self._classes.get(oid.lower()) if isinstance(oid, str) else None
            oids: set[str] = set()
            stack = [oc] if oc is not None else []
            while stack:
                c = stack.pop()
                if c.oid not in oids:
                    oids.add(c.oid)
                    stack.extend(c.sup)
            found = self._superclasses[oid] = frozenset(oids)
        return found

    @property
    def syntaxes(self) -> list[Syntax]:
        """
        Every syntax the schema knows, published in cn=Subschema.
        """
        return list(SYNTAXES.values())

    def matchingRuleUses(self) -> list[str]:
        """
        The MatchingRuleUseDescriptions (RFC 4512 §4.1.4) of the schema: for
        each matching rule some attribute type uses, the types it applies to.

        @return: the descriptions, in the order of the rules' first use.
        """
        uses: dict[str, tuple[MatchingRule, list[str]]] = {}
        for at in self._typeList:
            for rule in (at.equality, at.ordering, at.substr):
                if rule is not None:
                    uses.setdefault(rule.oid, (rule, []))[1].append(at.name)
        return [
            f"( {rule.oid} NAME '{rule.name}' APPLIES "
            + (names[0] if len(names) == 1 else f"( {' $ '.join(names)} )")
            + " )"
            for rule, names in uses.values()
        ]

    def checkValue(self, at: AttributeType, value: bytes) -> Any:
        """
        Check a value about to be stored: its syntax, then its equality rule.

        @param at: the attribute type.
        @param value: the raw value.
        @return: the value's equality key (see L{normalizeValue}).
        @raise InvalidValue: if the value is not of the type's syntax or does
            not conform to its equality rule.
        """
        checked = self._checked.get(at)
        if checked is None:
            checked = self._checked[at] = {}
        else:
            key = checked.get(value, _UNCHECKED)
            if key is not _UNCHECKED:
                return key
        check = self._checks.get(at)
        if check is None:
            check = self._checks[at] = self._check(at)
        validate, normalize, needsSchema = check
        if validate is not None:
            validate(value)
        key = normalize(value, self) if needsSchema else normalize(value)
        if len(value) <= _CHECKED_LENGTH:
            if len(checked) >= _CHECKED_VALUES:
                checked.clear()
            checked[value] = key
        return key

    @staticmethod
    def _check(at: AttributeType) -> tuple[Callable[[bytes], None] | None, Callable[..., Any], bool]:
        """
        What L{checkValue} runs on a value of a type: its syntax's
        validator (C{None} when there is none, or when the equality rule
        makes the check), then its equality rule (octetStringMatch for a
        type without one, as L{normalizeValue}).

        @return: the validator, the rule's normalisation and whether that
            takes the schema.
        """
        syntax = SYNTAXES.get(at.syntax or "")
        validate = None
        if syntax is not None and (
                at.equality is None or (syntax.oid, at.equality.oid) not in _CHECKED_BY_RULE):
            validate = syntax.validate
        rule = at.equality or RULES["octetstringmatch"]
        return validate, rule.normalize, rule.needsSchema

    def equalityKey(self, at: AttributeType, value: bytes) -> Any:
        """
        L{normalizeValue}'s equality key of a value, taken from the values
        of the type L{checkValue} checked lately when it is one of them: an
        entry's index keys, made right after the entry was checked, are
        then not made twice.

        @raise InvalidValue: if the value does not conform to the rule.
        """
        checked = self._checked.get(at)
        if checked is not None:
            key = checked.get(value, _UNCHECKED)
            if key is not _UNCHECKED:
                return key
        return self.normalizeValue(at, value)

    def resolveOID(self, text: str) -> str:
        """
        The key objectIdentifierMatch compares: the OID of a named attribute
        type, object class or matching rule, or the lower-cased text.

        @param text: a name or numeric OID.
        """
        key = text.lower()
        item = self._classes.get(key) or self._types.get(key) or RULES.get(key)
        return item.oid if item is not None else key

    def normalizeDN(self, dn: DN) -> DN:
        """
        The normalised form of a DN: attribute types as lower-case primary names,
        values normalised by their equality rules, multi-valued RDNs sorted.
        Two DNs are equal in LDAP exactly when their normalised forms are equal.

        @param dn: the name.
        @return: the normalised name.
        @raise InvalidDN: if it uses an undefined attribute type, an empty
            value or one invalid for its syntax, or one type twice in an RDN
            (as slapd).
        """
        normal = self._normalRDNs
        rdns = []
        for rdn in dn.rdns:
            found = normal.get(rdn)
            if found is None:
                found = self._normalizeRDN(rdn)
                if len(normal) >= _NORMAL_RDNS:
                    normal.clear()
                normal[rdn] = found
            rdns.append(found)
        return DN(rdns)

    def _normalizeRDN(self, rdn: RDN) -> RDN:
        """
        @return: the normalised form of one RDN of a DN (L{normalizeDN}).
        @raise InvalidDN: as L{normalizeDN}.
        """
        avas: list[AVA] = []
        for ava in rdn:
            at = self.attributeType(ava.type)
            if at is None:
                raise InvalidDN(f"undefined attribute type {ava.type!r} in DN")
            name = self._lowerNames.get(at)
            if name is None:
                name = self._lowerNames[at] = at.name.lower()
            if avas and any(other.type == name for other in avas):
                raise InvalidDN(f"attribute type {at.name} twice in one RDN")
            if not ava.value:
                raise InvalidDN(f"empty value for {at.name} in DN")
            try:
                key = self.normalizeValue(at, ava.value.encode("utf-8"))
            except InvalidValue as e:
                raise InvalidDN(f"invalid value for {at.name} in DN: {e}") from None
            avas.append(AVA(name, _keyText(key, ava.value)))
        return RDN(sorted(avas) if len(avas) > 1 else avas)

    def dnKey(self, value: bytes) -> str:
        """
        The equality key of a value of DN syntax: its normalised form
        (L{normalizeDN}) as text.

        @param value: the raw value.
        @raise InvalidDN: if it is not a valid DN.
        """
        key = self._dnKeys.get(value)
        if key is None:
            key = str(self.normalizeDN(DN.parse(value)))
            if len(self._dnKeys) >= _DN_KEYS:
                self._dnKeys.clear()
            self._dnKeys[value] = key
        return key

    def normalizeValue(self, at: AttributeType, value: bytes, kind: str = "equality") -> Any:
        """
        Normalise a value with one of an attribute type's matching rules.

        @param at: the attribute type.
        @param value: the raw value.
        @param kind: C{"equality"}, C{"ordering"} or C{"substr"}.
        @return: the key; values without such a rule compare as octet strings
            (equality) — callers check for ordering and substr rules first.
        @raise InvalidValue: if the value does not conform to the rule.
        """
        rule = getattr(at, kind) or RULES["octetstringmatch"]
        return self.applyRule(rule, value)

    def applyRule(self, rule: MatchingRule, value: bytes) -> Any:
        """
        @param rule: a matching rule.
        @param value: a raw value.
        @return: C{rule}'s key for C{value}.
        @raise InvalidValue: if the value does not conform to the rule.
        """
        if rule.needsSchema:
            return rule.normalize(value, self)
        return rule.normalize(value)


#: The syntaxes whose check an equality rule's normalisation makes (and
#: more strictly), by syntax and rule OID, so that L{Schema.checkValue}
#: does not make it twice: a DN is parsed by distinguishedNameMatch as by
#: the DN syntax, then normalised.
_CHECKED_BY_RULE = frozenset({("1.3.6.1.4.1.1466.115.121.1.12", "2.5.13.1")})

#: What L{Schema._checked} holds for a value it does not hold.
_UNCHECKED = object()

#: The most values of one type L{Schema.checkValue} remembers, and the
#: longest: an entry's values, and those its neighbours in an import share,
#: not its photographs.
_CHECKED_VALUES = 512
_CHECKED_LENGTH = 256

#: How many DN keys a schema remembers (L{Schema.dnKey}).
_DN_KEYS = 4096

#: The most RDNs L{Schema.normalizeDN} keeps the normalised form of.
_NORMAL_RDNS = 4096


def _schemaDirectory() -> Path:
    """
    The folder of the standard schema files: the top-level C{schema/} of the
    source tree, which an installed wheel carries as C{ldapd/schemafiles/}.
    """
    try:
        return dataFolder("schemafiles", "schema", "core.schema")
    except FileNotFoundError as e:
        raise SchemaError(f"the standard schema files are not installed: {e}") from None


def _derivesFrom(t: AttributeType | None, ancestor: AttributeType) -> bool:
    while t is not None:
        if t is ancestor:
            return True
        t = t.sup
    return False


def _keyText(key: Any, raw: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    if isinstance(key, tuple):
        return "#".join(key)
    return raw if isinstance(key, bool) else str(key)
