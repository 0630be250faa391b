"""
Persistent search (draft-ietf-ldapext-psearch-03): in memory with a
L{task.Clock} (change types, changesOnly, Entry Change Notifications, scope,
filter, attributes, access control, bounded buffering), then over the wire
with ldap3's C{persistent_search} and python-ldap.
"""

from __future__ import annotations

import queue
import time
from typing import Any

import ldap
import ldap3
from ldap.controls import LDAPControl
from ldap.controls.psearch import EntryChangeNotificationControl, PersistentSearchControl
from twisted.trial import unittest

from ldapd.syncrepl import psearch
from ldapd.syncrepl.codec import (
    ENTRY_CHANGE_NOTIFICATION,
    PERSISTENT_SEARCH,
    PS_ADD,
    PS_DELETE,
    PS_MODDN,
    PS_MODIFY,
    EntryChangeNotification,
    PersistentSearch,
    decodeEntryChangeNotification,
)
from ldapd.testing import ServerTestsMixin
from test_syncconsumer import BASE, PASSWORD, ROOT_DN, ldapmodify, person
from test_syncprovider import ALICE, PEOPLE, ProviderTestsBase, Sent, _HideBob

ALL = PS_ADD | PS_DELETE | PS_MODIFY | PS_MODDN


class PersistentSearchTestsMixin:
    """
    Persistent searches in memory, with the changelog plugin or without.
    """

    def psearch(
        self, changeTypes: int = ALL, changesOnly: bool = True, returnECs: bool = True, **kw: Any
    ) -> tuple[list[Sent], Any, Any]:
        control = PersistentSearch(changeTypes, changesOnly, returnECs).encode()
        sent, d, op = self.searchWith([(PERSISTENT_SEARCH, True, control)], **kw)
        self.assertNoResult(d)
        return sent, d, op

    def notification(self, message: Sent) -> EntryChangeNotification:
        return decodeEntryChangeNotification(message.controls[ENTRY_CHANGE_NOTIFICATION])

    def lastNumber(self) -> int:
        return self.successResultOf(self.backend.changeBounds())[1].number

    def test_currentThenChanges(self) -> None:
        """
        Without changesOnly the entries matching now come first, without
        notifications; then each change, with one.
        """
        sent, d, op = self.psearch(changesOnly=False, base=PEOPLE)
        self.assertEqual(len(sent), 9)
        self.assertEqual([s.controls for s in sent], [{}] * 9)
        self.modify(ALICE, "sn", b"Changed")
        self.assertEqual(len(sent), 10)
        self.assertEqual(sent[-1].dn, ALICE)
        self.assertEqual(sent[-1].attributes["sn"], [b"Changed"])
        self.assertEqual(self.notification(sent[-1]).changeType, PS_MODIFY)
        op.abandon()
        self.successResultOf(d)
        self.assertEqual([s.kind for s in sent], ["entry"] * 10)

    def test_changeTypes(self) -> None:
        """
        Only the change types asked for are sent; a deleted entry is sent as
        it was; a rename carries the previous DN.
        """
        sent, d, op = self.psearch(PS_DELETE | PS_MODDN)
        self.modify(ALICE, "sn", b"Ignored")
        self.add("ignored")
        self.assertEqual(sent, [])
        self.delete(f"uid=bob,{PEOPLE}")
        self.assertEqual((sent[-1].dn, sent[-1].attributes["uid"]), (f"uid=bob,{PEOPLE}", [b"bob"]))
        self.assertEqual(self.notification(sent[-1]).changeType, PS_DELETE)
        self.rename(ALICE, "uid=alicia")
        self.assertEqual(sent[-1].dn, f"uid=alicia,{PEOPLE}")
        notification = self.notification(sent[-1])
        self.assertEqual(
            (notification.changeType, notification.previousDN), (PS_MODDN, ALICE.encode())
        )
        op.abandon()

    def test_scopeFilterAttributes(self) -> None:
        """
        Changes to entries out of the search's scope or not matching its
        filter are not sent; the attributes sent are those asked for; no
        notification control unless returnECs.
        """
        sent, d, op = self.psearch(
            returnECs=False, base=PEOPLE, scope=1, filterText="(sn=Changed)", attributes=(b"cn",)
        )
        self.modify(f"uid=carol,{PEOPLE}", "sn", b"Other")
        self.modify(f"ou=groups,{BASE}", "description", b"Changed")
        self.assertEqual(sent, [])
        self.modify(ALICE, "sn", b"Changed")
        self.assertEqual(
            [(s.dn, s.attributes, s.controls) for s in sent],
            [(ALICE, {"cn": [b"Alice Anderson"]}, {})],
        )
        op.abandon()

    def test_limitsEndWithCurrent(self) -> None:
        """
        The time limit applies to the search of what matches now; the
        changes go on past it.
        """
        self.connection.identity = type(self.connection.identity)()
        sent, d, op = self.psearch(base=ALICE, scope=0)
        self.clock.advance(3600)
        self.modify(ALICE, "sn", b"Later")
        self.assertEqual(sent[-1].attributes["sn"], [b"Later"])
        self.assertNoResult(d)
        op.abandon()

    def test_behind(self) -> None:
        """
        A client that does not read while more than MAX_QUEUED changes pile
        up is ended with adminLimitExceeded; what it did not read is dropped.
        """
        self.patch(psearch, "MAX_QUEUED", 3)
        sent, d, op = self.psearch()
        self.connection.pause()
        for n in range(5):
            self.modify(ALICE, "sn", b"%d" % n)
        self.assertEqual(sent[-1].resultCode, 11)
        self.successResultOf(d)

    def test_malformed(self) -> None:
        """
        A malformed Persistent Search control is a protocolError.
        """
        sent, d, _ = self.searchWith([(PERSISTENT_SEARCH, True, b"\x30\x03\x02\x01\x00")])
        self.successResultOf(d)
        self.assertEqual(sent[-1].resultCode, 2)


class WithChangelogTests(PersistentSearchTestsMixin, ProviderTestsBase):
    """
    With the changelog plugin, notifications carry the change number.
    """

    def test_changeNumber(self) -> None:
        """
        Each notification names the change's number in the changelog.
        """
        sent, d, op = self.psearch()
        self.add("numbered")
        self.assertEqual(
            self.notification(sent[-1]), EntryChangeNotification(PS_ADD, None, self.lastNumber())
        )
        self.modify(f"uid=numbered,{PEOPLE}", "sn", b"Again")
        self.assertEqual(self.notification(sent[-1]).changeNumber, self.lastNumber())
        op.abandon()


class WithoutChangelogTests(PersistentSearchTestsMixin, ProviderTestsBase):
    """
    Persistent search needs no changelog; its notifications then have no
    change number.
    """

    withChangelog = False

    def test_noChangeNumber(self) -> None:
        """
        Notifications have no change number.
        """
        sent, d, op = self.psearch()
        self.add("unnumbered")
        self.assertEqual(self.notification(sent[-1]), EntryChangeNotification(PS_ADD))
        op.abandon()


class WithheldTests(ProviderTestsBase):
    """
    Entries the plugins withhold (access control) are not sent.
    """

    withChangelog = False
    extraPlugins = (_HideBob(),)

    def test_withheld(self) -> None:
        """
        A change to a withheld entry is not sent.
        """
        control = PersistentSearch(ALL, True, True).encode()
        sent, d, op = self.searchWith([(PERSISTENT_SEARCH, True, control)])
        self.modify(f"uid=bob,{PEOPLE}", "sn", b"Secret")
        self.assertEqual(sent, [])
        self.modify(ALICE, "sn", b"Public")
        self.assertEqual([s.dn for s in sent], [ALICE])
        op.abandon()


#: A memory database with the example organisation, no changelog plugin.
MEMORY_CONFIG = f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{BASE}"
backend = "memory"
root_dn = "{ROOT_DN}"
root_password = "{PASSWORD}"
seed_ldif = "{{example_ldif}}"
"""


class WireTests(ServerTestsMixin, unittest.SynchronousTestCase):
    """
    Real clients' persistent searches against the real server.
    """

    serverConfig = MEMORY_CONFIG

    def write(self, ldif: str) -> None:
        done = ldapmodify(self.server.url, ldif)
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_ldap3(self) -> None:
        """
        ldap3's persistent_search hears of adds, modifies and deletes, with
        the change types its notifications name.
        """
        events: queue.Queue[dict[str, Any]] = queue.Queue()
        connection = ldap3.Connection(
            ldap3.Server(self.server.url),
            ROOT_DN,
            PASSWORD,
            client_strategy=ldap3.ASYNC_STREAM,
            auto_bind=True,
        )
        search = connection.extend.standard.persistent_search(
            PEOPLE,
            "(objectClass=inetOrgPerson)",
            attributes=["uid", "sn"],
            streaming=False,
            callback=events.put,
        )
        self.addCleanup(search.stop)
        time.sleep(0.5)
        self.write(
            person("ps3")
            + f"dn: {ALICE}\nchangetype: modify\nreplace: sn\nsn: PS\n\n"
            + f"dn: uid=ps3,{PEOPLE}\nchangetype: delete\n\n"
        )
        seen = [events.get(timeout=10) for _ in range(3)]
        self.assertEqual(
            [(e["dn"], e["changeType"]) for e in seen],
            [(f"uid=ps3,{PEOPLE}", "add"), (ALICE, "modify"), (f"uid=ps3,{PEOPLE}", "delete")],
        )
        self.assertEqual(seen[1]["attributes"]["sn"], ["PS"])

    def test_malformed(self) -> None:
        """
        A malformed Persistent Search control is a protocolError, and the
        connection goes on serving.
        """
        connection = ldap.initialize(self.server.url)
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        self.addCleanup(connection.unbind_s)
        control = LDAPControl(PERSISTENT_SEARCH, True, b"\x30\x03\x02\x01\x01")
        self.assertRaises(
            ldap.PROTOCOL_ERROR,
            connection.search_ext_s,
            BASE,
            ldap.SCOPE_BASE,
            serverctrls=[control],
        )
        self.assertEqual(len(connection.search_s(BASE, ldap.SCOPE_BASE)), 1)

    def test_pythonLDAP(self) -> None:
        """
        python-ldap's PersistentSearchControl gets the current entries, then
        a rename with its Entry Change Notification.
        """
        connection = ldap.initialize(self.server.url)
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        self.addCleanup(connection.unbind_s)
        control = PersistentSearchControl(
            True, changeTypes=["modDN"], changesOnly=False, returnECs=True
        )
        expected = len(connection.search_s(PEOPLE, ldap.SCOPE_ONELEVEL))
        msgid = connection.search_ext(PEOPLE, ldap.SCOPE_ONELEVEL, serverctrls=[control])
        current: list[str] = []
        while len(current) < expected:
            _, data, _, _ = connection.result3(msgid, all=0, timeout=10)
            current.extend(dn for dn, _ in data)
        self.write(
            person("ps4") + f"dn: uid=ps4,{PEOPLE}\nchangetype: modrdn\n"
            "newrdn: uid=ps5\ndeleteoldrdn: 1\n\n"
        )
        _, data, _, _, _, _ = connection.result4(
            msgid,
            all=0,
            timeout=10,
            add_ctrls=1,
            resp_ctrl_classes={
                EntryChangeNotificationControl.controlType: EntryChangeNotificationControl
            },
        )
        [(dn, _, controls)] = data
        self.assertEqual(dn, f"uid=ps5,{PEOPLE}")
        self.assertEqual(
            (controls[0].changeType, controls[0].previousDN), (PS_MODDN, f"uid=ps4,{PEOPLE}")
        )
        connection.abandon(msgid)
