"""
Bind throttling: failed binds counted per client address and per bind DN,
and once either passes its limit, binds refused with invalidCredentials
before any password is looked at.

It is the server's own brake, apart from the password policy: it also
holds for a root DN, whose password is in the configuration, and for
accounts without a policy, and it costs an attacker the same answer as a
wrong password without costing the server a hash. Each address and each DN
has a bucket that a failure fills by one and that empties at the limit per
minute: a bucket holding the limit refuses, so that no more than the limit
of passwords a minute (after a first burst of as many) is ever tried from
one address or against one DN. The buckets live in two tables of at most
L{BindThrottleSettings.tracked} keys each, the least recently failed
forgotten first, so that a client rotating addresses or DNs cannot grow
them.

Time is the reactor's clock, so that tests drive it with
C{twisted.internet.task.Clock}.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime

from ldapd.dn import DN

__all__ = ["BindThrottle", "BindThrottleSettings", "addressKey"]

#: The period the limits are counted over, in seconds.
_MINUTE = 60.0

#: The prefix length IPv6 clients are counted by: one host's /64 holds more
#: addresses than any table, and is usually one site's.
_IPV6_PREFIX = 64


@dataclass(frozen=True)
class BindThrottleSettings:
    """
    The limits of L{BindThrottle} (C{[server] bind_throttle}).

    @ivar perAddress: the failed binds a minute one client address may
        make before its binds are refused; 0: addresses are not counted.
    @ivar perDN: the failed binds a minute against one DN before binds as
        it are refused; 0: DNs are not counted.
    @ivar tracked: the most addresses, and the most DNs, remembered.
    """

    perAddress: int = 0
    perDN: int = 0
    tracked: int = 10_000


def addressKey(address: str | None) -> str | None:
    """
    The key one client address is counted under: an IPv4 address itself, an
    IPv6 address by its /64 (an IPv4-mapped one as the IPv4 address).

    @param address: the client's IP address, or C{None} (a C{unix:} socket).
    @return: the key, or C{None} when the address is not counted.
    """
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_PREFIX), strict=False))
    return str(ip)


class _Buckets:
    """
    Leaky buckets by key: each failure adds one, each bucket empties at
    C{limit} a minute; a bucket with no room for one more failure is full. At most
    C{tracked} buckets are kept, the least recently filled dropped first.
    """

    def __init__(self, limit: int, tracked: int) -> None:
        self._limit = limit
        self._rate = limit / _MINUTE
        self._tracked = tracked
        self._levels: OrderedDict[Any, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._levels)

    def _level(self, key: Any, now: float) -> float:
        found = self._levels.get(key)
        if found is None:
            return 0.0
        level, when = found
        return max(0.0, level - (now - when) * self._rate)

    def full(self, key: Any, now: float) -> bool:
        level = self._level(key, now)
        if level == 0.0:
            self._levels.pop(key, None)
        # Full while one more failure would take it over the limit.
        return level > self._limit - 1

    def fill(self, key: Any, now: float) -> None:
        level = min(self._level(key, now) + 1, float(self._limit))
        self._levels[key] = (level, now)
        self._levels.move_to_end(key)
        if len(self._levels) > self._tracked:
            self._levels.popitem(last=False)

    def forget(self, key: Any) -> None:
        self._levels.pop(key, None)


class BindThrottle:
    """
    Counts failed binds and says which binds to refuse unchecked.
    """

    def __init__(self, settings: BindThrottleSettings, clock: IReactorTime) -> None:
        """
        @param settings: the limits.
        @param clock: the reactor's clock.
        """
        self.settings = settings
        self._clock = clock
        self._addresses = _Buckets(settings.perAddress, settings.tracked) if settings.perAddress else None
        self._dns = _Buckets(settings.perDN, settings.tracked) if settings.perDN else None

    @property
    def tracked(self) -> int:
        """
        How many addresses and DNs are remembered now.
        """
        return sum(len(t) for t in (self._addresses, self._dns) if t is not None)

    def refusal(self, address: str | None, ndn: DN) -> str | None:
        """
        Say whether a bind is to be refused without checking its password.

        @param address: the client's IP address (C{None}: a C{unix:} socket,
            whose binds are counted by DN only).
        @param ndn: the normalised bind DN.
        @return: why it is refused (for the log), or C{None} to check it.
        """
        now = self._clock.seconds()
        key = addressKey(address)
        if self._addresses is not None and key is not None and self._addresses.full(key, now):
            return (f"{self.settings.perAddress} failed binds a minute from {key}")
        if self._dns is not None and self._dns.full(str(ndn), now):
            return f"{self.settings.perDN} failed binds a minute as this DN"
        return None

    def failed(self, address: str | None, ndn: DN) -> None:
        """
        Count a bind that failed with invalidCredentials.
        """
        now = self._clock.seconds()
        key = addressKey(address)
        if self._addresses is not None and key is not None:
            self._addresses.fill(key, now)
        if self._dns is not None:
            # Kept as text: a tenth of the memory of the DN object.
            self._dns.fill(str(ndn), now)

    def succeeded(self, ndn: DN) -> None:
        """
        Forget the failures against a DN once its password was given: the
        owner's typos do not hold against the owner. An address's failures
        stay, so that one account an attacker knows does not reset its count.
        """
        if self._dns is not None:
            self._dns.forget(str(ndn))
