"""
Integration tests: substring searches, as address books send them, from
python-ldap to the real C{twist ldapd} process on the memory backend (its
trigram index on C{cn}), checked against the generated data matched in
Python, before and after writes that change the indexed values.
"""

from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path

import ldap
import pytest
from twisted.trial import unittest

from ldapd.testing import ServerTestsMixin

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ROOT_DN = f"cn=admin,{BASE}"
PASSWORD = "secret"
#: More entries than a search examines between two turns of the reactor.
PEOPLE_COUNT = 1200


def _name(rng: random.Random) -> str:
    """
    @return: a cn of two or three words of a few letters each, from a small
        alphabet so that pieces recur.
    """
    return " ".join("".join(rng.choice("abcdeo") for _ in range(rng.randint(2, 6)))
                    for _ in range(rng.randint(2, 3)))


def _matches(pattern: str, value: str) -> bool:
    """
    The test's own substrings match of a filter on these values (lower
    case letters, one space between words): pieces in order, case ignored.
    """
    regex = ".*".join(re.escape(piece) for piece in pattern.lower().split("*"))
    return re.fullmatch(regex, value.lower(), re.DOTALL) is not None


class _SubstringServerMixin(ServerTestsMixin):
    """
    A server of L{PEOPLE_COUNT} generated people (C{names}: their cn by
    uid), with a substring index on cn, and a connection to it as the
    root DN.
    """

    names: dict[str, str]

    @classmethod
    def setUpClass(cls) -> None:
        rng = random.Random(1234)
        # The class's own: a test's writes change it with the server's data.
        cls.names = {f"p{n:04d}": _name(rng) for n in range(PEOPLE_COUNT)}
        folder = Path(tempfile.mkdtemp(prefix="ldapd-test-"))
        ldif = folder / "people.ldif"
        parts = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\n"
                 "dc: example\no: Example\n",
                 f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n"]
        for uid, cn in cls.names.items():
            parts.append(f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                         f"cn: {cn.title()}\nsn: {cn.split()[-1]}\n")
        ldif.write_text("\n".join(parts))
        cls.serverConfig = f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{BASE}"
backend = "memory"
indexes = ["objectClass,uid eq", "cn sub"]
root_dn = "{ROOT_DN}"
root_password = "{PASSWORD}"
seed_ldif = "{ldif}"
"""
        super().setUpClass()

    def setUp(self) -> None:
        assert self.server is not None
        self.connection = ldap.initialize(self.server.url, bytes_mode=False)
        self.connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 10)
        self.connection.simple_bind_s(ROOT_DN, PASSWORD)
        self.addCleanup(self.connection.unbind_s)

    def found(self, pattern: str) -> set[str]:
        """
        @return: the uids of the entries C{(cn=<pattern>)} finds.
        """
        result = self.connection.search_ext_s(PEOPLE, ldap.SCOPE_SUBTREE, f"(cn={pattern})",
                                              ["uid"])
        return {attrs["uid"][0].decode() for _, attrs in result}

    def assertSearches(self, patterns: list[str]) -> None:
        for pattern in patterns:
            expected = {uid for uid, cn in self.names.items() if _matches(pattern, cn)}
            self.assertEqual(self.found(pattern), expected, pattern)

    def patterns(self, seed: int) -> list[str]:
        """
        @return: substring patterns, their pieces cut from the names: a
            middle piece, as address books send (in upper case, the names
            being in title case), an initial and a final piece, each of one
            to four characters; and initial, middle and final together.
        """
        rng = random.Random(seed)
        values = sorted(self.names.values())

        def piece(most: int) -> str:
            value = rng.choice(values)
            start = rng.randrange(len(value))
            return value[start : start + rng.randint(1, most)].strip() or "a"

        patterns = []
        for _ in range(6):
            patterns += [f"*{piece(4).upper()}*", f"{piece(4)}*", f"*{piece(4)}",
                         f"{piece(2)}*{piece(3)}*{piece(2)}"]
        return patterns


class MemorySubstringSearchTests(_SubstringServerMixin, unittest.SynchronousTestCase):
    """
    python-ldap's substring searches on cn find exactly the entries whose
    cn matches, for middle, initial and final pieces and their
    combinations.
    """

    def test_searches(self) -> None:
        """
        Every kind of substring filter finds exactly the matching entries.
        """
        self.assertSearches(self.patterns(1) + ["*ab*", "a*", "*o", "*zzz*"])


class MemorySubstringWriteTests(_SubstringServerMixin, unittest.SynchronousTestCase):
    """
    python-ldap's substring searches follow modifies, renames and deletes
    of the values indexed.
    """

    def test_afterWrites(self) -> None:
        """
        After a modify replaces some names, a rename changes another (its
        old RDN value deleted) and a delete removes one, searches find the
        new names and not the old ones.
        """
        uids = sorted(self.names)
        for uid in uids[:20]:
            new = _name(random.Random(uid))
            self.connection.modify_s(f"uid={uid},{PEOPLE}",
                                     [(ldap.MOD_REPLACE, "cn", [new.encode()])])
            self.names[uid] = new
        renamed = self.names.pop(uids[20])
        self.connection.rename_s(f"uid={uids[20]},{PEOPLE}", "uid=renamed", delold=1)
        self.names["renamed"] = renamed
        del self.names[uids[21]]
        self.connection.delete_s(f"uid={uids[21]},{PEOPLE}")
        self.assertSearches(self.patterns(2) + [f"*{renamed[1:4]}*"])
