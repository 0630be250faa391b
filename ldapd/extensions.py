"""
The controls and extended operations a directory supports: registered by OID,
by ldapd's core and by plugins in the same way (through the plugin host,
L{ldapd.host.PluginHost}), or by third-party packages through the
C{ldapd.controls} and C{ldapd.extended} entry points.

A response control, which plugins add to C{op.responseControls}, is a
L{Control} (re-exported here from the codec).

What is registered is what the root DSE advertises (C{supportedControl},
C{supportedExtension}, C{supportedFeatures}) and all a request's controls
are decoded with: a critical control nobody registered, or registered for
other operations, fails the request with unavailableCriticalExtension (12);
a non-critical one is ignored (RFC 4511 §4.1.11).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Sequence

from ldaptor.protocols.ldap import ldaperrors

from ldapd._codec import Control
from ldapd.requests import RawControl

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory
    from ldapd.operation import Operation

__all__ = [
    "Control",
    "ControlType",
    "ExtendedOperation",
    "ExtendedOutcome",
    "Extensions",
    "RegistrationError",
    "SearchHandler",
    "UpdateHandler",
]

#: Takes over a search that carries a control (a syncrepl or persistent
#: search): called with the operation, the function that sends each
#: response, the database and the decoded control; returns the response
#: controls of the SearchResultDone, or C{None} to leave the search to run
#: as an ordinary one.
SearchHandler = Callable[
    ["Operation", Callable[..., None], "Database", Any], Awaitable["Sequence[Control] | None"]
]

#: Takes over an update (add, delete, modify, modify DN) that carries a
#: control, as the transaction specification control (RFC 5805) queues the
#: update into its transaction: called with the directory, the operation
#: and the decoded control; returns when it has taken the update, which the
#: client is then told succeeded, or raises an LDAP error refusing it. The
#: plugins' post hooks run when the update is carried out, not then.
UpdateHandler = Callable[["Directory", "Operation", Any], Awaitable[None]]


@dataclass(frozen=True)
class ControlType:
    """
    A request control the directory understands.

    @ivar oid: its OID.
    @ivar decode: called with the control's value (C{None} when absent) and
        its criticality; returns the typed control object operations carry
        in L{Operation.controls<ldapd.operation.Operation.controls>}, or
        raises C{ValueError} saying why the value is malformed
        (protocolError).
    @ivar operations: the operations it applies to
        (L{ldapd.requests.Request.operation}: C{"search"}, C{"bind"}, ...);
        on others it is unknown.
    @ivar search: what carries out a search that has it, if it changes
        what a search does (L{SearchHandler}); C{None} for controls that
        plugins' hooks or the search itself read.
    @ivar update: what takes over an update that has it (L{UpdateHandler}),
        or C{None}.
    @ivar advertised: whether the root DSE lists it in C{supportedControl}.
    """

    oid: str
    decode: Callable[[bytes | None, bool], object]
    operations: frozenset[str]
    search: SearchHandler | None = None
    advertised: bool = True
    update: UpdateHandler | None = None


@dataclass(frozen=True)
class ExtendedOutcome:
    """
    The result of an extended operation.

    @ivar name: the responseName, or C{None}.
    @ivar value: the response value, or C{None}.
    @ivar error: the LDAP error the operation failed with, for one whose
        failure still carries a response value (End Transaction names the
        update that failed); C{None} when it succeeded. An operation that
        fails with nothing more to say raises the error instead.
    """

    name: bytes | None = None
    value: bytes | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class ExtendedOperation:
    """
    An extended operation the directory carries out.

    @ivar oid: its request name.
    @ivar handler: called with the directory and the operation (whose
        C{request} is an L{ldapd.requests.ExtendedRequest}, or its own type
        for those ldapd's codec decodes); returns (through an awaitable) an
        L{ExtendedOutcome}, or raises an LDAP error. C{None} for one the
        protocol carries out itself (Cancel, which acts on the
        connection's other operations).
    """

    oid: str
    handler: Callable[[Directory, Operation], Awaitable[ExtendedOutcome]] | None


class RegistrationError(ValueError):
    """
    Two registrations conflict (the same OID twice, two server IDs).
    """


class Extensions:
    """
    The registered controls, extended operations and features of a
    directory.
    """

    def __init__(self) -> None:
        self._controls: dict[str, ControlType] = {}
        self._extended: dict[str, ExtendedOperation] = {}
        self._features: list[str] = []

    def addControl(self, control: ControlType) -> None:
        """
        Register a request control.

        @raise RegistrationError: if its OID is registered already.
        """
        if control.oid in self._controls:
            raise RegistrationError(f"control {control.oid} is registered twice")
        self._controls[control.oid] = control

    def addExtendedOperation(self, operation: ExtendedOperation) -> None:
        """
        Register an extended operation.

        @raise RegistrationError: if its OID is registered already.
        """
        if operation.oid in self._extended:
            raise RegistrationError(f"extended operation {operation.oid} is registered twice")
        self._extended[operation.oid] = operation

    def addFeature(self, oid: str) -> None:
        """
        Register a feature the root DSE lists in C{supportedFeatures}.
        """
        if oid not in self._features:
            self._features.append(oid)

    def control(self, oid: str) -> ControlType | None:
        """
        @return: the registration of a control, or C{None}.
        """
        return self._controls.get(oid)

    def extendedOperation(self, oid: str) -> ExtendedOperation | None:
        """
        @return: the registration of an extended operation, or C{None}.
        """
        return self._extended.get(oid)

    @property
    def supportedControls(self) -> list[str]:
        """
        The OIDs of the advertised controls, sorted.
        """
        return sorted(oid for oid, c in self._controls.items() if c.advertised)

    @property
    def supportedExtensions(self) -> list[str]:
        """
        The OIDs of the extended operations, in registration order.
        """
        return list(self._extended)

    @property
    def supportedFeatures(self) -> list[str]:
        """
        The OIDs of the features, in registration order.
        """
        return list(self._features)

    def decodeControls(self, raw: Iterable[RawControl], operation: str) -> dict[str, object]:
        """
        Decode the controls of a request.

        @param raw: the controls as the client sent them.
        @param operation: the request's operation (C{"search"}, ...).
        @return: the decoded controls the operation should honour, by OID.
        @raise ldaperrors.LDAPUnavailableCriticalExtension: for a critical
            control that is unknown or does not apply to the operation.
        @raise ldaperrors.LDAPProtocolError: for a control given twice or
            with a value that cannot be decoded.
        """
        decoded: dict[str, object] = {}
        for oid, critical, value in raw:
            known = self._controls.get(oid)
            if known is None or operation not in known.operations:
                if critical:
                    raise ldaperrors.LDAPUnavailableCriticalExtension(
                        "critical extension is not recognized"
                    )
                continue
            if oid in decoded:
                raise ldaperrors.LDAPProtocolError(f"control {oid} given more than once")
            try:
                decoded[oid] = known.decode(value, critical)
            except ValueError as e:
                raise ldaperrors.LDAPProtocolError(f"control {oid}: {e}") from None
        return decoded
