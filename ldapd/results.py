"""
The one mapping from exceptions to LDAP results.

Code everywhere raises ldaptor's C{ldaperrors} exceptions (or
L{NoSuchObject}, which carries the matched DN, and L{Referral}, which carries
the referral URIs); this module turns whatever an operation ended with into
the result code, matched DN, message and referral that go on the wire.
Unexpected exceptions are logged with their traceback and answered C{other}
(80), never protocolError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python.failure import Failure

from ldapd._codec import Control
from ldapd.dn import DN, InvalidDN

__all__ = ["NoSuchObject", "Outcome", "Referral", "Reply", "Result", "SUCCESS", "resultName", "resultOf"]

#: Sends one protocolOp (already encoded) of the current operation, with
#: response controls.
Reply = Callable[[bytes, Sequence[Control]], None]

_log = Logger()


class NoSuchObject(ldaperrors.LDAPNoSuchObject):
    """
    noSuchObject (32), with the DN of the deepest existing superior.

    @ivar matchedDN: that DN, or C{None} when nothing of the name exists.
    """

    def __init__(self, message: str, matchedDN: DN | None = None) -> None:
        super().__init__(message)
        self.matchedDN = matchedDN


class Referral(ldaperrors.LDAPReferral):
    """
    referral (10): the operation must be sent elsewhere (RFC 4511 §4.1.10).

    @ivar uris: the LDAP URLs to send it to (at least one).
    @ivar matchedDN: the DN of the referral object, or C{None}.
    """

    def __init__(self, uris: tuple[str, ...], message: str = "",
                 matchedDN: DN | None = None) -> None:
        super().__init__(message)
        self.uris = uris
        self.matchedDN = matchedDN


class Result(NamedTuple):
    """
    An LDAPResult's fields (RFC 4511 §4.1.9).
    """

    code: int
    matchedDN: str = ""
    message: str = ""
    referrals: tuple[str, ...] = ()


#: The result of an operation that succeeded.
SUCCESS = Result(0)


@dataclass
class Outcome:
    """
    How a request handler ended, for its final response.

    @ivar result: the result.
    @ivar extra: the encoded fields the response has after the result's
        (an extended response's name and value).
    @ivar controls: the response controls.
    """

    result: Result = SUCCESS
    extra: bytes = b""
    controls: Sequence[Control] = ()


#: The names of the result codes ldaptor does not know (RFC 3909's Cancel).
_NAMES = {118: "canceled", 119: "noSuchOperation", 120: "tooLate", 121: "cannotCancel"}


def resultName(code: int) -> str:
    """
    @param code: an LDAP result code.
    @return: its name in RFC 4511's ASN.1 (C{"success"},
        C{"invalidCredentials"}), or the number as text for a code that has
        no name.
    """
    known = ldaperrors.reverse.get(code)
    if known is not None:
        return known.name.decode("ascii")  # type: ignore[no-any-return]
    return _NAMES.get(code, str(code))


def _text(message: object) -> str:
    if message is None:
        return ""
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)


def resultOf(reason: Failure | BaseException, timedOut: bool = False) -> Result:
    """
    The LDAP result for an operation that failed.

    @param reason: what the operation failed with.
    @param timedOut: whether the operation's time limit had expired (its
        Deferred is then cancelled, and the cancellation means timeLimitExceeded).
    @return: the result to send.
    """
    error = reason.value if isinstance(reason, Failure) else reason
    if isinstance(error, ldaperrors.LDAPUnknownError):
        return Result(error.code, "", _text(error.message))
    if isinstance(error, ldaperrors.LDAPException) and error.resultCode is not None:
        matched = getattr(error, "matchedDN", None)
        uris = error.uris if isinstance(error, Referral) else ()
        return Result(error.resultCode, str(matched) if matched else "", _text(error.message),
                      uris)
    if isinstance(error, InvalidDN):
        return Result(ldaperrors.LDAPInvalidDNSyntax.resultCode, "", "invalid DN")
    if isinstance(error, CancelledError) and timedOut:
        return Result(ldaperrors.LDAPTimeLimitExceeded.resultCode, "", "time limit exceeded")
    failure = reason if isinstance(reason, Failure) else Failure(error)
    _log.failure("unexpected error while processing an operation", failure)
    return Result(ldaperrors.LDAPOther.resultCode, "", "internal error")
