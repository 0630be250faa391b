"""
Limits against abuse: per connection (outstanding requests, idle time),
per client address (connections), per identity (search size and time, as
slapd's C{limits} directive), and per filter (components).

The global size and time limits are L{Limits}; the L{IdentityLimit} rules
refine them per identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ldaptor.protocols.ldap import ldaperrors

from ldapd.dn import DN, InvalidDN
from ldapd.operation import Identity
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.requests import And, Filter, Not, Or
from ldapd.results import NoSuchObject

if TYPE_CHECKING:
    from ldapd.entry import Entry
    from ldapd.schema import Schema

__all__ = [
    "DEFAULT_MAX_FILTER_COMPONENTS",
    "DEFAULT_MAX_SORTED_ENTRIES",
    "ConnectionLimits",
    "IdentityLimit",
    "IdleTimer",
    "Limits",
    "checkFilterSize",
    "identityLimitFromConfig",
    "groupMembers",
    "isGroupMember",
    "limitsFor",
    "tooManyComponents",
]

#: The most components (assertions, and, or, not) a search filter may have.
DEFAULT_MAX_FILTER_COMPONENTS = 1000

#: The most entries one server-side sort holds.
DEFAULT_MAX_SORTED_ENTRIES = 100_000


@dataclass(frozen=True)
class ConnectionLimits:
    """
    What one client may hold of the server.

    @ivar maxOutstanding: requests a connection may have queued or running
        before the server stops reading from it.
    @ivar maxConnectionsPerAddress: connections one client address may have
        open at once (0: no limit).
    @ivar idleTimeout: seconds a connection with no request outstanding may
        stay silent before it is closed (0: forever), as slapd's C{idletimeout}.
    """

    maxOutstanding: int = 128
    maxConnectionsPerAddress: int = 0
    idleTimeout: float = 0


class IdleTimer:
    """
    Calls C{onIdle} when C{timeout} seconds pass without a L{reset}.
    """

    def __init__(self, clock: Any, timeout: float, onIdle: Callable[[], None]) -> None:
        """
        @param clock: an C{IReactorTime}.
        @param timeout: the seconds; 0 disables the timer.
        @param onIdle: what to call.
        """
        self.clock = clock
        self.timeout = timeout
        self.onIdle = onIdle
        self._call: Any = None

    def reset(self) -> None:
        """
        Start counting again.
        """
        if not self.timeout:
            return
        if self._call is not None and self._call.active():
            self._call.reset(self.timeout)
        else:
            self._call = self.clock.callLater(self.timeout, self.onIdle)

    def cancel(self) -> None:
        """
        Stop the timer for good.
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


def checkFilterSize(f: Filter, maxComponents: int = DEFAULT_MAX_FILTER_COMPONENTS) -> None:
    """
    Refuse a filter with too many components before any work is done on it.

    @param f: a request's filter.
    @param maxComponents: the most components allowed (0: no limit).
    @raise ldaperrors.LDAPAdminLimitExceeded: if it has more (slapd answers
        adminLimitExceeded, 11, to searches beyond its configured limits).
    """
    if not maxComponents:
        return
    count = 0
    stack: list[Filter] = [f]
    while stack:
        node = stack.pop()
        count += 1
        if count > maxComponents:
            raise tooManyComponents(maxComponents)
        if isinstance(node, (And, Or)):
            stack.extend(node.parts)
        elif isinstance(node, Not):
            stack.append(node.part)


def tooManyComponents(maxComponents: int) -> ldaperrors.LDAPAdminLimitExceeded:
    """
    @param maxComponents: the most components a filter may have.
    @return: the error a filter with more gets, whether it is found when
        the filter is decoded (L{ldapd._framing.Framer}) or after
        (L{checkFilterSize}).
    """
    return ldaperrors.LDAPAdminLimitExceeded(f"filter has more than {maxComponents} components")


@dataclass(frozen=True)
class IdentityLimit:
    """
    Size and time limits for the identities one C{who} selects (the first
    that selects an identity applies, as in slapd).

    @ivar who: C{*}, C{anonymous}, C{users}, C{dn.base}, C{dn.one},
        C{dn.subtree}, C{dn.children} or C{group}.
    @ivar dn: the normalised DN of a C{dn.*} or C{group} selector.
    @ivar sizeLimit: entries per search (0: none; C{None}: the global limit).
    @ivar timeLimit: seconds per search (0: none; C{None}: the global limit).
    """

    who: str
    dn: DN | None = None
    sizeLimit: int | None = None
    timeLimit: int | None = None


_STYLES = {"dn": "dn.base", "dn.exact": "dn.base", "dn.base": "dn.base", "dn.one": "dn.one",
           "dn.subtree": "dn.subtree", "dn.children": "dn.children", "group": "group"}


@dataclass(frozen=True)
class Limits:
    """
    Limits that apply to every identity but a root DN.

    @ivar sizeLimit: the most entries one search returns (0: no limit).
    @ivar timeLimit: the most seconds one search may take (0: no limit).
    @ivar identities: size and time limits for some identities, which
        replace the two above for them (L{ldapd.limits.IdentityLimit}).
    @ivar maxFilterComponents: the most components a search filter may
        have (0: no limit).
    @ivar maxSortedEntries: the most entries a server-side sort (or VLV)
        holds to order them, for any identity (0: no limit); a sort of more
        is adminLimitExceeded (11).
    """

    sizeLimit: int = 500
    timeLimit: int = 3600
    identities: tuple[IdentityLimit, ...] = ()
    maxFilterComponents: int = DEFAULT_MAX_FILTER_COMPONENTS
    maxSortedEntries: int = DEFAULT_MAX_SORTED_ENTRIES


def identityLimitFromConfig(table: dict[str, Any], context: ConfigContext) -> IdentityLimit:
    """
    Read one entry of C{[server] limits}: C{{ who = "users", size = 1000,
    time = 60 }}, where C{who} is C{*}, C{anonymous}, C{users},
    C{dn.base=<dn>} (or C{dn.one}, C{dn.subtree}, C{dn.children}) or
    C{group=<dn>}, and C{size} and C{time} are numbers (0: unlimited) or
    C{"unlimited"}.

    @param table: the entry.
    @param context: where it is (C{server.limits[0]}), with the schema for DNs.
    @return: the limit.
    @raise ConfigError: naming the key that is wrong.
    """
    config = ConfigTable(table, context, {"who", "size", "time"})
    who = config.required("who", str)
    limits = []
    for key in ("size", "time"):
        value = 0 if table.get(key) == "unlimited" else config.integer(
            key, None, minimum=0, expected='a non-negative integer or "unlimited"')
        limits.append(value)
    if who in ("*", "anonymous", "users"):
        return IdentityLimit(who, None, *limits)
    style, eq, text = who.partition("=")
    if not eq or style.lower() not in _STYLES:
        raise config.error("who", f"unknown selector {who!r}")
    try:
        dn = context.schema.normalizeDN(DN.parse(text.strip('"')))
    except InvalidDN as e:
        raise config.error("who", f"not a valid DN: {e}") from None
    return IdentityLimit(_STYLES[style.lower()], dn, *limits)


async def isGroupMember(directory: Any, group: DN, ndn: DN) -> bool:
    """
    Whether an identity is a member of a static group: named by the
    C{member} (groupOfNames) or C{uniqueMember} (groupOfUniqueNames, with or
    without its C{#'...'B} suffix) of the group's entry.

    @param directory: the directory holding the group.
    @param group: the group's normalised DN.
    @param ndn: the identity's normalised DN.
    @return: whether it is a member; C{False} when the group does not exist.
    """
    try:
        entry = await directory.get(directory.internalOperation(), group)
    except NoSuchObject:
        return False
    return any(member == ndn for member in groupMembers(directory.schema, entry))


def groupMembers(schema: Schema, entry: Entry) -> Iterator[DN]:
    """
    The members a static group's entry names, as L{isGroupMember} reads
    them.

    @param schema: the directory's schema.
    @param entry: the group's entry.
    @return: the members' normalised DNs; values that are not DNs are
        left out.
    """
    for name in ("member", "uniqueMember"):
        at = schema.attributeType(name)
        if at is None:
            continue
        for attr in entry.matching(at):
            for value in attr.values:
                try:
                    yield schema.normalizeDN(DN.parse(value.split(b"#")[0]))
                except InvalidDN:
                    continue


async def _selects(rule: IdentityLimit, directory: Any, identity: Identity) -> bool:
    ndn = identity.ndn
    if rule.who == "*":
        return True
    if rule.who == "anonymous":
        return ndn is None
    if ndn is None:
        return False
    if rule.who == "users":
        return True
    assert rule.dn is not None
    if rule.who == "group":
        return await isGroupMember(directory, rule.dn, ndn)
    return ndn.inScope(rule.dn, rule.who.removeprefix("dn."))


async def limitsFor(directory: Any, identity: Identity, rules: tuple[IdentityLimit, ...],
                    sizeLimit: int, timeLimit: int) -> tuple[int, int]:
    """
    The size and time limits for an identity: those of the first rule that
    selects it, the global ones where it sets none.

    @param directory: the directory, to read groups.
    @param identity: who asks.
    @param rules: the rules, in order.
    @param sizeLimit: the global size limit.
    @param timeLimit: the global time limit.
    @return: C{(sizeLimit, timeLimit)}, 0 meaning none.
    """
    for rule in rules:
        if await _selects(rule, directory, identity):
            return (
                sizeLimit if rule.sizeLimit is None else rule.sizeLimit,
                timeLimit if rule.timeLimit is None else rule.timeLimit,
            )
    return sizeLimit, timeLimit
