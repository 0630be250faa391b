"""
Tests for L{ldapd.syncrepl.codec}: every RFC 4533 and persistent-search
value encodes to the DER that pyasn1 makes from python-ldap's ASN.1
definitions, decodes what those encode, and refuses malformed values.
"""

from __future__ import annotations

from ldap import syncrepl as pl
from ldap.controls import psearch as pp
from pyasn1.codec.der import encoder as der
from pyasn1.type import univ
from twisted.trial import unittest

from ldapd._codec import decodeElement, encodeIntermediateResponse, encodeSequence, octetString
from ldapd.syncrepl.codec import (
    ADD,
    DELETE,
    MODIFY,
    NEW_COOKIE,
    PRESENT,
    PS_ADD,
    PS_DELETE,
    PS_MODDN,
    PS_MODIFY,
    REFRESH_AND_PERSIST,
    REFRESH_DELETE,
    REFRESH_ONLY,
    REFRESH_PRESENT,
    SYNC_ID_SET,
    Cookie,
    EntryChangeNotification,
    PersistentSearch,
    SyncDone,
    SyncInfo,
    SyncRequest,
    SyncState,
    decodeEntryChangeNotification,
    decodePersistentSearch,
    decodeSyncDone,
    decodeSyncInfo,
    decodeSyncRequest,
    decodeSyncState,
    uuidFromBytes,
    uuidToBytes,
)

UUID_TEXT = "6a2d9c1e-1f6e-4a86-9d3c-58e2b9a1f0c3"
UUID = bytes.fromhex("6a2d9c1e1f6e4a869d3c58e2b9a1f0c3")
CSN = b"20261121082604.123456Z#000000#000#000000"
COOKIE = b"rid=123,csn=" + CSN


def _syncInfoDER(kind: str, **fields: object) -> bytes:
    """
    @return: the DER of a syncInfoValue built with python-ldap's definitions.
    """
    value = pl.SyncInfoValue()
    component = value.getComponentByName(kind)
    if kind == "newcookie":
        value.setComponentByName(kind, component.clone(fields["cookie"]))
        return der.encode(value)
    for name, v in fields.items():
        if name == "syncUUIDs":
            uuids = component.getComponentByName("syncUUIDs")
            for i, u in enumerate(v):  # type: ignore[arg-type]
                uuids.setComponentByPosition(i, pl.SyncUUID(u))
        elif name == "cookie":
            component.setComponentByName(name, pl.SyncCookie(v))
        else:
            component.setComponentByName(name, univ.Boolean(v))
    value.setComponentByName(kind, component)
    return der.encode(value)


class SyncRequestTests(unittest.TestCase):
    """
    The Sync Request control.
    """

    def test_matchesPythonLDAP(self) -> None:
        """
        Every combination of mode, cookie and reloadHint encodes to the DER
        python-ldap's definitions give, and decodes back from it.
        """
        modes = {REFRESH_ONLY: "refreshOnly", REFRESH_AND_PERSIST: "refreshAndPersist"}
        for mode, name in modes.items():
            for cookie in (None, b"", COOKIE):
                for reloadHint in (False, True):
                    request = SyncRequest(mode, cookie, reloadHint)
                    theirs = pl.SyncRequestValue()
                    theirs.setComponentByName("mode", pl.SyncRequestMode(name))
                    if cookie is not None:
                        theirs.setComponentByName("cookie", pl.SyncCookie(cookie))
                    if reloadHint:
                        theirs.setComponentByName("reloadHint", univ.Boolean(True))
                    self.assertEqual(request.encode(), der.encode(theirs))
                    self.assertEqual(decodeSyncRequest(der.encode(theirs)), request)

    def test_pythonLDAPControl(self) -> None:
        """
        The value python-ldap's SyncRequestControl sends (BER booleans of
        0x01) decodes, with the criticality passed in.
        """
        control = pl.SyncRequestControl(True, COOKIE.decode(), "refreshAndPersist", True)
        self.assertEqual(
            decodeSyncRequest(control.encodeControlValue(), True),
            SyncRequest(REFRESH_AND_PERSIST, COOKIE, True, True),
        )

    def test_malformed(self) -> None:
        """
        An absent value, a missing or unknown mode, a mode of the wrong type
        and trailing elements are ValueErrors.
        """
        for value in (
            None,
            b"",
            encodeSequence([]),
            encodeSequence([b"\x0a\x01\x02"]),
            encodeSequence([b"\x02\x01\x01"]),
            encodeSequence([b"\x0a\x01\x01", octetString(b"c"), b"\x01\x01\xff", b"\x05\x00"]),
            encodeSequence([b"\x0a\x01\x01", b"\x01\x01\xff", octetString(b"c")]),
            b"\x30\x05\x0a\x01\x01",
        ):
            self.assertRaises(ValueError, decodeSyncRequest, value, False)


class SyncStateTests(unittest.TestCase):
    """
    The Sync State control.
    """

    def test_matchesPythonLDAP(self) -> None:
        """
        Every state, with and without a cookie, encodes to python-ldap's DER
        and decodes back; python-ldap's decoder reads ours.
        """
        names = {PRESENT: "present", ADD: "add", MODIFY: "modify", DELETE: "delete"}
        for state, name in names.items():
            for cookie in (None, COOKIE):
                ours = SyncState(state, UUID, cookie)
                theirs = pl.SyncStateValue()
                theirs.setComponentByName("state", pl.SyncStateOp(name))
                theirs.setComponentByName("entryUUID", pl.SyncUUID(UUID))
                if cookie is not None:
                    theirs.setComponentByName("cookie", pl.SyncCookie(cookie))
                self.assertEqual(ours.encode(), der.encode(theirs))
                self.assertEqual(decodeSyncState(der.encode(theirs)), ours)
                control = pl.SyncStateControl(pl.SyncStateControl.controlType, False)
                control.decodeControlValue(ours.encode())
                self.assertEqual((control.state, control.entryUUID), (name, UUID_TEXT))
                self.assertEqual(control.cookie, cookie.decode() if cookie else None)

    def test_malformed(self) -> None:
        """
        A UUID that is not 16 octets, an unknown state and a missing UUID
        are ValueErrors.
        """
        for value in (
            None,
            encodeSequence([b"\x0a\x01\x01"]),
            encodeSequence([b"\x0a\x01\x01", octetString(UUID[:15])]),
            encodeSequence([b"\x0a\x01\x04", octetString(UUID)]),
            encodeSequence([b"\x0a\x01\x01", octetString(UUID), octetString(b"c"), b"\x05\x00"]),
        ):
            self.assertRaises(ValueError, decodeSyncState, value)


class SyncDoneTests(unittest.TestCase):
    """
    The Sync Done control.
    """

    def test_matchesPythonLDAP(self) -> None:
        """
        With and without cookie and refreshDeletes, the value is
        python-ldap's DER and decodes back.
        """
        for cookie in (None, COOKIE):
            for refreshDeletes in (False, True):
                ours = SyncDone(cookie, refreshDeletes)
                theirs = pl.SyncDoneValue()
                if cookie is not None:
                    theirs.setComponentByName("cookie", pl.SyncCookie(cookie))
                if refreshDeletes:
                    theirs.setComponentByName("refreshDeletes", univ.Boolean(True))
                self.assertEqual(ours.encode(), der.encode(theirs))
                self.assertEqual(decodeSyncDone(der.encode(theirs)), ours)

    def test_malformed(self) -> None:
        """
        Elements out of order or of the wrong type are ValueErrors.
        """
        for value in (
            None,
            encodeSequence([b"\x01\x01\xff", octetString(b"c")]),
            encodeSequence([b"\x02\x01\x01"]),
        ):
            self.assertRaises(ValueError, decodeSyncDone, value)


class SyncInfoTests(unittest.TestCase):
    """
    The Sync Info message and the intermediate response carrying it.
    """

    def test_newCookie(self) -> None:
        """
        A newcookie message is the cookie under context tag [0].
        """
        ours = SyncInfo(NEW_COOKIE, COOKIE)
        self.assertEqual(ours.encode(), _syncInfoDER("newcookie", cookie=COOKIE))
        self.assertEqual(decodeSyncInfo(ours.encode()), ours)
        self.assertEqual(pl.SyncInfoMessage(ours.encode()).newcookie, COOKIE.decode())

    def test_refreshPhases(self) -> None:
        """
        refreshDelete and refreshPresent, with and without cookie and with
        refreshDone TRUE (the default, left out) or FALSE, are python-ldap's
        DER and decode back.
        """
        for kind, name in ((REFRESH_DELETE, "refreshDelete"), (REFRESH_PRESENT, "refreshPresent")):
            for cookie in (None, COOKIE):
                for done in (True, False):
                    ours = SyncInfo(kind, cookie, refreshDone=done)
                    fields: dict[str, object] = {"refreshDone": done}
                    if cookie is not None:
                        fields["cookie"] = cookie
                    self.assertEqual(ours.encode(), _syncInfoDER(name, **fields))
                    self.assertEqual(decodeSyncInfo(ours.encode()), ours)
                    parsed = getattr(pl.SyncInfoMessage(ours.encode()), name)
                    self.assertEqual(parsed["refreshDone"], done)

    def test_syncIdSet(self) -> None:
        """
        A syncIdSet carries a SET OF syncUUIDs (in DER's order here) and
        refreshDeletes.
        """
        other = bytes(range(16))
        for refreshDeletes in (False, True):
            ours = SyncInfo(
                SYNC_ID_SET, COOKIE, refreshDeletes=refreshDeletes, syncUUIDs=(other, UUID)
            )
            expected = _syncInfoDER(
                "syncIdSet", cookie=COOKIE, refreshDeletes=refreshDeletes, syncUUIDs=[UUID, other]
            )
            self.assertEqual(ours.encode(), expected)
            self.assertEqual(decodeSyncInfo(expected), ours)
            parsed = pl.SyncInfoMessage(ours.encode()).syncIdSet
            self.assertEqual(parsed["refreshDeletes"], refreshDeletes)
            self.assertEqual(parsed["syncUUIDs"], [uuidFromBytes(other), UUID_TEXT])
        ours = SyncInfo(SYNC_ID_SET, None, syncUUIDs=(UUID,))
        self.assertEqual(ours.encode(), _syncInfoDER("syncIdSet", syncUUIDs=[UUID]))

    def test_newCookieNeedsCookie(self) -> None:
        """
        A newcookie message cannot be made without a cookie.
        """
        self.assertRaises(ValueError, SyncInfo(NEW_COOKIE).encode)

    def test_malformed(self) -> None:
        """
        An unknown tag, a primitive [1], a syncIdSet without its SET or with
        a short UUID, and trailing bytes are ValueErrors.
        """
        for value in (
            None,
            b"",
            b"\xa4\x00",
            b"\x81\x00",
            b"\xa3\x00",
            b"\xa3\x03\x31\x01\x04",
            b"\xa3\x04\x31\x02\x04\x00",
            b"\xa1\x00\x00",
            b"\xa1\x03\x02\x01\x01",
        ):
            self.assertRaises(ValueError, decodeSyncInfo, value)

    def test_intermediateResponse(self) -> None:
        """
        The IntermediateResponse is APPLICATION 25 with the name under [0]
        and the value under [1], either optional.
        """
        value = SyncInfo(NEW_COOKIE, b"c").encode()
        response = encodeIntermediateResponse(b"1.2", value)
        self.assertEqual(response, b"\x79\x0a\x80\x031.2\x81\x03" + value)
        self.assertEqual(decodeElement(response), (0x79, response[2:]))
        self.assertEqual(encodeIntermediateResponse(), b"\x79\x00")


class CookieTests(unittest.TestCase):
    """
    Cookies in slapd's text form.
    """

    def test_slapdConsumer(self) -> None:
        """
        What slapd's consumer sends: rid and the CSNs it holds.
        """
        other = b"20261121090000.000001Z#000002#001#000000"
        cookie = Cookie.parse(b"rid=007,csn=" + CSN + b";" + other)
        self.assertEqual(cookie, Cookie(7, None, (CSN, other)))
        self.assertEqual(cookie.csn, other)

    def test_slapdProvider(self) -> None:
        """
        What slapd 2.5's provider sends, with sid and a field this code does
        not know, parses and formats back to the same text.
        """
        text = b"rid=123,sid=00a,csn=" + CSN + b",delcsn=" + CSN
        cookie = Cookie.parse(text)
        self.assertEqual((cookie.rid, cookie.sid, cookie.csns), (123, 10, (CSN,)))
        self.assertEqual(cookie.format(), text)

    def test_format(self) -> None:
        """
        rid is written as three decimal digits, sid as three hex digits;
        missing fields are left out.
        """
        self.assertEqual(Cookie(5, None, (CSN,)).format(), b"rid=005,csn=" + CSN)
        self.assertEqual(Cookie(None, 255).format(), b"sid=0ff")
        self.assertEqual(Cookie().format(), b"")
        self.assertIsNone(Cookie().csn)

    def test_tolerant(self) -> None:
        """
        Spaces, upper-case names, empty fields and a cookie of another form
        are accepted; the latter has no CSN.
        """
        self.assertEqual(Cookie.parse(b" RID=1 , csn=" + CSN + b" ,"), Cookie(1, None, (CSN,)))
        self.assertEqual(Cookie.parse(b"opaque").csns, ())
        self.assertEqual(Cookie.parse(b"").csns, ())

    def test_malformed(self) -> None:
        """
        A rid or sid that is not a number and a csn that is not a CSN are
        ValueErrors.
        """
        for text in (b"rid=x", b"rid=-1", b"sid=zz", b"csn=yesterday", b"csn=" + CSN[:10]):
            self.assertRaises(ValueError, Cookie.parse, text)


class UUIDTests(unittest.TestCase):
    """
    entryUUID text to syncUUID octets and back.
    """

    def test_roundTrip(self) -> None:
        """
        Text (either case, str or bytes) becomes 16 octets; octets become
        lowercase text.
        """
        self.assertEqual(uuidToBytes(UUID_TEXT), UUID)
        self.assertEqual(uuidToBytes(UUID_TEXT.upper().encode()), UUID)
        self.assertEqual(uuidFromBytes(UUID), UUID_TEXT)

    def test_malformed(self) -> None:
        """
        Text that is no UUID and octets that are not 16 are ValueErrors.
        """
        self.assertRaises(ValueError, uuidToBytes, "not-a-uuid")
        self.assertRaises(ValueError, uuidFromBytes, UUID[:8])


class PersistentSearchTests(unittest.TestCase):
    """
    The Persistent Search and Entry Change Notification controls.
    """

    def test_request(self) -> None:
        """
        The request encodes with DER booleans and decodes python-ldap's
        (BER booleans of 0x01).
        """
        ours = PersistentSearch(PS_ADD | PS_MODDN, True, False, True)
        theirs = pp.PersistentSearchControl(True, ["add", "modDN"], True, False)
        self.assertEqual(decodePersistentSearch(theirs.encodeControlValue(), True), ours)
        self.assertEqual(ours.encode(), b"\x30\x09\x02\x01\x09\x01\x01\xff\x01\x01\x00")

    def test_requestMalformed(self) -> None:
        """
        A missing field, changeTypes of 0 or above 15 and a wrong type are
        ValueErrors.
        """
        for value in (
            None,
            encodeSequence([b"\x02\x01\x01", b"\x01\x01\xff"]),
            encodeSequence([b"\x02\x01\x00", b"\x01\x01\xff", b"\x01\x01\xff"]),
            encodeSequence([b"\x02\x01\x10", b"\x01\x01\xff", b"\x01\x01\xff"]),
            encodeSequence([b"\x0a\x01\x01", b"\x01\x01\xff", b"\x01\x01\xff"]),
        ):
            self.assertRaises(ValueError, decodePersistentSearch, value, False)

    def test_notification(self) -> None:
        """
        Every change type, with previousDN and changeNumber or without,
        encodes to python-ldap's DER and python-ldap's decoder reads it.
        """
        names = {PS_ADD: "add", PS_DELETE: "delete", PS_MODIFY: "modify", PS_MODDN: "modDN"}
        for changeType, name in names.items():
            for previousDN in (None, b"cn=old,dc=example,dc=com"):
                for number in (None, 0, 1234567):
                    ours = EntryChangeNotification(changeType, previousDN, number)
                    theirs = pp.EntryChangeNotificationValue()
                    theirs.setComponentByName("changeType", pp.ChangeType(name))
                    if previousDN is not None:
                        theirs.setComponentByName("previousDN", pp.LDAPDN(previousDN))
                    if number is not None:
                        theirs.setComponentByName("changeNumber", univ.Integer(number))
                    self.assertEqual(ours.encode(), der.encode(theirs))
                    self.assertEqual(decodeEntryChangeNotification(der.encode(theirs)), ours)
                    control = pp.EntryChangeNotificationControl()
                    control.decodeControlValue(ours.encode())
                    self.assertEqual(control.changeType, changeType)
                    self.assertEqual(
                        control.previousDN, previousDN.decode() if previousDN else None
                    )
                    self.assertEqual(control.changeNumber, number)

    def test_notificationMalformed(self) -> None:
        """
        An unknown change type and a changeType of the wrong type are
        ValueErrors.
        """
        for value in (None, encodeSequence([b"\x0a\x01\x03"]), encodeSequence([b"\x02\x01\x01"])):
            self.assertRaises(ValueError, decodeEntryChangeNotification, value)
