"""
A control: the Authorization Identity Request and Response controls (RFC
3829). A client that sends the request control with a Bind gets, with a
successful result, a response control carrying the identity it is now
known by (C{dn:...}), or an empty value for an anonymous bind: what
OpenLDAP's clients print with C{-e authzid}::

    [[plugin]]
    name = "examples.extending.authzid:AuthorizationIdentityFactory"

    $ ldapwhoami -x -H ldap://127.0.0.1:10389 -e authzid \\
        -D uid=alice,ou=people,dc=example,dc=com -w alice-secret
    # authzid: dn:uid=alice,ou=people,dc=example,dc=com
    dn:uid=alice,ou=people,dc=example,dc=com

The plugin registers the request control through its host (which makes
the root DSE list it in C{supportedControl}) and answers it in a
C{post_bind} hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zope.interface import implementer

from ldapd.extensions import Control, ControlType
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin
from ldapd.operation import Operation
from ldapd.registry import ConfigContext, ConfigTable

__all__ = [
    "AUTHZID_REQUEST",
    "AUTHZID_RESPONSE",
    "AuthorizationIdentity",
    "AuthorizationIdentityFactory",
    "AuthorizationIdentityRequest",
]

#: The request control's OID.
AUTHZID_REQUEST = "2.16.840.1.113730.3.4.16"
#: The response control's OID.
AUTHZID_RESPONSE = "2.16.840.1.113730.3.4.15"


@dataclass(frozen=True)
class AuthorizationIdentityRequest:
    """
    The decoded request control, as the plugin finds it in
    C{op.controls}.

    @ivar criticality: whether the client marked it critical.
    """

    criticality: bool = False


def decodeRequest(value: bytes | None, critical: bool) -> AuthorizationIdentityRequest:
    """
    Decode the request control, which has no value (RFC 3829 §3).

    @raise ValueError: if it has one; the Bind fails with protocolError.
    """
    if value is not None:
        raise ValueError("the authorization identity request control takes no value")
    return AuthorizationIdentityRequest(critical)


#: The registration: a Bind may carry the request control.
REQUEST_CONTROL = ControlType(AUTHZID_REQUEST, decodeRequest, frozenset({"bind"}))


@implementer(IOperationPlugin)
class AuthorizationIdentity:
    """
    Answers the Authorization Identity Request control.
    """

    name = "authzid"

    def attach(self, host: PluginHost) -> None:
        """
        Register the request control.
        """
        host.addControl(REQUEST_CONTROL)

    def post_bind(self, op: Operation, resultCode: int) -> None:
        """
        Add the response control to a successful Bind that asked for it.

        C{op.identity} is who the client was when the Bind arrived; the
        Bind has set the connection's identity by now.
        """
        if resultCode == 0 and AUTHZID_REQUEST in op.controls:
            authzId = op.connection.identity.authzId.encode("utf-8")
            op.responseControls.append(Control(AUTHZID_RESPONSE, False, authzId))


class AuthorizationIdentityFactory:
    """
    Builds L{AuthorizationIdentity} from a C{[[plugin]]} table, which has
    no keys of its own.
    """

    name = "authzid"
    description = "The Authorization Identity Request and Response controls (RFC 3829)."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> AuthorizationIdentity:
        """
        @raise ldapd.registry.ConfigError: for any key.
        """
        ConfigTable(table, context, ())
        return AuthorizationIdentity()
