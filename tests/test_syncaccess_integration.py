"""
Access control on sync and persistent searches of the real C{twist ldapd}
(acl and changelog plugins; issue 15, findings 9 and 10): a change to an
entry the client may not read sends it nothing (no name, no entryUUID), as
slapd's syncprov does; access revoked while a search goes on (a group
membership removed) applies to what that search sends next.
"""

from __future__ import annotations

import time
from typing import Any

import ldap
from ldap.controls.psearch import PersistentSearchControl
from twisted.trial import unittest

from ldapd.testing import ServerTestsMixin, exampleConfig
from test_syncconsumer import BASE, PASSWORD, ROOT_DN, ldapmodify, person
from test_syncprovider import _Consumer

PEOPLE = f"ou=people,{BASE}"
HIDDEN = f"uid=hidden-{{}},{PEOPLE}"
ALICE = f"uid=alice,{PEOPLE}"
SSSD = f"uid=sssd,ou=services,{BASE}"
ADMINS = f"cn=admins,ou=groups,{BASE}"

#: The people named hidden-* are hidden from everyone; the services only the
#: admins group reads.
RULES = f"""
[[plugin]]
name = "changelog"

[[plugin]]
name = "acl"
rules = [
  'to attrs=userPassword by self =wx by anonymous auth by * none',
  'to dn.regex="^uid=hidden-[^,]*,{PEOPLE}$" by * none',
  'to dn.subtree="ou=services,{BASE}" by group="{ADMINS}" read by * none',
  'to * by * read',
]
"""


class _Recorder(_Consumer):
    """
    python-ldap's syncrepl consumer, recording every name and entryUUID it
    is told of.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.names: list[str] = []
        self.uuids: list[str] = []
        self.deleted: list[str] = []

    def syncrepl_entry(self, dn: str, attributes: dict[str, list[bytes]], uuid: str) -> None:
        self.names.append(dn.lower())
        self.uuids.append(uuid)

    def syncrepl_delete(self, uuids: list[str]) -> None:
        self.deleted.extend(uuids)
        self.uuids.extend(uuids)

    def syncrepl_present(self, uuids: list[str] | None, refreshDeletes: bool = False) -> None:
        if uuids:
            self.uuids.extend(uuids)

    def syncrepl_refreshdone(self) -> None:
        self.names.append("refresh done")


class SyncAccessTests(ServerTestsMixin, unittest.SynchronousTestCase):
    """
    The provider with access rules, and python-ldap's consumers.
    """

    serverConfig = exampleConfig() + RULES

    def write(self, ldif: str) -> None:
        done = ldapmodify(self.server.url, ldif)
        self.assertEqual(done.returncode, 0, done.stderr)

    def uuidOf(self, dn: str) -> str:
        root = ldap.initialize(self.server.url)
        root.simple_bind_s(ROOT_DN, PASSWORD)
        try:
            [(_, attributes)] = root.search_s(dn, ldap.SCOPE_BASE, attrlist=["entryUUID"])
        finally:
            root.unbind_s()
        return attributes["entryUUID"][0].decode()

    def consumer(self, who: str = "", password: str = "") -> _Recorder:
        consumer = _Recorder(self.server.url)
        consumer.simple_bind_s(who, password)
        self.addCleanup(consumer.unbind_s)
        return consumer

    def assertNothingOf(self, consumer: _Recorder, dn: str, uuid: str) -> None:
        self.assertNotIn(dn.lower(), consumer.names)
        self.assertNotIn(uuid, consumer.uuids)

    def hidden(self, name: str) -> tuple[str, str]:
        """
        Add a hidden person.

        @return: its name and entryUUID.
        """
        dn = HIDDEN.format(name)
        self.write(person(f"hidden-{name}"))
        return dn, self.uuidOf(dn)

    def test_hiddenChangeRefreshOnly(self) -> None:
        """
        An anonymous refreshOnly consumer with a cookie is told nothing of
        a hidden entry that was changed and renamed: neither its name nor
        its entryUUID. Once it is deleted, its entryUUID alone may come in
        a syncIdSet, as slapd's syncprov sends the deletes it logged.
        """
        dn, uuid = self.hidden("refresh")
        consumer = self.consumer()
        consumer.syncrepl_poll(all=1, msgid=consumer.syncrepl_search(BASE, ldap.SCOPE_SUBTREE))
        self.assertNothingOf(consumer, dn, uuid)
        renamed = HIDDEN.format("refreshed")
        self.write(f"dn: {dn}\nchangetype: modify\nreplace: sn\nsn: Secret\n\n"
                   f"dn: {dn}\nchangetype: modrdn\nnewrdn: uid=hidden-refreshed\n"
                   "deleteoldrdn: 0\n\n" + person("visible9"))
        consumer.names.clear()
        consumer.syncrepl_poll(all=1, msgid=consumer.syncrepl_search(BASE, ldap.SCOPE_SUBTREE))
        self.assertIn(f"uid=visible9,{PEOPLE}", consumer.names)
        self.assertNothingOf(consumer, dn, uuid)
        self.assertNotIn(renamed, consumer.names)
        self.write(f"dn: {renamed}\nchangetype: delete\n\n")
        consumer.syncrepl_poll(all=1, msgid=consumer.syncrepl_search(BASE, ldap.SCOPE_SUBTREE))
        self.assertNotIn(renamed, consumer.names)
        self.assertEqual([u for u in consumer.uuids if u == uuid], consumer.deleted)

    def test_hiddenChangePersist(self) -> None:
        """
        An anonymous refreshAndPersist consumer is told nothing of changes
        to a hidden entry, while it is told of the others.
        """
        dn, uuid = self.hidden("persist")
        consumer = self.consumer()
        msgid = consumer.syncrepl_search(BASE, ldap.SCOPE_SUBTREE, mode="refreshAndPersist")
        consumer.pollUntil(msgid, lambda: "refresh done" in consumer.names)
        self.write(f"dn: {dn}\nchangetype: modify\nreplace: sn\nsn: Secret\n\n"
                   f"dn: {dn}\nchangetype: delete\n\n" + person("marker9"))
        consumer.pollUntil(msgid, lambda: f"uid=marker9,{PEOPLE}" in consumer.names)
        self.assertIn(f"uid=marker9,{PEOPLE}", consumer.names)
        self.assertNothingOf(consumer, dn, uuid)
        consumer.abandon(msgid)

    def test_revokedSync(self) -> None:
        """
        Alice reads the services through the admins group; once she leaves
        it, her refreshAndPersist search is sent nothing of a service that
        changes (told to delete it, when her leaving and the change come
        in one run of changes).
        """
        consumer = self.consumer(ALICE, "alice-secret")
        msgid = consumer.syncrepl_search(BASE, ldap.SCOPE_SUBTREE, mode="refreshAndPersist")
        consumer.pollUntil(msgid, lambda: "refresh done" in consumer.names)
        self.assertIn(SSSD, consumer.names)
        sssd = self.uuidOf(SSSD)
        for sent in (consumer.names, consumer.uuids, consumer.deleted):
            sent.clear()
        self.revoke()
        self.write(
                   f"dn: {SSSD}\nchangetype: modify\nreplace: description\n"
                   "description: after the revocation\n\n" + person("marker10"))
        consumer.pollUntil(msgid, lambda: f"uid=marker10,{PEOPLE}" in consumer.names)
        self.assertNotIn(SSSD, consumer.names)
        self.assertNotIn(sssd, set(consumer.uuids) - set(consumer.deleted))
        consumer.abandon(msgid)

    def test_revokedPersistentSearch(self) -> None:
        """
        The same for a persistent search: after Alice leaves the admins
        group, a changed service is not sent to her.
        """
        connection = ldap.initialize(self.server.url)
        connection.simple_bind_s(ALICE, "alice-secret")
        self.addCleanup(connection.unbind_s)
        control = PersistentSearchControl(criticality=True, changesOnly=True, returnECs=False)
        msgid = connection.search_ext(BASE, ldap.SCOPE_SUBTREE, serverctrls=[control])
        self.write(f"dn: {SSSD}\nchangetype: modify\nreplace: description\n"
                   "description: before the revocation\n\n")
        self.assertEqual(self.notified(connection, msgid, SSSD), [SSSD])
        self.revoke()
        self.write(
                   f"dn: {SSSD}\nchangetype: modify\nreplace: description\n"
                   "description: after the revocation\n\n"
                   f"dn: {PEOPLE}\nchangetype: modify\nreplace: description\n"
                   "description: marker\n\n")
        names = self.notified(connection, msgid, PEOPLE)
        self.assertEqual(names[-1], PEOPLE)
        self.assertNotIn(SSSD, names)
        connection.abandon(msgid)

    def revoke(self) -> None:
        """
        Take Alice out of the admins group (leaving Heidi in it, as a group
        needs a member).
        """
        ldapmodify(self.server.url,
                   f"dn: {ADMINS}\nchangetype: modify\nadd: member\nmember: uid=heidi,{PEOPLE}\n\n")
        self.write(f"dn: {ADMINS}\nchangetype: modify\ndelete: member\nmember: {ALICE}\n\n")

    def notified(self, connection: Any, msgid: int, last: str) -> list[str]:
        """
        @return: the names of the entries a persistent search sends, up to
            C{last}.
        """
        names: list[str] = []
        deadline = time.monotonic() + 30
        while last not in names and time.monotonic() < deadline:
            try:
                _, data = connection.result(msgid, all=0, timeout=0.5)
            except ldap.TIMEOUT:
                continue
            names.extend(dn.lower() for dn, _ in data or ())
        return names

    def setUp(self) -> None:
        super().setUp()
        # Alice back in the admins group, if a test took her out.
        self.addCleanup(ldapmodify, self.server.url,
                        f"dn: {ADMINS}\nchangetype: modify\nadd: member\nmember: {ALICE}\n\n")
