"""
An extended operation: "what time is it?", answered with the server's
current time as a GeneralizedTime (C{20260101120000Z}), under an OID of
the arc IANA keeps for documentation (RFC 5612).

A plugin registers it through its host::

    [[plugin]]
    name = "examples.extending.clock:CurrentTimeFactory"

or an installed package through an entry point, without a plugin::

    [options.entry_points]
    ldapd.extended =
        clock = examples.extending.clock:CURRENT_TIME_OPERATION

Either way the root DSE lists it in C{supportedExtension}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ldaptor.protocols.ldap import ldaperrors
from zope.interface import implementer

from ldapd.extensions import ExtendedOperation, ExtendedOutcome
from ldapd.gentime import formatTime
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin
from ldapd.operation import Operation
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.requests import ExtendedRequest

if TYPE_CHECKING:
    from ldapd.directory import Directory

__all__ = ["CURRENT_TIME", "CURRENT_TIME_OPERATION", "CurrentTime", "CurrentTimeFactory",
           "currentTime"]

#: The request name, which the response names too.
CURRENT_TIME = "1.3.6.1.4.1.32473.1.1"


async def currentTime(directory: Directory, op: Operation) -> ExtendedOutcome:
    """
    Answer the server's time, by its reactor's clock.

    @param directory: the directory that received the request.
    @param op: the operation; its request is an L{ExtendedRequest}.
    @return: the outcome: the OID as response name, the time as value.
    @raise ldaperrors.LDAPProtocolError: for a request with a value.
    """
    assert isinstance(op.request, ExtendedRequest)
    if op.request.value is not None:
        raise ldaperrors.LDAPProtocolError("the current time request takes no value")
    return ExtendedOutcome(name=CURRENT_TIME.encode("ascii"),
                           value=formatTime(directory.reactor.seconds()))


#: The registration, for a plugin's host or an entry point.
CURRENT_TIME_OPERATION = ExtendedOperation(CURRENT_TIME, currentTime)


@implementer(IOperationPlugin)
class CurrentTime:
    """
    Carries out the current time extended operation.
    """

    name = "clock"

    def attach(self, host: PluginHost) -> None:
        """
        Register the extended operation.
        """
        host.addExtendedOperation(CURRENT_TIME_OPERATION)


class CurrentTimeFactory:
    """
    Builds L{CurrentTime} from a C{[[plugin]]} table, which has no keys of
    its own.
    """

    name = "clock"
    description = "An extended operation that answers the server's current time."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> CurrentTime:
        """
        @raise ldapd.registry.ConfigError: for any key.
        """
        ConfigTable(table, context, ())
        return CurrentTime()
