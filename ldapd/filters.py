"""
Search filters (RFC 4511 §4.5.1.7): compiled once per request from the
request's filter (L{ldapd.requests.Filter}), then evaluated against entries with three-valued logic.

Evaluation returns C{True}, C{False} or C{None} for Undefined; an entry is
returned only when the whole filter is C{True}. Backends read the compiled
nodes (L{Equality}, L{Present}, L{Substrings}, L{And}, L{Or}) to plan index
lookups, and always confirm candidates with L{Filter.match}.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable, Iterator

from ldaptor.protocols.ldap import ldaperrors

from ldapd import requests as syntax
from ldapd.entry import Entry, parseDescription
from ldapd.schema import RULES, AttributeType, InvalidValue, MatchingRule, Schema
from ldapd.schema.matching import soundex, substringPiece

__all__ = [
    "ENTRY_DN",
    "MAX_DEPTH",
    "OBJECT_CLASS",
    "And",
    "Approx",
    "EntryDNEquality",
    "Equality",
    "Extensible",
    "Filter",
    "GreaterOrEqual",
    "IN_CHAIN",
    "InChain",
    "LessOrEqual",
    "Not",
    "Or",
    "Present",
    "Substrings",
    "Undefined",
    "assertions",
    "nestedTooDeep",
    "compileFilter",
    "loosened",
    "rewritten",
    "throughSearchable",
    "withoutAssertionsOn",
]

#: The OID of entryDN (RFC 5020), whose value is the entry's name.
ENTRY_DN = "1.3.6.1.1.20"

#: The OID of objectClass: an object class assertion also matches entries of
#: its subclasses, as slapd's objectSubClassMatch does.
OBJECT_CLASS = "2.5.4.0"

#: The deepest nesting of and/or/not a filter may have.
MAX_DEPTH = 64


class Filter:
    """
    A compiled filter node.
    """

    def match(self, entry: Entry) -> bool | None:
        """
        Evaluate the filter.

        @param entry: the entry.
        @return: C{True}, C{False}, or C{None} for Undefined.
        """
        raise NotImplementedError


class And(Filter):
    """
    C{(&...)}: true when every part is; the empty And is absolute true (RFC 4526).
    """

    def __init__(self, parts: list[Filter]) -> None:
        self.parts = parts

    def match(self, entry: Entry) -> bool | None:
        result: bool | None = True
        for part in self.parts:
            r = part.match(entry)
            if r is False:
                return False
            if r is None:
                result = None
        return result


class Or(Filter):
    """
    C{(|...)}: true when any part is; the empty Or is absolute false.
    """

    def __init__(self, parts: list[Filter]) -> None:
        self.parts = parts

    def match(self, entry: Entry) -> bool | None:
        result: bool | None = False
        for part in self.parts:
            r = part.match(entry)
            if r is True:
                return True
            if r is None:
                result = None
        return result


class Not(Filter):
    """
    C{(!...)}: Undefined stays Undefined.
    """

    def __init__(self, part: Filter) -> None:
        self.part = part

    def match(self, entry: Entry) -> bool | None:
        r = self.part.match(entry)
        return None if r is None else not r


class Undefined(Filter):
    """
    An assertion that is Undefined for every entry: an undefined attribute
    type, a value invalid for the rule, or a rule the type does not have.
    """

    def match(self, entry: Entry) -> bool | None:
        return None


class _Assertion(Filter):
    """
    An assertion on one attribute description.

    @ivar type: the attribute type.
    @ivar options: the description's options.
    """

    def __init__(self, at: AttributeType, options: tuple[str, ...]) -> None:
        self.type = at
        self.options = options


class Present(_Assertion):
    """
    C{(attr=*)}.
    """

    def match(self, entry: Entry) -> bool | None:
        return bool(entry.matching(self.type, self.options))


class Equality(_Assertion):
    """
    C{(attr=value)} with the type's equality rule.

    @ivar key: the normalised assertion value.
    """

    def __init__(self, at: AttributeType, options: tuple[str, ...], key: Any) -> None:
        super().__init__(at, options)
        self.key = key

    def match(self, entry: Entry) -> bool | None:
        schema = entry.schema
        for attr in entry.matching(self.type, self.options):
            keys = attr.keys(schema)
            if self.key in keys:
                return True
            if attr.type.oid == OBJECT_CLASS and any(
                self.key in schema.superclasses(k) for k in keys
            ):
                return True
        return False


class EntryDNEquality(Filter):
    """
    C{(entryDN=dn)}: entryDN is not stored but computed from the entry's
    name (RFC 5020), so the assertion compares with the normalised name. It
    is not an L{Equality}, which backends would look up in their indexes.

    @ivar key: the normalised DN asserted, as distinguishedNameMatch keys it.
    """

    def __init__(self, key: str) -> None:
        self.key = key

    def match(self, entry: Entry) -> bool | None:
        return str(entry.ndn) == self.key


class InChain(_Assertion):
    """
    C{(attr:1.2.840.113556.1.4.1941:=dn)}, Active Directory's
    LDAP_MATCHING_RULE_IN_CHAIN on a DN-valued type: true for the entries
    from which a chain of C{attr} values leads to C{dn}, a member of a
    nested group for C{memberOf}, a group that holds C{dn} through nested
    groups for C{member}.

    Following a chain needs the directory's other entries: the search module
    follows it before the search starts (L{ldapd.search.followChains}) and
    sets C{reached}; until then the assertion is true where C{attr} names
    C{dn} itself. It is no L{Equality}: backends must not narrow the search
    to the entries that do.

    @ivar key: the normalised DN asserted.
    @ivar reached: the normalised DNs (as text) of the entries with a chain
        to C{key}, once followed; C{None} before.
    """

    def __init__(self, at: AttributeType, key: Any) -> None:
        super().__init__(at, ())
        self.key = key
        self.reached: frozenset[str] | None = None

    def match(self, entry: Entry) -> bool | None:
        if self.reached is not None:
            return str(entry.ndn) in self.reached
        return any(self.key in attr.keys(entry.schema) for attr in entry.matching(self.type))


class _Ordering(_Assertion):
    def __init__(self, at: AttributeType, options: tuple[str, ...], rule: MatchingRule, key: Any):
        super().__init__(at, options)
        self.rule = rule
        self.key = key

    def compare(self, value: Any) -> bool:
        raise NotImplementedError

    def match(self, entry: Entry) -> bool | None:
        schema = entry.schema
        result: bool | None = False
        for attr in entry.matching(self.type, self.options):
            for v in attr.values:
                try:
                    if self.compare(schema.applyRule(self.rule, v)):
                        return True
                except (InvalidValue, TypeError):
                    result = None
        return result


class GreaterOrEqual(_Ordering):
    """
    C{(attr>=value)} with the type's ordering rule.
    """

    def compare(self, value: Any) -> bool:
        return value >= self.key


class LessOrEqual(_Ordering):
    """
    C{(attr<=value)} with the type's ordering rule.
    """

    def compare(self, value: Any) -> bool:
        return value <= self.key


class Substrings(_Assertion):
    """
    C{(attr=initial*any*final)} with the type's substrings rule.

    @ivar initial: the normalised initial piece, or C{None}.
    @ivar any: the normalised middle pieces.
    @ivar final: the normalised final piece, or C{None}.
    """

    def __init__(
        self,
        at: AttributeType,
        options: tuple[str, ...],
        rule: MatchingRule,
        initial: str | None,
        any: list[str],
        final: str | None,
    ) -> None:
        super().__init__(at, options)
        self.rule = rule
        self.initial = initial
        self.any = any
        self.final = final

    def matchesText(self, text: Any) -> bool:
        """
        @param text: a value normalised by the substrings rule.
        @return: whether the pieces occur in it in order.
        """
        pos = 0
        end = len(text)
        if self.initial is not None:
            if not text.startswith(self.initial):
                return False
            pos = len(self.initial)
        if self.final is not None:
            if not text.endswith(self.final) or end - len(self.final) < pos:
                return False
            end -= len(self.final)
        for piece in self.any:
            found = text.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True

    def match(self, entry: Entry) -> bool | None:
        schema = entry.schema
        result: bool | None = False
        for attr in entry.matching(self.type, self.options):
            for v in attr.values:
                try:
                    if self.matchesText(schema.applyRule(self.rule, v)):
                        return True
                except InvalidValue:
                    result = None
        return result


class Approx(_Assertion):
    """
    C{(attr~=value)}: every word of the assertion sounds like a word of the
    value (Soundex, as slapd's default approximate matching).
    """

    def __init__(self, at: AttributeType, options: tuple[str, ...], words: list[str]) -> None:
        super().__init__(at, options)
        self.words = words

    def match(self, entry: Entry) -> bool | None:
        schema = entry.schema
        for attr in entry.matching(self.type, self.options):
            for v in attr.values:
                try:
                    key = schema.normalizeValue(attr.type, v)
                except InvalidValue:
                    continue
                if _approxWords(key) >= set(self.words) if self.words else False:
                    return True
        return False


def _approxWords(key: Any) -> set[str]:
    if isinstance(key, str):
        return {soundex(w) for w in key.split()}
    return {repr(key)}


#: Extensible-match rules beyond the schema's own (Active Directory's bit rules, which slapd implements).
_BIT_AND = "1.2.840.113556.1.4.803"
_BIT_OR = "1.2.840.113556.1.4.804"
#: Active Directory's LDAP_MATCHING_RULE_IN_CHAIN (L{InChain}).
IN_CHAIN = "1.2.840.113556.1.4.1941"

_INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"
_DN_MATCH = "2.5.13.1"
_DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
#: The syntaxes the Directory String rules also compare, as in slapd: Country
#: String, Directory String, Printable String and Telephone Number.
_DIRECTORY_STRING_COMPATIBLE = frozenset(
    "1.3.6.1.4.1.1466.115.121.1." + n for n in ("11", "15", "44", "50")
)


def _usable(rule: MatchingRule | str, at: AttributeType) -> bool:
    """
    Whether an extensible match may apply C{rule} to the values of C{at}: one
    of the type's own rules, or a rule for its syntax (RFC 4511 §4.5.1.7.7).
    Substrings rules are never usable: their assertion is a substrings
    assertion, which an extensible match cannot carry.
    """
    if isinstance(rule, str):
        return at.syntax == _INTEGER
    if rule.kind == "substr":
        return False
    if rule in (at.equality, at.ordering) or rule.syntax == at.syntax:
        return True
    return rule.syntax == _DIRECTORY_STRING and at.syntax in _DIRECTORY_STRING_COMPATIBLE


class Extensible(Filter):
    """
    C{(attr:dn:rule:=value)} (RFC 4511 §4.5.1.7.7).

    @ivar type: the attribute type, or C{None} to test every attribute the
        rule is usable with.
    @ivar rule: the matching rule, or a bit rule OID.
    @ivar dnAttributes: whether the entry's DN components are tested too.
    @ivar excluded: attribute types left out when C{type} is C{None} (those
        the requester may not test).
    """

    excluded: frozenset[AttributeType] = frozenset()

    def __init__(
        self,
        at: AttributeType | None,
        rule: MatchingRule | str,
        value: bytes,
        dnAttributes: bool,
        schema: Schema,
    ) -> None:
        self.type = at
        self.rule = rule
        self.dnAttributes = dnAttributes
        self.value = value
        self.key: Any = None
        if isinstance(rule, MatchingRule):
            self.key = schema.applyRule(rule, value)
        else:
            try:
                self.key = int(value)
            except ValueError:
                raise InvalidValue("bit rules take an integer") from None

    def _test(self, schema: Schema, raw: bytes) -> bool | None:
        rule = self.rule
        try:
            if isinstance(rule, str):
                v = int(raw)
                return (v & self.key) == self.key if rule == _BIT_AND else bool(v & self.key)
            key = schema.applyRule(rule, raw)
        except (InvalidValue, ValueError):
            return None
        if rule.kind == "ordering":
            return key < self.key
        return key == self.key

    def match(self, entry: Entry) -> bool | None:
        schema = entry.schema
        result: bool | None = False
        if self.type is not None:
            attrs = entry.matching(self.type)
        else:
            attrs = [a for a in entry if a.type not in self.excluded and _usable(self.rule, a.type)]
        for attr in attrs:
            for v in attr.values:
                r = self._test(schema, v)
                if r:
                    return True
                if r is None and self.type is not None:
                    result = None
        if self.dnAttributes:
            for rdn in entry.dn:
                for ava in rdn:
                    at = schema.attributeType(ava.type)
                    if at is None or at in self.excluded or not _usable(self.rule, at):
                        continue
                    if self.type is not None and at not in schema.subtypes(self.type):
                        continue
                    if self._test(schema, ava.value.encode("utf-8")):
                        return True
        return result


def nestedTooDeep() -> ldaperrors.LDAPProtocolError:
    """
    @return: the error a filter nested deeper than L{MAX_DEPTH} gets, whether
        that is found before it is decoded (L{ldapd._framing.Framer}) or
        when it is compiled.
    """
    return ldaperrors.LDAPProtocolError(f"filter nested deeper than {MAX_DEPTH} levels")


def compileFilter(f: syntax.Filter, schema: Schema, depth: int = 0) -> Filter:
    """
    Compile a request's filter against the schema.

    @param f: the filter as decoded (L{ldapd.requests.Filter}).
    @param schema: the schema for attribute types and matching rules.
    @param depth: the nesting depth of C{f}.
    @return: the compiled filter.
    @raise ldaperrors.LDAPProtocolError: for a filter nested too deeply or a
        malformed component.
    """
    if depth > MAX_DEPTH:
        raise nestedTooDeep()
    if isinstance(f, syntax.And):
        return And([compileFilter(p, schema, depth + 1) for p in f.parts])
    if isinstance(f, syntax.Or):
        return Or([compileFilter(p, schema, depth + 1) for p in f.parts])
    if isinstance(f, syntax.Not):
        return Not(compileFilter(f.part, schema, depth + 1))
    try:
        return _compileAssertion(f, schema)
    except (ldaperrors.LDAPUndefinedAttributeType, InvalidValue):
        return Undefined()


def everything(schema: Schema) -> Filter:
    """
    @return: C{(objectClass=*)}, which every entry matches: what the server's
        own searches of a whole subtree use.
    """
    return compileFilter(syntax.Present(b"objectClass"), schema)


def byUUID(schema: Schema, entryUUID: bytes) -> Filter:
    """
    @return: C{(entryUUID=...)}, which the memory and sql backends answer
        from their index.
    """
    return compileFilter(syntax.Equality(b"entryUUID", entryUUID), schema)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _compileAssertion(f: syntax.Filter, schema: Schema) -> Filter:
    if isinstance(f, syntax.Present):
        at, options = parseDescription(schema, _text(f.attribute))
        return Present(at, options)
    if isinstance(f, syntax.Substrings):
        at, options = parseDescription(schema, _text(f.attribute))
        if at.substr is None:
            return Undefined()
        initial = final = None
        middle: list[Any] = []
        for kind, piece in f.pieces:
            value = substringPiece(at.substr, piece)
            if kind == syntax.INITIAL:
                if initial is not None or middle or final is not None:
                    raise ldaperrors.LDAPProtocolError("misplaced initial substring")
                initial = value
            elif kind == syntax.FINAL:
                if final is not None:
                    raise ldaperrors.LDAPProtocolError("more than one final substring")
                final = value
            else:
                if final is not None:
                    raise ldaperrors.LDAPProtocolError("substring after the final one")
                middle.append(value)
        return Substrings(at, options, at.substr, initial, middle, final)
    if isinstance(f, syntax.Extensible):
        return _compileExtensible(f, schema)
    if isinstance(f, (syntax.Equality, syntax.GreaterOrEqual, syntax.LessOrEqual, syntax.Approx)):
        at, options = parseDescription(schema, _text(f.attribute))
        value = f.value
        if isinstance(f, syntax.Equality):
            if at.equality is None:
                return Undefined()
            if at.oid == ENTRY_DN and not options:
                return EntryDNEquality(schema.normalizeValue(at, value))
            return Equality(at, options, schema.normalizeValue(at, value))
        if isinstance(f, syntax.Approx):
            if at.equality is None:
                return Undefined()
            return Approx(at, options, sorted(_approxWords(schema.normalizeValue(at, value))))
        if at.ordering is None:
            return Undefined()
        key = schema.applyRule(at.ordering, value)
        cls = GreaterOrEqual if isinstance(f, syntax.GreaterOrEqual) else LessOrEqual
        return cls(at, options, at.ordering, key)
    raise ldaperrors.LDAPProtocolError(f"unknown filter type {type(f).__name__}")


def _compileExtensible(f: syntax.Extensible, schema: Schema) -> Filter:
    at = None
    if f.attribute is not None:
        at, _ = parseDescription(schema, _text(f.attribute))
    rule: MatchingRule | str
    if f.rule is not None:
        name = _text(f.rule)
        if name == IN_CHAIN:
            if at is None or at.equality is None or at.equality.oid != _DN_MATCH:
                return Undefined()
            return InChain(at, schema.normalizeValue(at, f.value))
        if name in (_BIT_AND, _BIT_OR):
            rule = name
        else:
            found = RULES.get(name.lower())
            if found is None:
                return Undefined()
            rule = found
    elif at is not None and at.equality is not None:
        rule = at.equality
    elif at is None:
        raise ldaperrors.LDAPProtocolError("extensible match needs a type or a matching rule")
    else:
        return Undefined()
    if at is not None and not _usable(rule, at):
        return Undefined()
    return Extensible(at, rule, f.value, f.dnAttributes, schema)



def assertions(f: Filter) -> Iterator[Filter]:
    """
    The assertions a filter is made of: its leaves, below every And, Or and Not.

    @param f: a compiled filter.
    @return: an iterator of the assertion nodes.
    """
    stack = [f]
    while stack:
        node = stack.pop()
        if isinstance(node, (And, Or)):
            stack.extend(node.parts)
        elif isinstance(node, Not):
            stack.append(node.part)
        else:
            yield node


def rewritten(f: Filter, leaf: Callable[[Filter], Filter]) -> Filter:
    """
    The filter with each node below its And, Or and Not nodes replaced by
    what C{leaf} returns for it, sharing every part that did not change.
    """
    if isinstance(f, (And, Or)):
        parts = [rewritten(p, leaf) for p in f.parts]
        return f if all(a is b for a, b in zip(parts, f.parts, strict=True)) else type(f)(parts)
    if isinstance(f, Not):
        part = rewritten(f.part, leaf)
        return f if part is f.part else Not(part)
    return leaf(f)


def _excluding(f: Extensible, types: frozenset[AttributeType]) -> Extensible:
    """
    A rule without a type tests every attribute: all but C{types}.
    """
    narrowed = copy.copy(f)
    narrowed.excluded = f.excluded | types
    return narrowed


def withoutAssertionsOn(f: Filter, types: frozenset[AttributeType]) -> Filter:
    """
    The filter with every assertion on one of C{types}, or on a supertype of
    one, made Undefined: what a client may not read, it may not test either.

    @param f: a compiled filter.
    @param types: the attribute types to hide.
    @return: a filter (C{f} itself if nothing changed).
    """
    covering = _covering(types)

    def leaf(node: Filter) -> Filter:
        if isinstance(node, Extensible) and node.type is None:
            return _excluding(node, types)
        if isinstance(node, (_Assertion, Extensible)):
            if node.type is None or node.type in covering:
                return Undefined()
        return node

    return rewritten(f, leaf)


def throughSearchable(f: Filter, hidden: frozenset[AttributeType]) -> Filter:
    """
    The filter to evaluate against an entry without its C{hidden}
    attributes (those the client may not search), so that it tests them as
    slapd does (C{test_ava_filter}): an assertion on a hidden type is
    Undefined; one on a supertype of a hidden type (C{name} for a hidden
    C{sn}, C{distinguishedName} for a hidden C{member}) is true when a
    visible subtype's value matches, and Undefined otherwise, never false:
    neither the values nor the presence of a hidden attribute show through.

    @param f: a compiled filter.
    @param hidden: the attribute types the client may not search.
    @return: a filter (C{f} itself if nothing changed).
    """
    covering = _covering(hidden)

    def leaf(node: Filter) -> Filter:
        if isinstance(node, Extensible) and node.type is None:
            return _excluding(node, hidden)
        if isinstance(node, EntryDNEquality):
            return Undefined() if any(t.oid == ENTRY_DN for t in hidden) else node
        if isinstance(node, (_Assertion, Extensible)):
            if node.type is None or node.type in hidden:
                return Undefined()
            if node.type in covering:
                return Or([node, Undefined()])
        return node

    return rewritten(f, leaf)


def loosened(f: Filter, types: frozenset[AttributeType]) -> Filter:
    """
    A filter every entry C{f} selects also matches, without the assertions
    on C{types}: each is made absolute true where a true one could only
    make the filter truer (under an even number of Nots), absolute false
    elsewhere. A backend selects entries with it when C{f} tests
    attributes it does not store (hasSubordinates), and C{f} itself is
    then tested on what it selects.

    @param f: a compiled filter.
    @param types: the attribute types whose assertions are left out.
    @return: the looser filter (C{f} itself if it tests none of C{types}).
    """
    def loosen(node: Filter, positive: bool) -> Filter:
        if isinstance(node, (And, Or)):
            return type(node)([loosen(p, positive) for p in node.parts])
        if isinstance(node, Not):
            return Not(loosen(node.part, not positive))
        if getattr(node, "type", None) in types:
            return And([]) if positive else Or([])
        return node

    if not any(getattr(node, "type", None) in types for node in assertions(f)):
        return f
    return loosen(f, True)


@functools.lru_cache(maxsize=64)
def _covering(types: frozenset[AttributeType]) -> frozenset[AttributeType]:
    """
    @return: C{types} and their supertypes: the types an assertion on which
        also tests the values of one of C{types} (a filter on C{name} reads
        C{cn}). Kept for the few sets asked for, each asked for by a plugin
        on every search.
    """
    found = set()
    for at in types:
        current: AttributeType | None = at
        while current is not None:
            found.add(current)
            current = current.sup
    return frozenset(found)
