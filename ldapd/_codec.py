"""
The wire codec: ldaptor's BER decoder set up for a server, and a direct
encoder for the responses ldapd sends.

Requests are decoded into ldaptor's classes: the common ones (searches with
equality, presence, substrings, and, or and not filters; simple binds; unbinds)
by a fast path here (L{decodeRequest}) that builds the same objects ldaptor's
decoder would, and everything else, including anything the fast path finds
unusual or malformed, by ldaptor's decoder itself, once L{checkBER} has
checked the encoding that decoder takes on trust. Both results are checked by
L{checkRequest}, and both read lengths with L{lengthAt}. Responses are encoded here, straight
to bytes: they are the hot path (one SearchResultEntry per returned entry), and
ldaptor's response classes can encode neither referrals nor intermediate
responses. The tests check this encoder against ldaptor's for byte equality.
Responses from upstream servers (the proxy backend's client) are decoded into
ldaptor's classes, with their referral URIs kept (L{RESPONSE_DECODER}); those
a syncrepl consumer receives by the thousand (entries, Sync Info messages,
the search's end) by a fast path here (L{decodeResponse}), as requests are.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple, Sequence

from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap import ldaperrors

from ldapd.requests import (
    ANY,
    CANCEL,
    FINAL,
    INITIAL,
    PASSWORD_MODIFY,
    START_TLS,
    WHO_AM_I,
    AbandonRequest,
    AddRequest,
    And,
    Approx,
    BindRequest,
    CancelRequest,
    CompareRequest,
    DeleteRequest,
    Equality,
    ExtendedRequest,
    Extensible,
    Filter,
    GreaterOrEqual,
    LessOrEqual,
    Message,
    ModifyDNRequest,
    ModifyRequest,
    Not,
    Or,
    PasswordModifyRequest,
    Present,
    RawControl,
    Request,
    SearchRequest,
    StartTLSRequest,
    Substrings,
    UnbindRequest,
    WhoAmIRequest,
)

__all__ = [
    "IntermediateResponse",
    "Control",
    "DECODER",
    "FilterShape",
    "NOTICE_OF_DISCONNECTION",
    "MAX_INT",
    "RESPONSE_DECODER",
    "RESPONSE_TAGS",
    "checkBER",
    "checkRequest",
    "decodeElement",
    "decodeFilters",
    "decodeRequest",
    "decodeResponse",
    "decodeElements",
    "decodeSequence",
    "encodeControls",
    "encodeExtendedResponse",
    "encodeIntermediateResponse",
    "encodeMessage",
    "encodeResult",
    "encodeSearchEntry",
    "encodeSearchReference",
    "encodeSequence",
    "filterShape",
    "integer",
    "lengthAt",
    "octetString",
    "tlv",
]

#: The largest value of an INTEGER (0 .. maxInt) in a request (RFC 4511 §4.1.1).
MAX_INT = 2**31 - 1


def lengthAt(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """
    Read the length octets of a BER element (X.690 §8.1.3), in either
    definite form: short, or long with any number of octets, leading zero
    octets included (§8.1.3.5 does not ask for the fewest).

    @param data: the encoding.
    @param pos: where the length octets start (after the identifier octet).
    @return: the length of the contents and where they start, or C{None}
        if C{data} ends before the length octets do.
    @raise ValueError: for the indefinite form, which LDAP does not allow
        (RFC 4511 §5.1), and the reserved initial octet C{0xFF}.
    """
    if pos >= len(data):
        return None
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0:
        raise ValueError("indefinite length")
    if n == 0x7F:
        raise ValueError("reserved length octet 0xff")
    if pos + 1 + n > len(data):
        return None
    return int.from_bytes(data[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


#: The universal types LDAP uses (RFC 4511 §5.1) by tag number, and whether
#: each is constructed; BER encodes all of them in one form only (X.690 §8.2,
#: §8.3, §8.4, §8.8, §8.9, §8.12; LDAP's OCTET STRINGs are primitive).
_UNIVERSAL_FORMS = {0x01: False, 0x02: False, 0x04: False, 0x05: False, 0x0A: False,
                    0x10: True, 0x11: True}


def checkBER(data: bytes) -> None:
    """
    Check that C{data} is exactly one BER element encoded as LDAP requires
    (RFC 4511 §5.1), all the way down: low tag numbers, definite lengths
    that fit in their enclosing element, constructed elements made of whole
    elements, the universal types in their only form (a SEQUENCE or SET
    constructed; a BOOLEAN, INTEGER, ENUMERATED, OCTET STRING or NULL
    primitive), a BOOLEAN of one octet, an INTEGER or ENUMERATED of at
    least one, a NULL of none.

    ldaptor's decoder checks none of this (it ignores the constructed bit),
    so it runs before ldaptor's decoder does; L{decodeRequest} accepts only
    elements of the right forms in the first place.

    @param data: the encoding.
    @raise ValueError: saying what is wrong.
    """
    regions = [(0, len(data))]
    top = True
    while regions:
        pos, end = regions.pop()
        while pos < end:
            identifier, start, stop = _header(data, pos, end)
            number = identifier & 0x1F
            constructed = bool(identifier & 0x20)
            if identifier & 0xC0 == 0:
                expected = _UNIVERSAL_FORMS.get(number)
                if expected is not None and constructed is not expected:
                    form = "constructed" if constructed else "primitive"
                    raise ValueError(f"{form} encoding of universal type {number}")
                size = stop - start
                if ((number == 0x01 and size != 1) or (number in (0x02, 0x0A) and size == 0)
                        or (number == 0x05 and size != 0)):
                    raise ValueError(f"universal type {number} with {size} content octets")
            if constructed:
                regions.append((start, stop))
            pos = stop
            if top and pos != end:
                raise ValueError("octets after the element")
            top = False


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """
    Read the header of the BER element at C{pos}, which must end by C{end}.

    @return: its identifier octet and the start and end of its contents.
    @raise ValueError: for a high tag number, an indefinite length, or
        contents that run past C{end}.
    """
    if pos + 2 > end:
        raise ValueError("truncated element")
    identifier = data[pos]
    if identifier & 0x1F == 0x1F:
        raise ValueError("high tag number")
    found = lengthAt(data, pos + 1)
    if found is None or found[1] + found[0] > end:
        raise ValueError("element longer than what holds it")
    return identifier, found[1], found[1] + found[0]


def checkRequest(request: Request) -> None:
    """
    Check what a decoded request holds against the constraints of RFC 4511
    that the types of its elements leave to the decoder: the limits of a
    search no more than maxInt (a negative one is left to the search, which
    answers protocolError "negative size or time limit", as slapd answers
    one) and at least one piece in each substrings filter
    (C{SIZE (1..MAX)}). Either decoder's result is checked here, the same
    way.

    @param request: the decoded request.
    @raise ValueError: saying what is out of range.
    """
    if not isinstance(request, SearchRequest):
        return
    if request.sizeLimit > MAX_INT or request.timeLimit > MAX_INT:
        raise ValueError("size or time limit above maxInt")
    filters: list[Filter] = [request.filter]
    while filters:
        f = filters.pop()
        if isinstance(f, (And, Or)):
            filters.extend(f.parts)
        elif isinstance(f, Not):
            filters.append(f.part)
        elif isinstance(f, Substrings) and not f.pieces:
            raise ValueError("substrings filter without a substring")


def _bytes(value: Any) -> bytes:
    """
    @return: a value ldaptor decoded, as bytes (it gives C{str} for some).
    """
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _text(value: Any) -> str:
    """
    @return: a name ldaptor decoded, as text.
    """
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


#: ldaptor's substring pieces, by class.
_LDAPTOR_PIECES = {
    pureldap.LDAPFilter_substrings_initial: INITIAL,
    pureldap.LDAPFilter_substrings_any: ANY,
    pureldap.LDAPFilter_substrings_final: FINAL,
}

#: ldaptor's comparisons, by class.
_LDAPTOR_COMPARISONS: dict[type, type] = {
    pureldap.LDAPFilter_equalityMatch: Equality,
    pureldap.LDAPFilter_greaterOrEqual: GreaterOrEqual,
    pureldap.LDAPFilter_lessOrEqual: LessOrEqual,
    pureldap.LDAPFilter_approxMatch: Approx,
}


#: ldaptor's classes of the substring pieces and of the comparisons.
_TO_LDAPTOR_PIECES: dict[int, Any] = {kind: cls for cls, kind in _LDAPTOR_PIECES.items()}
_TO_LDAPTOR_COMPARISONS: dict[type, Any] = {
    ours: theirs for theirs, ours in _LDAPTOR_COMPARISONS.items()}


def filterFromLdaptor(f: Any) -> Filter:
    """
    @param f: one of ldaptor's C{LDAPFilter_*}.
    @return: the same filter in ldapd's types.
    @raise ValueError: for what is not a filter.
    """
    if isinstance(f, (pureldap.LDAPFilter_and, pureldap.LDAPFilter_or)):
        parts = tuple(filterFromLdaptor(p) for p in f)
        return And(parts) if isinstance(f, pureldap.LDAPFilter_and) else Or(parts)
    if isinstance(f, pureldap.LDAPFilter_not):
        return Not(filterFromLdaptor(f.value))
    if isinstance(f, pureldap.LDAPFilter_present):
        return Present(_bytes(f.value))
    comparison = _LDAPTOR_COMPARISONS.get(type(f))
    if comparison is not None:
        return comparison(_bytes(f.attributeDesc.value), _bytes(f.assertionValue.value))
    if isinstance(f, pureldap.LDAPFilter_substrings):
        pieces = []
        for piece in f.substrings:
            kind = _LDAPTOR_PIECES.get(type(piece))
            if kind is None:
                raise ValueError("not a substring")
            pieces.append((kind, _bytes(piece.value)))
        return Substrings(_bytes(f.type), tuple(pieces))
    if isinstance(f, pureldap.LDAPFilter_extensibleMatch):
        return Extensible(
            None if f.matchingRule is None else _bytes(f.matchingRule.value),
            None if f.type is None else _bytes(f.type.value),
            _bytes(f.matchValue.value),
            bool(f.dnAttributes and f.dnAttributes.value),
        )
    raise ValueError(f"unknown filter type {type(f).__name__}")


def filterToLdaptor(f: Filter) -> Any:
    """
    @param f: a filter.
    @return: the same filter in ldaptor's classes, for a request to an
        upstream server (the proxy backend, the syncrepl consumer).
    """
    if isinstance(f, (And, Or)):
        parts = [filterToLdaptor(p) for p in f.parts]
        return pureldap.LDAPFilter_and(parts) if isinstance(f, And) else pureldap.LDAPFilter_or(parts)
    if isinstance(f, Not):
        return pureldap.LDAPFilter_not(filterToLdaptor(f.part))
    if isinstance(f, Present):
        return pureldap.LDAPFilter_present(f.attribute)
    if isinstance(f, Substrings):
        return pureldap.LDAPFilter_substrings(type=f.attribute, substrings=[
            _TO_LDAPTOR_PIECES[kind](value) for kind, value in f.pieces])
    if isinstance(f, Extensible):
        # Each field with its context tag (RFC 4511 §4.5.1.7.7), as
        # decoders (ldaptor's own, slapd) read them.
        return pureldap.LDAPFilter_extensibleMatch(
            matchingRule=None if f.rule is None
            else pureldap.LDAPMatchingRuleAssertion_matchingRule(f.rule),
            type=None if f.attribute is None else pureldap.LDAPMatchingRuleAssertion_type(f.attribute),
            matchValue=pureldap.LDAPMatchingRuleAssertion_matchValue(f.value),
            dnAttributes=pureldap.LDAPMatchingRuleAssertion_dnAttributes(True)
            if f.dnAttributes else None,
        )
    return _TO_LDAPTOR_COMPARISONS[type(f)](
        attributeDesc=pureldap.LDAPAttributeDescription(f.attribute),
        assertionValue=pureldap.LDAPAssertionValue(f.value),
    )


#: The operations of a ModifyRequest's changes, by their ENUMERATED value.
_MODIFY_OPERATIONS = {0: "add", 1: "delete", 2: "replace", 3: "increment"}


def _attributeList(items: Any) -> tuple[tuple[str, tuple[bytes, ...]], ...]:
    """
    An AddRequest's attributes, each with at least one value.

    @raise ldaperrors.LDAPProtocolError: for a malformed attribute or one
        without values.
    """
    attributes = []
    for item in items:
        # len() of an ldaptor BER object is the length of its encoding,
        # so the parts are counted on its list of elements.
        parts = item.data if isinstance(item, pureber.BERSequence) else item
        if (
            not isinstance(parts, (list, tuple))
            or len(parts) != 2
            or not isinstance(parts[1], (pureber.BERSet, list, tuple))
        ):
            raise ldaperrors.LDAPProtocolError("malformed attribute")
        description = _text(parts[0].value)
        values = tuple(_bytes(v.value) for v in parts[1])
        if not values:
            raise ldaperrors.LDAPProtocolError(f"no values for attribute type {description}")
        attributes.append((description, values))
    return tuple(attributes)


def _changes(items: Any) -> tuple[tuple[str, str, tuple[bytes, ...]], ...]:
    """
    A ModifyRequest's changes.

    @raise ldaperrors.LDAPProtocolError: for a malformed change.
    """
    changes = []
    for change in items or ():
        try:
            operation = _MODIFY_OPERATIONS[change[0].value]
            description = _text(change[1][0].value)
            values = tuple(_bytes(v.value) for v in change[1][1])
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ldaperrors.LDAPProtocolError("malformed modification") from None
        changes.append((operation, description, values))
    return tuple(changes)


def parseCancel(value: bytes | None) -> int:
    """
    Decode a Cancel request value (RFC 3909 §2): C{SEQUENCE { cancelID
    MessageID }}.

    @param value: the request value, or C{None}.
    @return: the message id of the operation to cancel.
    @raise ldaperrors.LDAPProtocolError: if it cannot be decoded.
    """
    try:
        parts = decodeSequence(value or b"")
    except ValueError as e:
        raise ldaperrors.LDAPProtocolError(f"cancel: {e}") from None
    if len(parts) != 1 or type(parts[0]) is not pureber.BERInteger:
        raise ldaperrors.LDAPProtocolError("cancel: malformed request value")
    messageId = parts[0].value
    if not 0 <= messageId <= MAX_INT:
        raise ldaperrors.LDAPProtocolError("cancel: message id out of range")
    return messageId  # type: ignore[no-any-return]


def parsePasswordModify(value: bytes | None) -> tuple[bytes | None, bytes | None, bytes | None]:
    """
    Decode a Password Modify request value (RFC 3062 §2).

    @param value: the request value, or C{None}.
    @return: its userIdentity, oldPasswd and newPasswd, each C{None} when absent.
    @raise ldaperrors.LDAPProtocolError: if it cannot be decoded.
    """
    if value is None:
        return None, None, None
    try:
        parts = decodeSequence(value, tagged=(0x80, 0x81, 0x82))
    except ValueError as e:
        raise ldaperrors.LDAPProtocolError(f"password modify: {e}") from None
    fields: dict[int, bytes] = {}
    for part in parts:
        tag = part.tag & 0x1F if isinstance(part, pureber.BEROctetString) else -1
        if tag not in (0, 1, 2) or part.tag & 0xC0 != 0x80 or tag in fields:
            raise ldaperrors.LDAPProtocolError("password modify: malformed request value")
        fields[tag] = part.value
    return fields.get(0), fields.get(1), fields.get(2)


def _extended(request: Any) -> ExtendedRequest:
    """
    An ExtendedRequest: those whose value ldapd's core reads, as their own
    types, with the value decoded.

    @raise ldaperrors.LDAPProtocolError: for a value that cannot be decoded.
    """
    name = _text(request.requestName)
    value = None if request.requestValue is None else _bytes(request.requestValue)
    if name == START_TLS:
        return StartTLSRequest(name, value)
    if name == WHO_AM_I:
        return WhoAmIRequest(name, value)
    if name == CANCEL:
        return CancelRequest(name, value, parseCancel(value))
    if name == PASSWORD_MODIFY:
        return PasswordModifyRequest(name, value, *parsePasswordModify(value))
    return ExtendedRequest(name, value)


def _bindFromLdaptor(request: Any) -> BindRequest:
    if request.sasl:
        mechanism, credentials = request.auth
        return BindRequest(request.version, _bytes(request.dn), None, _text(mechanism),
                           None if credentials is None else _bytes(credentials))
    return BindRequest(request.version, _bytes(request.dn), _bytes(request.auth))


def _searchFromLdaptor(request: Any) -> SearchRequest:
    return SearchRequest(
        _bytes(request.baseObject), request.scope, request.derefAliases, request.sizeLimit,
        request.timeLimit, bool(request.typesOnly), filterFromLdaptor(request.filter),
        tuple(_bytes(a) for a in request.attributes))


#: How each of ldaptor's requests becomes one of ldapd's.
_FROM_LDAPTOR: dict[type, Callable[[Any], Request]] = {
    pureldap.LDAPBindRequest: _bindFromLdaptor,
    pureldap.LDAPUnbindRequest: lambda r: UnbindRequest(),
    pureldap.LDAPSearchRequest: _searchFromLdaptor,
    pureldap.LDAPModifyRequest: lambda r: ModifyRequest(_bytes(r.object), _changes(r.modification)),
    pureldap.LDAPAddRequest: lambda r: AddRequest(_bytes(r.entry), _attributeList(r.attributes)),
    pureldap.LDAPDelRequest: lambda r: DeleteRequest(_bytes(r.value)),
    pureldap.LDAPModifyDNRequest: lambda r: ModifyDNRequest(
        _bytes(r.entry), _bytes(r.newrdn), bool(r.deleteoldrdn),
        None if r.newSuperior is None else _bytes(r.newSuperior)),
    pureldap.LDAPCompareRequest: lambda r: CompareRequest(
        _bytes(r.entry), _text(r.ava.attributeDesc.value), _bytes(r.ava.assertionValue.value)),
    pureldap.LDAPAbandonRequest: lambda r: AbandonRequest(r.value),
    pureldap.LDAPExtendedRequest: _extended,
}


def fromLdaptor(message: Any) -> Message:
    """
    @param message: an C{LDAPMessage} ldaptor's decoder made of a request.
    @return: the same message in ldapd's types.
    @raise ldaperrors.LDAPException: for a request whose fields break a
        rule of its operation, with the result it gets.
    @raise ValueError: for what is not a request ldapd knows.
    """
    convert = _FROM_LDAPTOR.get(type(message.value))
    if convert is None:
        raise ValueError(f"unknown request {type(message.value).__name__}")
    try:
        request = convert(message.value)
    except ldaperrors.LDAPException:
        raise
    except (AttributeError, TypeError, IndexError) as e:
        raise ValueError(f"malformed {type(message.value).__name__}: {e}") from None
    controls = tuple(RawControl(_text(oid), bool(critical), value)
                     for oid, critical, value in message.controls or ())
    return Message(message.id, request, controls)


class _StrictContext(pureber.BERDecoderContext):
    """
    The last fallback of every decoder context: an unknown tag is an error,
    where ldaptor would print a message and skip the element.
    """

    def lookup_id(self, id: int) -> type:
        """
        @param id: the element's tag class and number (without the
            constructed bit, as ldaptor looks tags up).
        @return: the class that decodes it.
        @raise ValueError: if no class does (the message is short: it may
            end up in a Notice of Disconnection).
        """
        found = super().lookup_id(id)
        if found is None:
            raise ValueError(f"unexpected BER tag 0x{id:02x}")
        return found


class _NoOtherTag(_StrictContext):
    """
    The fallback of contexts whose elements all have one fixed type: any
    other tag is an error.
    """

    Identities: dict[int, type] = {}


class _Controls(pureldap.LDAPControls):
    """
    A message's controls. ldaptor's own decoding gives the list of controls
    no fallback context, so it would print and skip anything in it that is
    not a SEQUENCE; here that is an error.
    """

    @classmethod
    def fromBER(
        cls, tag: int, content: bytes, berdecoder: pureber.BERDecoderContext | None = None
    ) -> _Controls:
        context = pureldap.LDAPBERDecoderContext_LDAPControls(
            fallback=_NoOtherTag(), inherit=berdecoder
        )
        return cls(pureber.berDecodeMultiple(content, context), tag=tag)


class _MessageContext(pureldap.LDAPBERDecoderContext_LDAPMessage):
    """
    The elements of an LDAPMessage, with strictly decoded controls.
    """

    Identities = {
        **pureldap.LDAPBERDecoderContext_LDAPMessage.Identities,
        pureldap.LDAPControls.tag: _Controls,
    }


class _Message(pureldap.LDAPMessage):
    """
    An LDAPMessage checked for its shape, where ldaptor's decoding would
    rely on C{assert} (gone under C{python -O}) or take any element as the
    message id.
    """

    @classmethod
    def fromBER(
        cls, tag: int, content: bytes, berdecoder: pureber.BERDecoderContext | None = None
    ) -> _Message:
        elements = pureber.berDecodeMultiple(content, berdecoder)
        if (
            not 2 <= len(elements) <= 3
            or type(elements[0]) is not pureber.BERInteger
            or (len(elements) == 3 and not isinstance(elements[2], _Controls))
        ):
            raise ValueError("not a message id, an operation and optional controls")
        controls = None
        if len(elements) == 3:
            controls = [(c.controlType, c.criticality, c.controlValue) for c in elements[2]]
        return cls(id=elements[0].value, value=elements[1], controls=controls, tag=tag)


class _SearchRequest(pureldap.LDAPSearchRequest):
    """
    A SearchRequest checked for the types of its fields, which ldaptor's
    decoding reads by position whatever their tags (a scope as an INTEGER,
    say, where RFC 4511 §4.5.1 has an ENUMERATED).
    """

    #: The tags of the fields before the filter (constructed bit aside, as
    #: ldaptor keeps them): baseObject, scope, derefAliases, sizeLimit,
    #: timeLimit, typesOnly.
    _FIELDS = [0x04, 0x0A, 0x0A, 0x02, 0x02, 0x01]

    @classmethod
    def fromBER(
        cls, tag: int, content: bytes, berdecoder: pureber.BERDecoderContext | None = None
    ) -> pureldap.LDAPSearchRequest:
        fields = pureber.berDecodeMultiple(
            content, pureldap.LDAPBERDecoderContext_Filter(fallback=berdecoder, inherit=berdecoder)
        )
        if (
            len(fields) != 8
            or [field.tag for field in fields[:6]] != cls._FIELDS
            or fields[6].tag & 0xC0 != pureber.CLASS_CONTEXT
            or fields[7].tag != pureber.BERSequence.tag
            or any(a.tag != pureber.BEROctetString.tag for a in fields[7])
        ):
            raise ValueError("not a SearchRequest")
        return pureldap.LDAPSearchRequest(
            baseObject=fields[0].value,
            scope=fields[1].value,
            derefAliases=fields[2].value,
            sizeLimit=fields[3].value,
            timeLimit=fields[4].value,
            typesOnly=fields[5].value,
            filter=fields[6],
            attributes=[a.value for a in fields[7]],
            tag=tag,
        )


class _RequestContext(pureldap.LDAPBERDecoderContext):
    """
    ldaptor's protocolOps, with the SearchRequest checked for its fields'
    types.
    """

    Identities = {
        **pureldap.LDAPBERDecoderContext.Identities,
        pureldap.LDAPSearchRequest.tag: _SearchRequest,
    }


class _TopLevelContext(pureber.BERDecoderContext):
    """
    What a client sends: LDAPMessages, nothing else.
    """

    Identities = {pureber.BERSequence.tag: _Message}


#: The decoder context for LDAPMessages sent by clients.
DECODER = _TopLevelContext(
    fallback=_NoOtherTag(),
    inherit=_MessageContext(
        fallback=_RequestContext(fallback=_StrictContext()),
        inherit=_RequestContext(fallback=_StrictContext()),
    ),
)


class _Unhandled(Exception):
    """
    The fast path does not decode this PDU: ldaptor's decoder will.
    """


#: The deepest filter nesting the fast path decodes.
_FAST_FILTER_DEPTH = 16

#: The substring pieces by tag: initial, any, final.
_PIECES = {0x80: INITIAL, 0x81: ANY, 0x82: FINAL}

#: The comparisons of a filter by tag (constructed bit set, as sent).
_COMPARISONS: dict[int, type] = {
    0xA3: Equality, 0xA5: GreaterOrEqual, 0xA6: LessOrEqual, 0xA8: Approx,
}


def _element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """
    Read the header of the BER element at C{pos}.

    @return: its identifier octet and the start and end of its contents.
    @raise _Unhandled: for a high tag number, an indefinite length, or
        contents that run past C{end}.
    """
    if pos + 2 <= end:
        # The common case, a short length, read here without a call.
        identifier = data[pos]
        length = data[pos + 1]
        if length < 0x80 and identifier & 0x1F != 0x1F and pos + 2 + length <= end:
            return identifier, pos + 2, pos + 2 + length
    try:
        return _header(data, pos, end)
    except ValueError:
        raise _Unhandled() from None


def _integer(data: bytes, start: int, stop: int) -> int:
    """
    @return: the value of INTEGER or ENUMERATED contents, as ldaptor reads it.
    """
    if start == stop:
        raise _Unhandled()
    return int.from_bytes(data[start:stop], "big", signed=True)


def _octets(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """
    @return: the contents of the OCTET STRING at C{pos}, and where it ends.
    """
    identifier, start, stop = _element(data, pos, end)
    if identifier != 0x04:
        raise _Unhandled()
    return data[start:stop], stop


def _strings(data: bytes, identifier: int, pos: int, end: int) -> tuple[list[bytes], int]:
    """
    @return: the contents of the OCTET STRINGs in the SEQUENCE or SET
        (C{identifier}) at C{pos}, and where it ends.
    """
    found, start, stop = _element(data, pos, end)
    if found != identifier:
        raise _Unhandled()
    strings = []
    while start < stop:
        string, start = _octets(data, start, stop)
        strings.append(string)
    return strings, stop


def _filter(data: bytes, pos: int, end: int, depth: int) -> tuple[Filter, int]:
    """
    Decode the filter at C{pos}.

    @return: the filter and where it ends.
    """
    identifier, start, stop = _element(data, pos, end)
    comparison = _COMPARISONS.get(identifier)
    if comparison is not None:
        description, next = _octets(data, start, stop)
        value, next = _octets(data, next, stop)
        if next != stop:
            raise _Unhandled()
        return comparison(description, value), stop
    if identifier == 0x87:
        return Present(data[start:stop]), stop
    if depth >= _FAST_FILTER_DEPTH:
        raise _Unhandled()
    if identifier == 0xA0 or identifier == 0xA1:
        parts = []
        next = start
        while next < stop:
            part, next = _filter(data, next, stop, depth + 1)
            parts.append(part)
        return (And if identifier == 0xA0 else Or)(tuple(parts)), stop
    if identifier == 0xA2:
        part, next = _filter(data, start, stop, depth + 1)
        if next != stop:
            raise _Unhandled()
        return Not(part), stop
    if identifier == 0xA4:
        attributeType, next = _octets(data, start, stop)
        sequence, first, last = _element(data, next, stop)
        if sequence != 0x30 or last != stop or first == last:
            raise _Unhandled()
        pieces = []
        next = first
        while next < last:
            tag, pieceStart, pieceStop = _element(data, next, last)
            kind = _PIECES.get(tag)
            if kind is None:
                raise _Unhandled()
            pieces.append((kind, data[pieceStart:pieceStop]))
            next = pieceStop
        return Substrings(attributeType, tuple(pieces)), stop
    raise _Unhandled()


def _search(data: bytes, start: int, stop: int) -> SearchRequest:
    base, next = _octets(data, start, stop)
    fields = []
    for expected in (0x0A, 0x0A, 0x02, 0x02):
        identifier, first, next = _element(data, next, stop)
        if identifier != expected:
            raise _Unhandled()
        fields.append(_integer(data, first, next))
    identifier, first, next = _element(data, next, stop)
    if identifier != 0x01 or next - first != 1:
        raise _Unhandled()
    typesOnly = data[first] != 0
    searchFilter, next = _filter(data, next, stop, 0)
    attributes, next = _strings(data, 0x30, next, stop)
    if next != stop:
        raise _Unhandled()
    return SearchRequest(base, fields[0], fields[1], fields[2], fields[3], typesOnly,
                         searchFilter, tuple(attributes))


def _bind(data: bytes, start: int, stop: int) -> BindRequest:
    identifier, first, next = _element(data, start, stop)
    if identifier != 0x02:
        raise _Unhandled()
    version = _integer(data, first, next)
    dn, next = _octets(data, next, stop)
    identifier, first, next = _element(data, next, stop)
    if identifier != 0x80 or next != stop:
        raise _Unhandled()
    return BindRequest(version, dn, data[first:next])


def _messageStart(pdu: bytes) -> tuple[int, int, int]:
    """
    Read the start of an LDAPMessage that must fill C{pdu}.

    @return: its message id, where its protocolOp starts and where the
        message ends.
    """
    identifier, start, stop = _element(pdu, 0, len(pdu))
    if identifier != 0x30 or stop != len(pdu):
        raise _Unhandled()
    identifier, first, next = _element(pdu, start, stop)
    if identifier != 0x02:
        raise _Unhandled()
    return _integer(pdu, first, next), next, stop


def _trailingControls(data: bytes, pos: int, stop: int
                      ) -> list[tuple[bytes, Any, bytes | None]] | None:
    """
    Decode the controls (RFC 4511 §4.1.11) that end a message: the C{[0]}
    element from C{pos} to C{stop}, if there is one.

    @return: the controls, or C{None} when the message has none.
    @raise _Unhandled: for anything else after the protocolOp.
    """
    if pos == stop:
        return None
    identifier, first, end = _element(data, pos, stop)
    if identifier != 0xA0 or end != stop:
        raise _Unhandled()
    return _controls(data, first, end)


def decodeRequest(pdu: bytes) -> Message | None:
    """
    Decode a common request without ldaptor's generic decoder: a search
    whose filter uses only equality, ordering, approximate, presence,
    substrings, and, or and not; a simple bind; an unbind; with or without
    controls.

    @param pdu: one complete LDAPMessage.
    @return: the message, equal to what L{fromLdaptor} makes of ldaptor's
        decoding (L{DECODER}); or C{None} for any other request and for
        anything unusual or malformed, which that decoder is left to handle.
    """
    try:
        messageId, next, stop = _messageStart(pdu)
        identifier, first, last = _element(pdu, next, stop)
        if identifier == 0x63:
            request: Request = _search(pdu, first, last)
        elif identifier == 0x60:
            request = _bind(pdu, first, last)
        elif identifier == 0x42 and first == last:
            request = UnbindRequest()
        else:
            return None
        controls = tuple(RawControl(oid.decode("utf-8", "replace"), bool(critical), value)
                         for oid, critical, value in _trailingControls(pdu, last, stop) or ())
    except _Unhandled:
        return None
    return Message(messageId, request, controls)


def decodeMessage(pdu: bytes) -> Message:
    """
    Decode one complete request PDU into ldapd's request types: the common
    requests by L{decodeRequest}; the rest, and whatever that finds unusual,
    by ldaptor's decoder once L{checkBER} has checked the encoding it takes
    on trust, then L{fromLdaptor}. Either result is checked by
    L{checkRequest}.

    @param pdu: one complete LDAPMessage.
    @return: the message.
    @raise ldaperrors.LDAPException: for a request whose fields break a
        rule of its operation, with the result it gets.
    @raise ValueError: if it is not a request that can be decoded.
    """
    message = decodeRequest(pdu)
    if message is None:
        checkBER(pdu)
        decoded, _ = pureber.berDecodeObject(DECODER, pdu)
        if not isinstance(decoded.value, pureldap.LDAPProtocolRequest):
            raise ValueError("not a request")
        message = fromLdaptor(decoded)
    checkRequest(message.request)
    return message


class FilterShape(NamedTuple):
    """
    The size of a search request's filter, read from its encoding.

    @ivar components: its components (assertions, and, or, not) counted,
        stopping at one more than the count asked for.
    @ivar depth: its deepest nesting seen (the filter itself is at 0).
    """

    components: int
    depth: int


def filterShape(pdu: bytes, maxComponents: int, maxDepth: int) -> FilterShape | None:
    """
    Measure the filter of a search request without decoding it, so that a
    filter too large or too deep is refused before any object is made for
    it. The walk stops as soon as it passes either bound, so that its cost
    depends on the bounds, not on the size of the PDU.

    @param pdu: one complete LDAPMessage.
    @param maxComponents: stop counting past this many components.
    @param maxDepth: stop past this depth.
    @return: the shape, or C{None} if the PDU is not a search request or is
        too malformed to walk (the decoder then refuses it).
    """
    try:
        identifier, start, stop = _element(pdu, 0, len(pdu))
        _, _, next = _element(pdu, start, stop)
        identifier, first, last = _element(pdu, next, stop)
        if identifier != 0x63:
            return None
        next = first
        # baseObject, scope, derefAliases, sizeLimit, timeLimit, typesOnly
        for _ in range(6):
            _, _, next = _element(pdu, next, last)
        components = deepest = 0
        # (where a filter starts, where its enclosing element ends, its
        # depth, whether filters follow it in the same SET)
        pending = [(next, last, 0, False)]
        while pending:
            pos, end, depth, inSet = pending.pop()
            if pos >= end:
                continue
            identifier, start, stop = _element(pdu, pos, end)
            components += 1
            deepest = max(deepest, depth)
            if components > maxComponents or depth > maxDepth:
                break
            if inSet:
                pending.append((stop, end, depth, True))
            if identifier == 0xA0 or identifier == 0xA1:
                pending.append((start, stop, depth + 1, True))
            elif identifier == 0xA2:
                pending.append((start, stop, depth + 1, False))
    except _Unhandled:
        return None
    return FilterShape(components, deepest)


class Control(NamedTuple):
    """
    A control as it travels on the wire.
    """

    oid: str
    criticality: bool
    value: bytes | None


#: Each octet, as bytes: the identifier octets and short lengths encoded,
#: looked up rather than made for every element.
_OCTETS = tuple(bytes((n,)) for n in range(256))


def _length(n: int) -> bytes:
    if n < 0x80:
        return _OCTETS[n]
    encoded = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return _OCTETS[0x80 | len(encoded)] + encoded


def tlv(tag: int, content: bytes) -> bytes:
    """
    @param tag: the identifier octet.
    @param content: the encoded contents.
    @return: one BER element.
    """
    n = len(content)
    if n < 0x80:
        return _OCTETS[tag] + _OCTETS[n] + content
    return _OCTETS[tag] + _length(n) + content


def integer(value: int, tag: int = 0x02) -> bytes:
    """
    @return: a BER INTEGER (or ENUMERATED with C{tag=0x0A}).
    """
    # The fewest octets holding the value and its sign bit (X.690 §8.3.2).
    magnitude = value if value >= 0 else ~value
    return tlv(tag, value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True))


def octetString(value: bytes, tag: int = 0x04) -> bytes:
    """
    @return: a BER OCTET STRING.
    """
    return tlv(tag, value)


def encodeSequence(parts: Iterable[bytes], tag: int = 0x30) -> bytes:
    """
    @return: a constructed element holding the already encoded C{parts}.
    """
    return tlv(tag, b"".join(parts))


class _TaggedStrings(_StrictContext):
    """
    The universal types plus some context-specific primitive tags, each
    decoded as an OCTET STRING that keeps its tag (as the C{[0] OCTET STRING}
    fields of extended-operation values).
    """

    def __init__(self, tags: Iterable[int]) -> None:
        super().__init__()
        self.Identities = {
            **pureber.BERDecoderContext.Identities,
            **{tag: pureber.BEROctetString for tag in tags},
        }


#: The universal primitive types of a flat sequence (L{_flatSequence}).
_PRIMITIVES = {0x02: pureber.BERInteger, 0x0A: pureber.BEREnumerated}


def _flatSequence(data: bytes, tags: tuple[int, ...]) -> list[pureber.BERBase] | None:
    """
    Decode, without ldaptor's generic decoder, the common form of the
    values L{decodeSequence} reads (the Sync State control's, say): a
    SEQUENCE of BOOLEANs, INTEGERs, ENUMERATEDs and OCTET STRINGs, some
    with the context-specific primitive C{tags}.

    @return: the elements, equal to what ldaptor's decoder makes of them;
        or C{None} for anything else (nested elements among them), which
        that decoder is left to handle.
    """
    try:
        identifier, start, stop = _element(data, 0, len(data))
        if identifier != 0x30 or stop != len(data):
            return None
        elements: list[pureber.BERBase] = []
        while start < stop:
            identifier, first, start = _element(data, start, stop)
            if identifier == 0x04 or identifier in tags:
                elements.append(pureber.BEROctetString(data[first:start], tag=identifier))
            elif identifier == 0x01 and start - first == 1:
                elements.append(pureber.BERBoolean(data[first], tag=0x01))
            elif identifier in _PRIMITIVES:
                elements.append(_PRIMITIVES[identifier](_integer(data, first, start),
                                                        tag=identifier))
            else:
                return None
    except _Unhandled:
        return None
    return elements


def decodeSequence(data: bytes, tagged: Iterable[int] = ()) -> list[pureber.BERBase]:
    """
    Decode a control or extended-operation value that is a SEQUENCE.

    @param data: the encoded value.
    @param tagged: context-specific primitive tags (e.g. C{0x80}) its
        elements may have; they are decoded as OCTET STRINGs with that tag.
    @return: the decoded elements of the sequence.
    @raise ValueError: if C{data} is not exactly one well-formed SEQUENCE.
    """
    tags = tuple(tagged)
    elements = _flatSequence(data, tags)
    if elements is not None:
        return elements
    context = _TaggedStrings(tags) if tags else _StrictContext()
    try:
        obj, used = pureber.berDecodeObject(context, data)
    except Exception as e:
        raise ValueError(f"undecodable value: {e}") from None
    if not isinstance(obj, pureber.BERSequence) or used != len(data):
        raise ValueError("value is not a single SEQUENCE")
    return list(obj)


def decodeFilters(data: bytes, sequence: bool = False) -> list[Filter]:
    """
    Decode a control value made of search filters (RFC 4511 §4.5.1.7): the
    Assertion control's one filter (RFC 4528), or the matched values
    control's SEQUENCE OF them (RFC 3876).

    @param data: the encoded value.
    @param sequence: whether it is a SEQUENCE OF filters rather than one.
    @return: the filters, in ldapd's types.
    @raise ValueError: if C{data} is not that, exactly.
    """
    context = pureldap.LDAPBERDecoderContext_Filter(fallback=_StrictContext(),
                                                    inherit=_StrictContext())
    try:
        if sequence:
            tag, start, stop = _element(data, 0, len(data))
            if tag != 0x30 or stop != len(data):
                raise ValueError("not a SEQUENCE OF filters")
            decoded = pureber.berDecodeMultiple(data[start:stop], context)
        else:
            obj, used = pureber.berDecodeObject(context, data)
            if obj is None or used != len(data):
                raise ValueError("not a single filter")
            decoded = [obj]
        return [filterFromLdaptor(f) for f in decoded]
    except _Unhandled:
        raise ValueError("undecodable filter") from None
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"undecodable filter: {e}") from None


def decodeElement(data: bytes) -> tuple[int, bytes]:
    """
    Split a value that is one BER element of a type chosen by its tag (a
    CHOICE, such as the Sync Info message of RFC 4533) into tag and contents.

    @param data: the encoded value.
    @return: the element's identifier octet (with its class and constructed
        bits) and its contents.
    @raise ValueError: if C{data} is not exactly one element with a low tag
        number and a definite length.
    """
    try:
        identifier, start, stop = _element(data, 0, len(data))
    except _Unhandled:
        raise ValueError("value is not a single BER element") from None
    if stop != len(data):
        raise ValueError("value is not a single BER element")
    return identifier, data[start:stop]


def decodeElements(data: bytes) -> list[tuple[int, bytes]]:
    """
    Split the contents of a constructed element (a SEQUENCE's, say) into
    its elements, for values whose nested and context-tagged fields
    L{decodeSequence} does not read (the sort and VLV controls').

    @param data: the contents: zero or more BER elements.
    @return: each element's identifier octet and contents, in order.
    @raise ValueError: if C{data} is not a run of whole elements with low
        tag numbers and definite lengths.
    """
    elements = []
    pos = 0
    while pos < len(data):
        try:
            identifier, start, pos = _element(data, pos, len(data))
        except _Unhandled:
            raise ValueError("value is not a run of BER elements") from None
        elements.append((identifier, data[start:pos]))
    return elements


def encodeMessage(messageId: int, op: bytes, controls: Sequence[Control] = ()) -> bytes:
    """
    @param messageId: the message id.
    @param op: the encoded protocolOp.
    @param controls: response controls.
    @return: the encoded LDAPMessage.
    """
    content = integer(messageId) + op
    if controls:
        content += encodeControls(controls)
    return tlv(0x30, content)


def encodeControls(controls: Iterable[Control]) -> bytes:
    """
    @param controls: controls.
    @return: their encoded C{Controls} (RFC 4511 §4.1.11), with its C{[0]} tag.
    """
    return encodeSequence(
        (
            encodeSequence(
                [octetString(c.oid.encode())]
                + ([b"\x01\x01\xff"] if c.criticality else [])
                + ([octetString(c.value)] if c.value is not None else [])
            )
            for c in controls
        ),
        0xA0,
    )


def encodeResult(
    tag: int,
    resultCode: int,
    matchedDN: bytes = b"",
    message: bytes = b"",
    referrals: Sequence[bytes] = (),
    extra: bytes = b"",
) -> bytes:
    """
    @param tag: the response's application tag (e.g. 0x65 for SearchResultDone).
    @param resultCode: the LDAP result code.
    @param matchedDN: the matched DN.
    @param message: the diagnostic message.
    @param referrals: referral URIs, sent with result code 10.
    @param extra: encoded fields that follow the LDAPResult (SASL credentials,
        extended response name and value).
    @return: the encoded protocolOp.
    """
    content = integer(resultCode, 0x0A) + octetString(matchedDN) + octetString(message)
    if referrals:
        content += encodeSequence((octetString(r) for r in referrals), 0xA3)
    return tlv(tag, content + extra)


def encodeExtendedResponse(
    resultCode: int,
    matchedDN: bytes = b"",
    message: bytes = b"",
    name: bytes | None = None,
    value: bytes | None = None,
) -> bytes:
    """
    @return: an encoded ExtendedResponse (RFC 4511 §4.12).
    """
    extra = b""
    if name is not None:
        extra += octetString(name, 0x8A)
    if value is not None:
        extra += octetString(value, 0x8B)
    return encodeResult(0x78, resultCode, matchedDN, message, extra=extra)


def encodeIntermediateResponse(name: bytes | None = None, value: bytes | None = None) -> bytes:
    """
    @param name: the response's OID (C{responseName}).
    @param value: its value (C{responseValue}).
    @return: an encoded IntermediateResponse (RFC 4511 §4.13), sent while an
        operation is still under way (e.g. RFC 4533's Sync Info message).
    """
    content = b""
    if name is not None:
        content += octetString(name, 0x80)
    if value is not None:
        content += octetString(value, 0x81)
    return tlv(0x79, content)


def encodeSearchEntry(dn: bytes, attributes: Iterable[tuple[bytes, Sequence[bytes]]]) -> bytes:
    """
    @param dn: the entry's name.
    @param attributes: attribute descriptions with their values (empty for typesOnly).
    @return: an encoded SearchResultEntry.
    """
    # The elements of every entry a search sends: calls and generators
    # kept out of the loops.
    octets = _OCTETS
    length = _length
    parts = []
    for name, values in attributes:
        if len(values) == 1:
            v = values[0]
            vals = (b"\x04" + octets[len(v)] if len(v) < 0x80 else b"\x04" + length(len(v))) + v
        else:
            vals = b"".join([
                b"\x04" + octets[len(v)] + v if len(v) < 0x80 else b"\x04" + length(len(v)) + v
                for v in values])
        n = len(name)
        attribute = (b"\x04" + octets[n] if n < 0x80 else b"\x04" + length(n)) + name + tlv(
            0x31, vals)
        parts.append(tlv(0x30, attribute))
    return tlv(0x64, octetString(dn) + tlv(0x30, b"".join(parts)))


def encodeSearchReference(uris: Iterable[bytes]) -> bytes:
    """
    @param uris: the continuation reference's LDAP URLs (at least one).
    @return: an encoded SearchResultReference (RFC 4511 §4.5.3).
    """
    return tlv(0x73, b"".join(octetString(u) for u in uris))


class _KeepsReferral(pureldap.LDAPResult):
    """
    An LDAPResult decoded with its referral field, which ldaptor's own
    decoding drops (and its encoding refuses): C{referral} is the list of
    URIs, or C{None}.
    """

    def toWire(self) -> bytes:
        # The client needs it too: ldaptor's checks with len(), which
        # encodes, whether it has decoded a message.
        return encodeResult(
            self.identification(),
            self.resultCode,
            _bytes(self.matchedDN),
            _bytes(self.errorMessage),
            [_bytes(uri) for uri in self.referral or ()],
        )

    @classmethod
    def fromBER(
        cls, tag: int, content: bytes, berdecoder: pureber.BERDecoderContext | None = None
    ) -> _KeepsReferral:
        # ldaptor decodes LDAPResults in this context, where [3] is a SEQUENCE.
        elements = pureber.berDecodeMultiple(
            content, pureldap.LDAPBERDecoderContext_LDAPBindRequest(fallback=berdecoder)
        )
        if not 3 <= len(elements) <= 4:
            raise ValueError("not an LDAPResult")
        referral = None
        if len(elements) == 4 and isinstance(elements[3], pureber.BERSequence):
            referral = [uri.value for uri in elements[3]]
        return cls(
            resultCode=elements[0].value,
            matchedDN=elements[1].value,
            errorMessage=elements[2].value,
            referral=referral,
            tag=tag,
        )


def _keepingReferral(response: type) -> type:
    return type(response.__name__, (_KeepsReferral, response), {"__module__": __name__})


class IntermediateResponse(pureldap.LDAPProtocolResponse, pureber.BERSequence):
    """
    An IntermediateResponse (RFC 4511 §4.13) as a client decodes it (the
    Sync Info messages of RFC 4533), which ldaptor's decoder lacks.

    @ivar responseName: its OID, or C{None}.
    @ivar responseValue: its value, or C{None}.
    """

    tag = pureber.CLASS_APPLICATION | 0x19

    def __init__(self, responseName: bytes | None = None, responseValue: bytes | None = None,
                 tag: int | None = None) -> None:
        pureber.BERSequence.__init__(self, [], tag=tag)
        self.responseName = responseName
        self.responseValue = responseValue

    def toWire(self) -> bytes:
        return encodeIntermediateResponse(self.responseName, self.responseValue)

    @classmethod
    def fromBER(
        cls, tag: int, content: bytes, berdecoder: pureber.BERDecoderContext | None = None
    ) -> IntermediateResponse:
        fields = {0x80: None, 0x81: None}
        for element in decodeSequence(tlv(0x30, content), fields):
            fields[element.tag] = element.value
        return cls(fields[0x80], fields[0x81], tag)


class _ResponseContext(pureldap.LDAPBERDecoderContext):
    """
    ldaptor's protocolOps, with the results of the operations that may be
    answered with a referral keeping its URIs, and intermediate responses.
    """

    Identities = {
        **pureldap.LDAPBERDecoderContext.Identities,
        IntermediateResponse.tag: IntermediateResponse,
        **{
            response.tag: _keepingReferral(response)
            for response in (
                pureldap.LDAPSearchResultDone,
                pureldap.LDAPModifyResponse,
                pureldap.LDAPAddResponse,
                pureldap.LDAPDelResponse,
                pureldap.LDAPModifyDNResponse,
                pureldap.LDAPCompareResponse,
            )
        },
    }


#: The decoder context for LDAPMessages sent by servers (ldaptor's client
#: context, with referral URIs kept), for the proxy backend's client.
RESPONSE_DECODER = pureldap.LDAPBERDecoderContext_TopLevel(
    inherit=pureldap.LDAPBERDecoderContext_LDAPMessage(
        fallback=_ResponseContext(fallback=pureber.BERDecoderContext()),
        inherit=_ResponseContext(fallback=pureber.BERDecoderContext()),
    )
)


#: The class ldaptor's decoder (L{RESPONSE_DECODER}) gives a SearchResultDone.
_SEARCH_DONE = _ResponseContext.Identities[pureldap.LDAPSearchResultDone.tag]


def _searchEntry(data: bytes, start: int, stop: int) -> pureldap.LDAPSearchResultEntry:
    objectName, next = _octets(data, start, stop)
    identifier, first, last = _element(data, next, stop)
    if identifier != 0x30 or last != stop:
        raise _Unhandled()
    attributes = []
    next = first
    while next < last:
        identifier, first, next = _element(data, next, last)
        if identifier != 0x30:
            raise _Unhandled()
        name, pos = _octets(data, first, next)
        values, pos = _strings(data, 0x31, pos, next)
        if pos != next:
            raise _Unhandled()
        attributes.append((name, values))
    return pureldap.LDAPSearchResultEntry(objectName=objectName, attributes=attributes, tag=0x44)


def _searchDone(data: bytes, start: int, stop: int) -> pureldap.LDAPResult:
    identifier, first, next = _element(data, start, stop)
    if identifier != 0x0A:
        raise _Unhandled()
    resultCode = _integer(data, first, next)
    matchedDN, next = _octets(data, next, stop)
    errorMessage, next = _octets(data, next, stop)
    if next != stop:
        raise _Unhandled()
    return _SEARCH_DONE(resultCode=resultCode, matchedDN=matchedDN, errorMessage=errorMessage,
                        referral=None, tag=0x45)


def _intermediate(data: bytes, start: int, stop: int) -> IntermediateResponse:
    fields: dict[int, bytes | None] = {0x80: None, 0x81: None}
    next = start
    for tag in (0x80, 0x81):
        if next < stop and data[next] == tag:
            _, first, next = _element(data, next, stop)
            fields[tag] = data[first:next]
    if next != stop:
        raise _Unhandled()
    return IntermediateResponse(fields[0x80], fields[0x81], 0x59)


def _controls(data: bytes, start: int, stop: int) -> list[tuple[bytes, Any, bytes | None]]:
    controls: list[tuple[bytes, Any, bytes | None]] = []
    next = start
    while next < stop:
        identifier, first, next = _element(data, next, stop)
        if identifier != 0x30:
            raise _Unhandled()
        controlType, pos = _octets(data, first, next)
        criticality = value = None
        if pos < next and data[pos] == 0x01:
            _, first, pos = _element(data, pos, next)
            if pos - first != 1:
                raise _Unhandled()
            criticality = 0xFF if data[first] else 0
        if pos < next:
            value, pos = _octets(data, pos, next)
        if pos != next:
            raise _Unhandled()
        controls.append((controlType, criticality, value))
    return controls


#: The responses L{decodeResponse} decodes, by identifier octet.
_RESPONSES = {0x64: _searchEntry, 0x65: _searchDone, 0x79: _intermediate}


def decodeResponse(pdu: bytes) -> pureldap.LDAPMessage | None:
    """
    Decode the responses a syncrepl consumer receives by the thousand
    without ldaptor's generic decoder: a SearchResultEntry, an
    IntermediateResponse (RFC 4533's Sync Info) and a SearchResultDone
    without referral, each with or without controls (the Sync State and
    Sync Done controls).

    @param pdu: one complete LDAPMessage.
    @return: the message, equal in every attribute to what ldaptor's decoder
        (L{RESPONSE_DECODER}) makes of it; or C{None} for any other response
        and for anything unusual or malformed, which that decoder is left to
        handle.
    """
    try:
        messageId, next, stop = _messageStart(pdu)
        identifier, first, next = _element(pdu, next, stop)
        decode = _RESPONSES.get(identifier)
        if decode is None:
            return None
        response = decode(pdu, first, next)
        controls = _trailingControls(pdu, next, stop)
    except _Unhandled:
        return None
    return pureldap.LDAPMessage(id=messageId, value=response, controls=controls, tag=0x10)


#: The response tag of each request tag, for answering a request that
#: could not be decoded.
RESPONSE_TAGS = {
    0x60: 0x61,  # bind
    0x63: 0x65,  # search
    0x66: 0x67,  # modify
    0x68: 0x69,  # add
    0x4A: 0x6B,  # delete
    0x6C: 0x6D,  # modify DN
    0x6E: 0x6F,  # compare
    0x77: 0x78,  # extended
}

#: The OID of the unsolicited Notice of Disconnection (RFC 4511 §4.4.1).
NOTICE_OF_DISCONNECTION = b"1.3.6.1.4.1.1466.20036"
