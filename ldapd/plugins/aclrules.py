"""
The access rule language of the C{acl} plugin: OpenLDAP's slapd.access(5)
C{access to <what> [by <who> [<access>] [<control>]]+}, parsed into
L{AccessRule}s and evaluated with slapd's semantics.

Supported: C{<what>} is C{*}, C{dn[.base|.exact|.one|.subtree|.children|.regex]=},
C{filter=} and C{attrs=} (with the pseudo-attributes C{entry} and
C{children}), in any combination; C{<who>} is C{*}, C{anonymous}, C{users},
C{self}, C{dn[.style]=}, C{dnattr=}, C{group[/objectClass[/attribute]]=} and
C{peername[.ip|.path|.regex|.exact]=}, several of them joined by a logical AND;
C{<access>} is a level (C{none}, C{disclose}, C{auth}, C{compare}, C{search},
C{read}, C{add}, C{delete}, C{write}, C{manage}) or privileges
(C{=}/C{+}/C{-} followed by C{m w a z r s c x d 0}); C{<control>} is C{stop}
(the default), C{continue} or C{break}.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterable

from ldaptor.protocols.ldap import ldaperrors

from ldapd.dn import DN, InvalidDN
from ldapd.entry import Entry
from ldapd.filters import Filter, compileFilter
from ldapd.patterns import InvalidPattern, compilePattern
from ldapd.requests import InvalidFilter, parseFilter
from ldapd.schema import AttributeType, InvalidValue, Schema

__all__ = [
    "CHILDREN",
    "ENTRY",
    "AccessRule",
    "AccessRuleError",
    "Decisions",
    "Grants",
    "Privilege",
    "Subject",
    "SubjectDecisions",
    "evaluate",
    "parseRule",
]

#: The pseudo-attribute that stands for the entry itself.
ENTRY = "entry"

#: The pseudo-attribute that stands for the entry's children (adding and
#: deleting them).
CHILDREN = "children"


class AccessRuleError(ValueError):
    """
    A rule that cannot be parsed; the message says where and why.
    """


class Privilege(enum.IntFlag):
    """
    The individual privileges of slapd.access(5), with their letters.
    """

    NONE = 0
    DISCLOSE = 1  # d
    AUTH = 2  # x
    COMPARE = 4  # c
    SEARCH = 8  # s
    READ = 16  # r
    ADD = 32  # a
    DELETE = 64  # z
    MANAGE = 128  # m
    WRITE = ADD | DELETE  # w


_D = Privilege.DISCLOSE
_LEVELS: dict[str, Privilege] = {"none": Privilege.NONE, "disclose": _D}
_LEVELS["auth"] = _LEVELS["disclose"] | Privilege.AUTH
_LEVELS["compare"] = _LEVELS["auth"] | Privilege.COMPARE
_LEVELS["search"] = _LEVELS["compare"] | Privilege.SEARCH
_LEVELS["read"] = _LEVELS["search"] | Privilege.READ
_LEVELS["add"] = _LEVELS["read"] | Privilege.ADD
_LEVELS["delete"] = _LEVELS["read"] | Privilege.DELETE
_LEVELS["write"] = _LEVELS["read"] | Privilege.WRITE
_LEVELS["manage"] = _LEVELS["write"] | Privilege.MANAGE

_LETTERS = {
    "m": Privilege.MANAGE,
    "w": Privilege.WRITE,
    "a": Privilege.ADD,
    "z": Privilege.DELETE,
    "r": Privilege.READ,
    "s": Privilege.SEARCH,
    "c": Privilege.COMPARE,
    "x": Privilege.AUTH,
    "d": Privilege.DISCLOSE,
    "0": Privilege.NONE,
}

_DN_STYLES = {
    "": "base", "base": "base", "baseobject": "base", "exact": "base",
    "one": "one", "onelevel": "one",
    "sub": "subtree", "subtree": "subtree",
    "children": "children",
    "regex": "regex",
}

_CONTROLS = ("stop", "continue", "break")


@dataclass(frozen=True)
class Subject:
    """
    Who asks, as rules see it.

    @ivar ndn: the normalised authorization DN, or C{None} for anonymous.
    @ivar peer: the client's address as slapd names it (C{IP=1.2.3.4:5678},
        C{PATH=/run/ldapi}).
    @ivar groups: the normalised DNs of the groups (named by the rules) the
        subject is a member of.
    """

    ndn: DN | None
    peer: str = ""
    groups: frozenset[DN] = frozenset()


@dataclass
class _DNPattern:
    style: str
    dn: DN | None = None
    #: An RE2 pattern (L{ldapd.patterns.compilePattern}).
    regex: Any = None

    def matches(self, ndn: DN) -> bool:
        if self.regex is not None:
            return self.regex.search(str(ndn)) is not None
        assert self.dn is not None
        return ndn.inScope(self.dn, self.style)


@dataclass
class _Who:
    """
    One C{by} clause's conditions (all must hold), access and control.
    """

    kind: list[str] = field(default_factory=list)
    dn: _DNPattern | None = None
    dnattr: AttributeType | None = None
    group: DN | None = None
    peer: tuple[str, Any] | None = None
    operator: str = "+"
    privileges: Privilege = Privilege.NONE
    control: str = "stop"

    def matchesSubject(self, subject: Subject) -> bool:
        """
        @return: whether the conditions on the subject alone hold (all
            but C{self} and C{dnattr}).
        """
        for kind in self.kind:
            if kind == "anonymous" and subject.ndn is not None:
                return False
            if kind == "users" and subject.ndn is None:
                return False
        if self.dn is not None and (subject.ndn is None or not self.dn.matches(subject.ndn)):
            return False
        if self.group is not None and self.group not in subject.groups:
            return False
        return self.peer is None or _peerMatches(self.peer, subject.peer)

    @property
    def looksAtEntry(self) -> bool:
        """
        Whether a condition relates the subject to the entry accessed
        (C{self}, C{dnattr}): L{matchesEntry} is then not always true.
        """
        return "self" in self.kind or self.dnattr is not None

    def matchesEntry(self, subject: Subject, entry: Entry) -> bool:
        """
        @return: whether the conditions relating the subject to the entry
            (C{self}, C{dnattr}) hold.
        """
        if "self" in self.kind and subject.ndn != entry.ndn:
            return False
        return self.dnattr is None or _holds(entry, self.dnattr, subject.ndn)

    def apply(self, mask: Privilege) -> Privilege:
        if self.operator == "=":
            return self.privileges
        if self.operator == "-":
            return mask & ~self.privileges
        return mask | self.privileges


@dataclass(eq=False)
class AccessRule:
    """
    One C{access to} directive.

    @ivar text: the rule as written.
    @ivar scope: for rules stored in the directory, the normalised DN of the
        entry that holds them: they apply only within its subtree.
    @ivar groups: the group DNs its C{by} clauses name.
    """

    text: str
    dn: _DNPattern | None = None
    filter: Filter | None = None
    attrs: frozenset[AttributeType] | None = None
    pseudo: frozenset[str] = frozenset()
    clauses: list[_Who] = field(default_factory=list)
    scope: DN | None = None

    @property
    def groups(self) -> set[DN]:
        """
        The normalised DNs of the groups this rule's clauses test.
        """
        return {c.group for c in self.clauses if c.group is not None}

    def subjectMatches(self, subject: Subject) -> int:
        """
        @return: the clauses whose conditions on the subject alone hold,
            as bits (the first clause the lowest).
        """
        return sum(1 << n for n, c in enumerate(self.clauses) if c.matchesSubject(subject))

    @functools.cached_property
    def entryClauses(self) -> tuple[tuple[int, _Who], ...]:
        """
        The clauses (with their positions) whose conditions relate the
        subject to the entry (L{_Who.looksAtEntry}).
        """
        return tuple((n, c) for n, c in enumerate(self.clauses) if c.looksAtEntry)

    def names(self, suffix: DN) -> bool:
        """
        Whether the rule's target names a DN within a subtree: the test that
        lets a rule apply to a private view (L{ldapd.directory.Directory.addPrivateDatabase}),
        which generic targets (C{*}, a filter, attributes alone, another
        subtree, a regular expression) never reach.

        @param suffix: the normalised root of the subtree.
        """
        return self.dn is not None and self.dn.dn is not None and self.dn.dn.isWithin(suffix)

    def coversEntry(self, entry: Entry) -> bool:
        """
        @param entry: the entry accessed.
        @return: whether the C{<what>} part's scope, DN and filter cover
            it (its attributes aside).
        """
        if self.scope is not None and not entry.ndn.isWithin(self.scope):
            return False
        if self.dn is not None and not self.dn.matches(entry.ndn):
            return False
        return self.filter is None or self.filter.match(entry) is True

    def coversAttribute(self, attribute: AttributeType | str) -> bool:
        """
        @param attribute: an attribute type, L{ENTRY} or L{CHILDREN}.
        @return: whether the C{<what>} part's C{attrs} cover it (any
            attribute, when the rule names none).
        """
        if self.attrs is None:
            return True
        if isinstance(attribute, str):
            return attribute in self.pseudo
        return any(_derives(attribute, at) for at in self.attrs)


def _derives(at: AttributeType | None, ancestor: AttributeType) -> bool:
    while at is not None:
        if at is ancestor:
            return True
        at = at.sup
    return False


def _holds(entry: Entry, at: AttributeType, ndn: DN | None) -> bool:
    if ndn is None:
        return False
    for attr in entry.matching(at):
        for value in attr.values:
            try:
                if entry.schema.normalizeDN(DN.parse(value)) == ndn:
                    return True
            except (InvalidDN, InvalidValue):
                continue
    return False


def _peerMatches(pattern: tuple[str, Any], peer: str) -> bool:
    style, value = pattern
    if style == "regex":
        return value.search(peer) is not None
    if style == "exact":
        return bool(peer == value)
    if style == "path":
        return bool(peer == "PATH=" + value)
    if not peer.startswith("IP="):
        return False
    host, _, port = peer[3:].rpartition(":")
    network, wantedPort = value
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address in network and (wantedPort is None or wantedPort == port)


def evaluate(rules: list[AccessRule], subject: Subject, entry: Entry,
             attribute: AttributeType | str, wanted: Privilege) -> bool:
    """
    Decide one access as slapd does: the first rule whose C{<what>} covers
    the access applies; in it, the first C{by} clause whose C{<who>} matches
    sets the privileges and, with C{stop} (the default), decides; C{continue}
    goes on to the next clause, C{break} to the next rule. A rule whose
    clauses all fail to match ends with an implicit C{by * none stop}, and no
    rule at all grants nothing.

    @param rules: the rules, in order.
    @param subject: who asks.
    @param entry: the entry accessed.
    @param attribute: an attribute type, L{ENTRY} or L{CHILDREN}.
    @param wanted: the privilege needed.
    @return: whether it is granted.
    """
    return Decisions().of(subject).grants(rules, entry).allows(attribute, wanted)


class Decisions:
    """
    L{Grants} made once and kept: what the rules grant a subject on an
    entry depends only on which rules cover the entry and which of their
    C{by} clauses match, and most entries a client reads look alike to the
    rules, so that decisions made for one entry serve the next.

    What is kept is keyed by the rule objects themselves, so that rules
    parsed anew (a reload) are never decided by what was found for others.
    """

    def __init__(self, limit: int = 4096) -> None:
        """
        @param limit: the most L{Grants}, and the most subjects, kept;
            beyond it, all of them are forgotten.
        """
        self.limit = limit
        self.grants: dict[tuple[tuple[AccessRule, ...], int], Grants] = {}
        self._subjects: dict[Subject, SubjectDecisions] = {}

    def of(self, subject: Subject) -> SubjectDecisions:
        """
        @param subject: who asks.
        @return: the decisions for C{subject}, which keep what the rules'
            clauses on the subject alone found.
        """
        decisions = self._subjects.get(subject)
        if decisions is None:
            if len(self._subjects) >= self.limit:
                self._subjects.clear()
            decisions = self._subjects[subject] = SubjectDecisions(self, subject)
        return decisions

    def clear(self) -> None:
        """
        Forget everything kept: for rules no longer in force.
        """
        self.grants.clear()
        self._subjects.clear()


class SubjectDecisions:
    """
    The L{Decisions} for one subject.
    """

    def __init__(self, decisions: Decisions, subject: Subject) -> None:
        """
        @param decisions: where the L{Grants} are kept.
        @param subject: who asks.
        """
        self._decisions = decisions
        self.subject = subject
        self._matches: dict[AccessRule, int] = {}

    def grants(self, rules: Iterable[AccessRule], entry: Entry) -> Grants:
        """
        @param rules: the rules in force for the entry, in order.
        @param entry: the entry accessed.
        @return: what the rules grant the subject on C{entry}.
        """
        subject = self.subject
        matches = self._matches
        covering = []
        matched = 0
        shift = 0
        for rule in rules:
            if not rule.coversEntry(entry):
                continue
            covering.append(rule)
            bits = matches.get(rule)
            if bits is None:
                bits = matches[rule] = rule.subjectMatches(subject)
            for n, clause in rule.entryClauses:
                if bits & (1 << n) and not clause.matchesEntry(subject, entry):
                    bits &= ~(1 << n)
            matched |= bits << shift
            shift += len(rule.clauses)
        key = (tuple(covering), matched)
        kept = self._decisions.grants
        grants = kept.get(key)
        if grants is None:
            if len(kept) >= self._decisions.limit:
                kept.clear()
            grants = kept[key] = Grants(*key)
        return grants


class Grants:
    """
    The privileges the rules covering an entry grant on each of its
    attributes, for the clauses that match (L{Decisions}): each
    attribute's decided once, and kept, for every entry and subject the
    same rules cover with the same clauses matching (a search result's
    every attribute is checked).

    @ivar unreadable: for the users of these grants, by entry layout, the
        attribute types an entry of that layout may not be read: what a
        search result is stripped of.
    """

    def __init__(self, rules: tuple[AccessRule, ...], matched: int) -> None:
        """
        @param rules: the rules covering the entries, in order.
        @param matched: which of their clauses match, as bits (the
            first clause of the first rule the lowest).
        """
        self._rules = rules
        self._matched = matched
        self._masks: dict[AttributeType | str, Privilege] = {}
        self.unreadable: dict[Any, frozenset[AttributeType]] = {}

    def allows(self, attribute: AttributeType | str, wanted: Privilege) -> bool:
        """
        @param attribute: an attribute type, L{ENTRY} or L{CHILDREN}.
        @param wanted: the privilege needed.
        @return: whether it is granted, as L{evaluate} decides.
        """
        mask = self._masks.get(attribute)
        if mask is None:
            mask = self._masks[attribute] = self._mask(attribute)
        return wanted in mask

    def _mask(self, attribute: AttributeType | str) -> Privilege:
        """
        @return: the privileges on C{attribute}: the first covering rule
            decides, as L{evaluate} says.
        """
        mask = Privilege.NONE
        bit = 1
        for rule in self._rules:
            first = bit
            bit <<= len(rule.clauses)
            if not rule.coversAttribute(attribute):
                continue
            control = "stop"
            for n, clause in enumerate(rule.clauses):
                if not self._matched & (first << n):
                    continue
                mask = clause.apply(mask)
                control = clause.control
                if control != "continue":
                    break
            if control != "break":
                break
        return mask


def _split(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""
    try:
        return list(lexer)
    except ValueError as e:
        raise AccessRuleError(f"{e}") from None


def _keyword(token: str) -> tuple[str, str, str | None]:
    """
    Split C{name.style=value} into its parts (value C{None} without C{=}).
    """
    head, eq, value = token.partition("=")
    name, _, style = head.partition(".")
    return name.lower(), style.lower(), value if eq else None


def _dnPattern(style: str, value: str, schema: Schema, token: str) -> _DNPattern:
    kind = _DN_STYLES.get(style)
    if kind is None:
        raise AccessRuleError(f"unknown DN style in {token!r}")
    if kind == "regex":
        try:
            return _DNPattern(kind, regex=compilePattern(value, ignoreCase=True))
        except InvalidPattern as e:
            raise AccessRuleError(f"bad regular expression in {token!r}: {e}") from None
    try:
        return _DNPattern(kind, dn=schema.normalizeDN(DN.parse(value)))
    except InvalidDN as e:
        raise AccessRuleError(f"bad DN in {token!r}: {e}") from None


def _filter(value: str, schema: Schema, token: str) -> Filter:
    try:
        return compileFilter(parseFilter(value), schema)
    except (InvalidFilter, ldaperrors.LDAPException) as e:
        raise AccessRuleError(f"bad filter in {token!r}: {e}") from None


def _access(token: str) -> tuple[str, Privilege] | None:
    lowered = token.lower()
    if lowered in _LEVELS:
        return "=", _LEVELS[lowered]
    if lowered[:1] in ("=", "+", "-") and len(lowered) > 1:
        privileges = Privilege.NONE
        for letter in lowered[1:]:
            if letter not in _LETTERS:
                return None
            privileges |= _LETTERS[letter]
        return lowered[0], privileges
    return None


def parseRule(text: str, schema: Schema, scope: DN | None = None) -> AccessRule:
    """
    Parse one rule.

    @param text: C{[access] to <what> by <who> [<access>] [<control>] ...}.
    @param schema: the schema, for DNs, attribute types and filters.
    @param scope: for rules stored in the directory, the normalised DN of
        their entry: they apply only within its subtree.
    @return: the rule.
    @raise AccessRuleError: saying what is wrong.
    """
    tokens = _split(text)
    if tokens and tokens[0].lower() == "access":
        tokens = tokens[1:]
    if not tokens or tokens[0].lower() != "to":
        raise AccessRuleError("a rule starts with 'to'")
    rule = AccessRule(text=text, scope=scope)
    i = 1
    sawWhat = False
    while i < len(tokens) and tokens[i].lower() != "by":
        token = tokens[i]
        i += 1
        sawWhat = True
        if token == "*":
            continue
        name, style, value = _keyword(token)
        if value is None:
            raise AccessRuleError(f"unknown <what> {token!r}")
        if name == "dn":
            rule.dn = _dnPattern(style, value, schema, token)
        elif name == "filter":
            rule.filter = _filter(value, schema, token)
        elif name in ("attrs", "attr") and not style:
            types = set()
            pseudo = set()
            for item in value.split(","):
                item = item.strip()
                if item.lower() in (ENTRY, CHILDREN):
                    pseudo.add(item.lower())
                    continue
                at = schema.attributeType(item)
                if at is None:
                    raise AccessRuleError(f"undefined attribute type {item!r} in {token!r}")
                types.add(at)
            rule.attrs = frozenset(types)
            rule.pseudo = frozenset(pseudo)
        else:
            raise AccessRuleError(f"unknown <what> {token!r}")
    if not sawWhat:
        raise AccessRuleError("'to' needs a <what>")
    if i >= len(tokens):
        raise AccessRuleError("a rule needs at least one 'by' clause")
    while i < len(tokens):
        if tokens[i].lower() != "by":
            raise AccessRuleError(f"expected 'by', found {tokens[i]!r}")
        i += 1
        clause = _Who()
        sawWho = False
        while i < len(tokens) and tokens[i].lower() != "by":
            token = tokens[i]
            lowered = token.lower()
            access = _access(token)
            if lowered in _CONTROLS:
                if not sawWho:
                    raise AccessRuleError(f"{token!r} before any <who>")
                clause.control = lowered
                i += 1
                if i < len(tokens) and tokens[i].lower() != "by":
                    raise AccessRuleError(f"unexpected {tokens[i]!r} after {token!r}")
                break
            if access is not None:
                if not sawWho:
                    raise AccessRuleError(f"access {token!r} before any <who>")
                clause.operator, clause.privileges = access
                i += 1
                continue
            _parseWho(clause, token, schema)
            sawWho = True
            i += 1
        if not sawWho:
            raise AccessRuleError("'by' needs a <who>")
        rule.clauses.append(clause)
    return rule


def _parseWho(clause: _Who, token: str, schema: Schema) -> None:
    lowered = token.lower()
    if lowered in ("*", "anonymous", "users", "self"):
        clause.kind.append(lowered)
        return
    name, style, value = _keyword(token)
    if value is None:
        raise AccessRuleError(f"unknown <who> {token!r}")
    if name == "dn":
        clause.dn = _dnPattern(style, value, schema, token)
    elif name == "dnattr":
        at = schema.attributeType(value)
        if at is None:
            raise AccessRuleError(f"undefined attribute type in {token!r}")
        clause.dnattr = at
    elif name == "group":
        if style not in ("", "exact", "base"):
            raise AccessRuleError(f"unsupported group style in {token!r}")
        try:
            clause.group = schema.normalizeDN(DN.parse(value))
        except InvalidDN as e:
            raise AccessRuleError(f"bad DN in {token!r}: {e}") from None
    elif name == "peername":
        clause.peer = _peerPattern(style, value, token)
    else:
        raise AccessRuleError(f"unknown <who> {token!r}")


def _peerPattern(style: str, value: str, token: str) -> tuple[str, Any]:
    if style in ("", "exact"):
        return "exact", value
    if style == "path":
        return "path", value
    if style == "regex":
        try:
            return "regex", compilePattern(value)
        except InvalidPattern as e:
            raise AccessRuleError(f"bad regular expression in {token!r}: {e}") from None
    if style in ("ip", "ipv6"):
        address, _, port = value.partition(":") if style == "ip" else (value, "", "")
        if style == "ipv6" and value.startswith("["):
            address, _, rest = value[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        address, _, mask = address.partition("%")
        try:
            if mask:
                network = ipaddress.ip_network(f"{address}/{mask}", strict=False)
            else:
                network = ipaddress.ip_network(address)
        except ValueError as e:
            raise AccessRuleError(f"bad address in {token!r}: {e}") from None
        return "ip", (network, port or None)
    raise AccessRuleError(f"unknown peername style in {token!r}")
