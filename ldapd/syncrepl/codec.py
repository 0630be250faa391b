"""
The values of the Content Synchronization Operation (RFC 4533) and of
persistent search (draft-ietf-ldapext-psearch-03), in both directions: the
provider decodes requests and encodes what it answers, the consumer the
reverse. Also syncrepl cookies in slapd's text form and entryUUIDs as the
16 octets a syncUUID carries.

Decoders raise C{ValueError} for a malformed value; the request decoders
take the C{(value, criticality)} of L{ldapd.controls}' table, which turns
that into protocolError.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from ldaptor.protocols import pureber

from ldapd._codec import decodeElement, decodeSequence, encodeSequence, integer, octetString, tlv

__all__ = [
    "ADD",
    "Cookie",
    "DELETE",
    "ENTRY_CHANGE_NOTIFICATION",
    "EntryChangeNotification",
    "MODIFY",
    "NEW_COOKIE",
    "PERSISTENT_SEARCH",
    "PRESENT",
    "PS_ADD",
    "PS_DELETE",
    "PS_MODDN",
    "PS_MODIFY",
    "PersistentSearch",
    "REFRESH_AND_PERSIST",
    "REFRESH_DELETE",
    "REFRESH_ONLY",
    "REFRESH_PRESENT",
    "SYNC_DONE",
    "SYNC_ID_SET",
    "SYNC_INFO",
    "SYNC_REQUEST",
    "SYNC_STATE",
    "SyncDone",
    "SyncInfo",
    "SyncRequest",
    "SyncState",
    "decodeEntryChangeNotification",
    "decodePersistentSearch",
    "decodeSyncDone",
    "decodeSyncInfo",
    "decodeSyncRequest",
    "decodeSyncState",
    "uuidFromBytes",
    "uuidToBytes",
]

SYNC_REQUEST = "1.3.6.1.4.1.4203.1.9.1.1"
SYNC_STATE = "1.3.6.1.4.1.4203.1.9.1.2"
SYNC_DONE = "1.3.6.1.4.1.4203.1.9.1.3"
#: The responseName of the Sync Info intermediate response.
SYNC_INFO = "1.3.6.1.4.1.4203.1.9.1.4"
PERSISTENT_SEARCH = "2.16.840.1.113730.3.4.3"
ENTRY_CHANGE_NOTIFICATION = "2.16.840.1.113730.3.4.7"

#: Sync Request modes.
REFRESH_ONLY, REFRESH_AND_PERSIST = 1, 3
#: Sync State states.
PRESENT, ADD, MODIFY, DELETE = 0, 1, 2, 3
#: The Sync Info message's kinds: its CHOICE's context tags.
NEW_COOKIE, REFRESH_DELETE, REFRESH_PRESENT, SYNC_ID_SET = 0, 1, 2, 3
#: Persistent search change types (bits of C{changeTypes}).
PS_ADD, PS_DELETE, PS_MODIFY, PS_MODDN = 1, 2, 4, 8

_TRUE = b"\x01\x01\xff"


def _boolean(value: bool) -> bytes:
    return b"\x01\x01\xff" if value else b"\x01\x01\x00"


def _cookieAndFlag(cookie: bytes | None, flag: bool) -> list[bytes]:
    """
    @return: the encoded C{cookie syncCookie OPTIONAL, flag BOOLEAN DEFAULT
        FALSE} that most of RFC 4533's values have, as DER leaves them out.
    """
    parts = [] if cookie is None else [octetString(cookie)]
    if flag:
        parts.append(_TRUE)
    return parts


def _is(element: pureber.BERBase, kind: type) -> bool:
    """
    @return: whether C{element} is exactly of ldaptor's class C{kind}
        (an ENUMERATED is not an INTEGER here, nor the other way round).
    """
    return type(element) is kind


def _takeOptional(elements: list[pureber.BERBase], kind: type) -> Any:
    """
    Take the next element's value if it is of type C{kind}.

    @return: the value (of the type C{kind} holds: C{bytes} for an OCTET
        STRING, C{int} for an INTEGER...), or C{None}.
    """
    if elements and _is(elements[0], kind):
        return elements.pop(0).value
    return None


def _noneLeft(elements: list[pureber.BERBase], what: str) -> None:
    if elements:
        raise ValueError(f"unexpected element in {what}")


def _required(value: bytes | None, what: str) -> bytes:
    if value is None:
        raise ValueError(f"the {what} control needs a value")
    return value


def uuidToBytes(text: str | bytes) -> bytes:
    """
    @param text: an entryUUID as text (RFC 4530: C{8-4-4-4-12} hex digits).
    @return: its 16 octets, as a syncUUID carries them.
    @raise ValueError: if C{text} is not a UUID.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    return uuid.UUID(text).bytes


def uuidFromBytes(octets: bytes) -> str:
    """
    @param octets: a syncUUID.
    @return: the UUID as entryUUID's text form (lowercase).
    @raise ValueError: if C{octets} is not 16 octets long.
    """
    if len(octets) != 16:
        raise ValueError("a syncUUID is 16 octets")
    return str(uuid.UUID(bytes=octets))


@dataclass(frozen=True)
class Cookie:
    """
    A syncrepl cookie in slapd's form, C{rid=123,sid=001,csn=<csn>;<csn>}.

    slapd's consumer sends C{rid} (its replica id, decimal) and the CSNs it
    holds; its provider answers C{rid} and, in multi-provider setups, its
    own C{sid} (hex). Other fields a newer slapd adds are kept as they are.

    @ivar rid: the consumer's replica id, or C{None}.
    @ivar sid: the server id of the provider that made the cookie, or C{None}.
    @ivar csns: the context CSNs, one per server id.
    @ivar extra: other C{name=value} fields, in their order.
    """

    rid: int | None = None
    sid: int | None = None
    csns: tuple[bytes, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, cookie: bytes) -> Cookie:
        """
        @param cookie: a cookie as a consumer sends it.
        @return: its fields; a cookie of any other form (not ldapd's or
            slapd's) is read as one without CSNs, which asks for a full
            refresh, as slapd does.
        @raise ValueError: for a C{rid} or C{sid} that is not a number, or a
            C{csn} that is not a CSN.
        """
        rid = sid = None
        csns: tuple[bytes, ...] = ()
        extra = []
        text = cookie.decode("ascii", "replace").strip()
        for part in text.split(","):
            name, equals, value = part.strip().partition("=")
            name = name.strip().lower()
            value = value.strip()
            if not equals:
                continue
            if name == "rid":
                if not value.isdigit():
                    raise ValueError(f"cookie rid {value!r} is not a number")
                rid = int(value)
            elif name == "sid":
                try:
                    sid = int(value, 16)
                except ValueError:
                    raise ValueError(f"cookie sid {value!r} is not a number") from None
            elif name == "csn":
                csns = tuple(c.strip().encode() for c in value.split(";") if c.strip())
                for csn in csns:
                    if not _CSN.match(csn):
                        raise ValueError(f"cookie csn {csn.decode()!r} is not a CSN")
            else:
                extra.append((name, value))
        return cls(rid, sid, csns, tuple(extra))

    def format(self) -> bytes:
        """
        @return: the cookie as slapd writes it (rid in three decimal digits,
            sid in three hex digits).
        """
        parts = []
        if self.rid is not None:
            parts.append(f"rid={self.rid:03d}")
        if self.sid is not None:
            parts.append(f"sid={self.sid:03x}")
        if self.csns:
            parts.append("csn=" + ";".join(c.decode() for c in self.csns))
        parts.extend(f"{name}={value}" for name, value in self.extra)
        return ",".join(parts).encode()

    @property
    def csn(self) -> bytes | None:
        """
        The greatest of the cookie's CSNs (CSNs order as strings), or
        C{None} if it has none.
        """
        return max(self.csns) if self.csns else None


#: A CSN: C{YYYYmmddHHMMSS.uuuuuuZ#count#sid#mod} (slapd 2.2's CSNs, without
#: microseconds, are read too).
_CSN = re.compile(rb"^\d{14}(\.\d{1,6})?Z#[0-9a-fA-F]{1,6}#[0-9a-fA-F]{1,3}#[0-9a-fA-F]{1,6}$")


@dataclass(frozen=True)
class SyncRequest:
    """
    The Sync Request control (RFC 4533 §2.2).

    @ivar mode: L{REFRESH_ONLY} or L{REFRESH_AND_PERSIST}.
    @ivar cookie: the cookie of the consumer's last session, or C{None}.
    @ivar reloadHint: the consumer asks for the full content when its cookie
        is no longer covered, instead of e-syncRefreshRequired.
    @ivar criticality: whether the control was marked critical.
    """

    mode: int
    cookie: bytes | None = None
    reloadHint: bool = False
    criticality: bool = False

    def encode(self) -> bytes:
        """
        @return: the control's value.
        """
        return encodeSequence(
            [integer(self.mode, 0x0A)] + _cookieAndFlag(self.cookie, self.reloadHint)
        )


def decodeSyncRequest(value: bytes | None, critical: bool = False) -> SyncRequest:
    """
    @param value: the Sync Request control's value.
    @param critical: its criticality.
    @raise ValueError: if the value is absent or malformed.
    """
    elements = decodeSequence(_required(value, "sync request"))
    if not elements or not _is(elements[0], pureber.BEREnumerated):
        raise ValueError("sync request value has no mode")
    mode = elements.pop(0).value
    if mode not in (REFRESH_ONLY, REFRESH_AND_PERSIST):
        raise ValueError(f"sync request mode {mode} is neither refreshOnly nor refreshAndPersist")
    cookie = _takeOptional(elements, pureber.BEROctetString)
    reloadHint = _takeOptional(elements, pureber.BERBoolean)
    _noneLeft(elements, "sync request value")
    return SyncRequest(mode, cookie, bool(reloadHint), critical)


@dataclass(frozen=True)
class SyncState:
    """
    The Sync State control (RFC 4533 §2.3), sent with each entry.

    @ivar state: L{PRESENT}, L{ADD}, L{MODIFY} or L{DELETE}.
    @ivar entryUUID: the entry's syncUUID, 16 octets.
    @ivar cookie: the cookie after this change, or C{None}.
    """

    state: int
    entryUUID: bytes
    cookie: bytes | None = None

    def encode(self) -> bytes:
        """
        @return: the control's value.
        """
        parts = [integer(self.state, 0x0A), octetString(self.entryUUID)]
        if self.cookie is not None:
            parts.append(octetString(self.cookie))
        return encodeSequence(parts)


def decodeSyncState(value: bytes | None, critical: bool = False) -> SyncState:
    """
    @param value: the Sync State control's value.
    @param critical: its criticality (ignored; a response control).
    @raise ValueError: if the value is absent or malformed.
    """
    elements = decodeSequence(_required(value, "sync state"))
    if (
        len(elements) < 2
        or not _is(elements[0], pureber.BEREnumerated)
        or not _is(elements[1], pureber.BEROctetString)
    ):
        raise ValueError("sync state value is not SEQUENCE { state, entryUUID, ... }")
    state = elements.pop(0).value
    if state not in (PRESENT, ADD, MODIFY, DELETE):
        raise ValueError(f"sync state {state} is unknown")
    entryUUID = elements.pop(0).value
    if len(entryUUID) != 16:
        raise ValueError("a syncUUID is 16 octets")
    cookie = _takeOptional(elements, pureber.BEROctetString)
    _noneLeft(elements, "sync state value")
    return SyncState(state, entryUUID, cookie)


@dataclass(frozen=True)
class SyncDone:
    """
    The Sync Done control (RFC 4533 §2.4), sent with the SearchResultDone
    of a refreshOnly search.

    @ivar cookie: the cookie for the consumer's next session, or C{None}.
    @ivar refreshDeletes: whether the refresh used the delete phase (the
        consumer keeps entries it was not told about) rather than the present
        phase (it removes them).
    """

    cookie: bytes | None = None
    refreshDeletes: bool = False

    def encode(self) -> bytes:
        """
        @return: the control's value.
        """
        return encodeSequence(_cookieAndFlag(self.cookie, self.refreshDeletes))


def decodeSyncDone(value: bytes | None, critical: bool = False) -> SyncDone:
    """
    @param value: the Sync Done control's value.
    @param critical: its criticality (ignored; a response control).
    @raise ValueError: if the value is absent or malformed.
    """
    elements = decodeSequence(_required(value, "sync done"))
    cookie = _takeOptional(elements, pureber.BEROctetString)
    refreshDeletes = _takeOptional(elements, pureber.BERBoolean)
    _noneLeft(elements, "sync done value")
    return SyncDone(cookie, bool(refreshDeletes))


@dataclass(frozen=True)
class SyncInfo:
    """
    The Sync Info message (RFC 4533 §2.5), the value of an intermediate
    response named L{SYNC_INFO}.

    @ivar kind: L{NEW_COOKIE}, L{REFRESH_DELETE}, L{REFRESH_PRESENT} or
        L{SYNC_ID_SET}.
    @ivar cookie: the new cookie, or C{None} (never C{None} for L{NEW_COOKIE}).
    @ivar refreshDone: for L{REFRESH_DELETE} and L{REFRESH_PRESENT}: whether
        the refresh stage is over.
    @ivar refreshDeletes: for L{SYNC_ID_SET}: whether the UUIDs are of
        deleted entries (otherwise of present ones).
    @ivar syncUUIDs: for L{SYNC_ID_SET}: the entries' syncUUIDs.
    """

    kind: int
    cookie: bytes | None = None
    refreshDone: bool = True
    refreshDeletes: bool = False
    syncUUIDs: tuple[bytes, ...] = field(default=())

    def encode(self) -> bytes:
        """
        @return: the intermediate response's value.
        @raise ValueError: for a L{NEW_COOKIE} message without a cookie.
        """
        if self.kind == NEW_COOKIE:
            if self.cookie is None:
                raise ValueError("a newcookie message needs a cookie")
            return octetString(self.cookie, 0x80)
        if self.kind == SYNC_ID_SET:
            parts = _cookieAndFlag(self.cookie, self.refreshDeletes)
            parts.append(tlv(0x31, b"".join(octetString(u) for u in self.syncUUIDs)))
        else:
            parts = [] if self.cookie is None else [octetString(self.cookie)]
            if not self.refreshDone:
                parts.append(_boolean(False))
        return encodeSequence(parts, 0xA0 | self.kind)


def decodeSyncInfo(value: bytes | None) -> SyncInfo:
    """
    @param value: a Sync Info intermediate response's value.
    @raise ValueError: if the value is absent or malformed.
    """
    tag, content = decodeElement(_required(value, "sync info"))
    if tag == 0x80:
        return SyncInfo(NEW_COOKIE, content)
    kind = tag & 0x1F
    if tag & 0xE0 != 0xA0 or kind not in (REFRESH_DELETE, REFRESH_PRESENT, SYNC_ID_SET):
        raise ValueError(f"sync info message has unknown tag 0x{tag:02x}")
    elements = decodeSequence(tlv(0x30, content))
    cookie = _takeOptional(elements, pureber.BEROctetString)
    flag = _takeOptional(elements, pureber.BERBoolean)
    if kind != SYNC_ID_SET:
        _noneLeft(elements, "sync info message")
        return SyncInfo(kind, cookie, refreshDone=flag is None or bool(flag))
    if len(elements) != 1 or not _is(elements[0], pureber.BERSet):
        raise ValueError("syncIdSet has no SET of syncUUIDs")
    uuids = []
    for element in elements[0]:
        if not _is(element, pureber.BEROctetString) or len(element.value) != 16:
            raise ValueError("a syncUUID is a 16-octet OCTET STRING")
        uuids.append(element.value)
    return SyncInfo(
        kind,
        cookie,
        refreshDeletes=bool(flag),
        syncUUIDs=tuple(uuids),
    )


@dataclass(frozen=True)
class PersistentSearch:
    """
    The Persistent Search control (draft-ietf-ldapext-psearch-03 §4).

    @ivar changeTypes: the changes the client wants to hear about: a sum of
        L{PS_ADD}, L{PS_DELETE}, L{PS_MODIFY} and L{PS_MODDN}.
    @ivar changesOnly: only changes, not the entries matching now.
    @ivar returnECs: send an Entry Change Notification with each change.
    @ivar criticality: whether the control was marked critical.
    """

    changeTypes: int
    changesOnly: bool
    returnECs: bool
    criticality: bool = False

    def encode(self) -> bytes:
        """
        @return: the control's value.
        """
        return encodeSequence(
            [integer(self.changeTypes), _boolean(self.changesOnly), _boolean(self.returnECs)]
        )


def decodePersistentSearch(value: bytes | None, critical: bool = False) -> PersistentSearch:
    """
    @param value: the Persistent Search control's value.
    @param critical: its criticality.
    @raise ValueError: if the value is absent or malformed, or asks for no
        change type or an unknown one.
    """
    elements = decodeSequence(_required(value, "persistent search"))
    if (
        len(elements) != 3
        or not _is(elements[0], pureber.BERInteger)
        or not _is(elements[1], pureber.BERBoolean)
        or not _is(elements[2], pureber.BERBoolean)
    ):
        raise ValueError("persistent search value is not SEQUENCE { INTEGER, BOOLEAN, BOOLEAN }")
    changeTypes = elements[0].value
    if not 0 < changeTypes <= PS_ADD | PS_DELETE | PS_MODIFY | PS_MODDN:
        raise ValueError(f"persistent search changeTypes {changeTypes} is out of range")
    return PersistentSearch(changeTypes, bool(elements[1].value), bool(elements[2].value), critical)


@dataclass(frozen=True)
class EntryChangeNotification:
    """
    The Entry Change Notification control (draft-ietf-ldapext-psearch-03 §5),
    sent with each entry of a persistent search's change phase.

    @ivar changeType: L{PS_ADD}, L{PS_DELETE}, L{PS_MODIFY} or L{PS_MODDN}.
    @ivar previousDN: for L{PS_MODDN}, the entry's DN before the change.
    @ivar changeNumber: the change's number in the changelog, if there is one.
    """

    changeType: int
    previousDN: bytes | None = None
    changeNumber: int | None = None

    def encode(self) -> bytes:
        """
        @return: the control's value.
        """
        parts = [integer(self.changeType, 0x0A)]
        if self.previousDN is not None:
            parts.append(octetString(self.previousDN))
        if self.changeNumber is not None:
            parts.append(integer(self.changeNumber))
        return encodeSequence(parts)


def decodeEntryChangeNotification(
    value: bytes | None, critical: bool = False
) -> EntryChangeNotification:
    """
    @param value: the Entry Change Notification control's value.
    @param critical: its criticality (ignored; a response control).
    @raise ValueError: if the value is absent or malformed.
    """
    elements = decodeSequence(_required(value, "entry change notification"))
    if not elements or not _is(elements[0], pureber.BEREnumerated):
        raise ValueError("entry change notification has no changeType")
    changeType = elements.pop(0).value
    if changeType not in (PS_ADD, PS_DELETE, PS_MODIFY, PS_MODDN):
        raise ValueError(f"entry change notification changeType {changeType} is unknown")
    previousDN = _takeOptional(elements, pureber.BEROctetString)
    changeNumber = _takeOptional(elements, pureber.BERInteger)
    _noneLeft(elements, "entry change notification")
    return EntryChangeNotification(changeType, previousDN, changeNumber)
