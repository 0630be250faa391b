"""
TLS: the server's certificate, key and protocol policy, shared by LDAPS
(C{ssl:} listeners) and StartTLS (RFC 4511 §4.14, RFC 4513 §3).

L{ServerTLS} builds the OpenSSL context from C{[server] tls} and hands a
new TLS connection to each client; L{ServerTLS.reload} reads the files
again, so that new connections get a renewed certificate without a restart
(C{twist ldapd} calls it on SIGHUP). L{serverEndpoint} turns the configured
listener strings into endpoints, wrapping C{ssl:} ones with this context
rather than with certificate files named in the string.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ldaptor.protocols.ldap import ldaperrors
from OpenSSL import SSL
from twisted.internet import endpoints, interfaces
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from ldapd.extensions import ExtendedOutcome
from ldapd.operation import ANONYMOUS, Operation
from ldapd.registry import ConfigContext, ConfigError, ConfigTable
from ldapd.requests import START_TLS, StartTLSRequest

if TYPE_CHECKING:
    from ldapd.directory import Directory

__all__ = [
    "DEFAULT_CIPHERS",
    "ClientCertificates",
    "ServerTLS",
    "TLSError",
    "TLSServerEndpoint",
    "TLSSettings",
    "serverEndpoint",
    "startTLS",
    "tlsFromConfig",
]

#: The TLS 1.2 cipher suites offered by default: Mozilla's "intermediate"
#: list, forward-secret AEAD suites only. TLS 1.3 suites are all strong and
#: always on.
DEFAULT_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)

_VERSIONS = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}
_TLS_KEYS = {"certificate", "private_key", "ca_certificates", "client_certificates",
             "min_version", "ciphers"}


class TLSError(Exception):
    """
    The certificate, key or CA files cannot be used; the message says which
    and why.
    """


class ClientCertificates(Enum):
    """
    Whether clients are asked for a certificate.

    @cvar NONE: they are not asked.
    @cvar OPTIONAL: they are asked; one that sends a certificate the CAs
        did not issue is refused, one that sends none is served.
    @cvar REQUIRED: a client without a valid certificate is refused.
    """

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class TLSSettings:
    """
    The C{[server] tls} table.

    @ivar certificate: a PEM file: the server's certificate, then any
        intermediate CA certificates.
    @ivar privateKey: a PEM file holding the certificate's unencrypted key.
    @ivar caCertificates: a PEM file of the CAs that issue client
        certificates, or C{None}.
    @ivar clientCertificates: whether to ask clients for certificates.
    @ivar minimumVersion: the oldest protocol accepted, C{"TLSv1.2"} or
        C{"TLSv1.3"}.
    @ivar ciphers: the TLS 1.2 cipher suites, an OpenSSL cipher string.
    """

    certificate: Path
    privateKey: Path
    caCertificates: Path | None = None
    clientCertificates: ClientCertificates = ClientCertificates.NONE
    minimumVersion: str = "TLSv1.2"
    ciphers: str = DEFAULT_CIPHERS


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise TLSError(f"cannot read the {what} {path}: {e.strerror}") from None


def _certificates(path: Path, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(_read(path, what))
    except ValueError as e:
        raise TLSError(f"no PEM certificate in the {what} {path}: {e}") from None


def _context(settings: TLSSettings) -> SSL.Context:
    """
    Load the files and build the server's context, so that any problem
    shows now rather than at a client's handshake.

    @raise TLSError: if a file is missing or wrong, or the key does not
        belong to the certificate.
    """
    chain = _certificates(settings.certificate, "certificate")
    try:
        key = serialization.load_pem_private_key(
            _read(settings.privateKey, "private key"), password=None
        )
    except (ValueError, TypeError) as e:
        raise TLSError(f"cannot load the private key {settings.privateKey}: {e}") from None
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(_VERSIONS[settings.minimumVersion])
    context.set_options(
        SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_RENEGOTIATION
        | SSL.OP_SINGLE_DH_USE | SSL.OP_SINGLE_ECDH_USE
    )
    try:
        context.set_cipher_list(settings.ciphers.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError):
        raise TLSError(f"no cipher suite OpenSSL knows in {settings.ciphers!r}") from None
    try:
        context.use_certificate(chain[0])
        for intermediate in chain[1:]:
            context.add_extra_chain_cert(intermediate)
        context.use_privatekey(key)  # type: ignore[arg-type]
        context.check_privatekey()
    except SSL.Error as e:
        raise TLSError(
            f"cannot use {settings.certificate} with {settings.privateKey}: {e}"
        ) from None
    # OpenSSL resumes sessions only for a context with a session id
    # context, and refuses to when it verifies clients without one.
    context.set_session_id(b"ldapd")
    if settings.clientCertificates is not ClientCertificates.NONE:
        if settings.caCertificates is None:
            raise TLSError("client certificates need the CA certificates that issue them")
        authorities = _certificates(settings.caCertificates, "CA certificates")
        try:
            context.load_verify_locations(str(settings.caCertificates))
        except SSL.Error as e:
            raise TLSError(f"cannot use the CA certificates {settings.caCertificates}: {e}") from None
        for authority in authorities:
            # Tell clients which CAs are accepted, so that they pick the
            # right certificate to send.
            context.add_client_ca(authority)
        mode = SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE
        if settings.clientCertificates is ClientCertificates.REQUIRED:
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        context.set_verify(mode)
    return context


@implementer(interfaces.IOpenSSLServerConnectionCreator)
class ServerTLS:
    """
    Makes the server side of each TLS connection, for LDAPS listeners and
    StartTLS alike.

    @ivar settings: what it was built from.
    """

    def __init__(self, settings: TLSSettings) -> None:
        """
        @param settings: the certificate, key and policy.
        @raise TLSError: if the files cannot be used.
        """
        self.settings = settings
        self._context = _context(settings)

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """
        @return: a new server-side TLS connection with the current certificate.
        """
        return SSL.Connection(self._context, None)

    def reload(self) -> None:
        """
        Read the certificate, key and CA files again; connections made from
        now on use them. On failure the current ones stay in use.

        @raise TLSError: if the files cannot be used.
        """
        self._context = _context(self.settings)

    def adopt(self, other: ServerTLS) -> None:
        """
        Take another's settings and loaded files: connections made from
        now on use them. A reload hands the new configuration's TLS to the
        one the running listeners and StartTLS hold this way.

        @param other: the TLS built from the new configuration.
        """
        self.settings = other.settings
        self._context = other._context


def tlsFromConfig(table: dict[str, Any], context: ConfigContext) -> ServerTLS:
    """
    Build the server's TLS from the C{[server] tls} table.

    @param table: the table.
    @param context: where it is (C{server.tls}), for relative paths and
        error messages.
    @return: the loaded TLS.
    @raise ConfigError: naming the key that is wrong.
    """
    config = ConfigTable(table, context, _TLS_KEYS)

    def path(key: str) -> Path | None:
        value = config.string(key)
        return context.resolvePath(value) if value is not None else None

    mode = config.choice("client_certificates", [c.value for c in ClientCertificates], "none")
    clientCertificates = ClientCertificates(mode)
    minimumVersion = config.choice("min_version", _VERSIONS, "TLSv1.2")
    caCertificates = path("ca_certificates")
    if clientCertificates is not ClientCertificates.NONE and caCertificates is None:
        raise context.error(
            "ca_certificates", f"is required with client_certificates = {mode!r}"
        )
    settings = TLSSettings(
        certificate=context.resolvePath(config.required("certificate", str)),
        privateKey=context.resolvePath(config.required("private_key", str)),
        caCertificates=caCertificates,
        clientCertificates=clientCertificates,
        minimumVersion=minimumVersion,  # type: ignore[arg-type]
        ciphers=config.string("ciphers", DEFAULT_CIPHERS),
    )
    try:
        return ServerTLS(settings)
    except TLSError as e:
        raise ConfigError(f"{context.path or '<config>'}: {context.where}: {e}") from None


@implementer(interfaces.IStreamServerEndpoint)
class TLSServerEndpoint:
    """
    Listens on another endpoint and speaks TLS on every connection it accepts.
    """

    def __init__(self, wrapped: interfaces.IStreamServerEndpoint, tls: ServerTLS) -> None:
        """
        @param wrapped: the endpoint to listen on (TCP, for LDAPS).
        @param tls: makes each connection's TLS.
        """
        self._wrapped = wrapped
        self._tls = tls

    def listen(self, protocolFactory: Any) -> Any:
        """
        @return: what the wrapped endpoint's C{listen} returns.
        """
        return self._wrapped.listen(TLSMemoryBIOFactory(self._tls, False, protocolFactory))


def serverEndpoint(reactor: Any, description: str, tls: ServerTLS | None) -> Any:
    """
    Build the endpoint of a listener string. An C{ssl:} listener takes its
    certificate and policy from C{tls}; the string itself gives only the
    port, interface and backlog, as a C{tcp:} one does.

    @param reactor: the reactor.
    @param description: a Twisted server endpoint string.
    @param tls: the server's TLS, or C{None} if none is configured.
    @return: an C{IStreamServerEndpoint}.
    @raise ValueError: if the string is invalid, or is an C{ssl:} listener
        without C{tls} or with certificate arguments.
    """
    kind, _, rest = description.partition(":")
    if kind != "ssl":
        try:
            return endpoints.serverFromString(reactor, description)
        except (TypeError, KeyError) as e:
            raise ValueError(str(e)) from None
    if tls is None:
        raise ValueError("an ssl: listener needs [server] tls")
    try:
        tcp = endpoints.serverFromString(reactor, "tcp:" + rest)
    except TypeError:
        raise ValueError(
            "an ssl: listener takes its certificate from [server] tls; "
            "give only the port, interface and backlog"
        ) from None
    except KeyError as e:
        raise ValueError(str(e)) from None
    return TLSServerEndpoint(tcp, tls)


async def startTLS(directory: Directory, op: Operation) -> ExtendedOutcome:
    """
    The StartTLS extended operation (RFC 4511 §4.14): the success response
    is sent in the clear, then the TLS handshake starts. As slapd does, a
    connection that was bound becomes anonymous.

    @raise ldaperrors.LDAPProtocolError: if the request has a value, or TLS
        is not configured.
    @raise ldaperrors.LDAPOperationsError: if TLS is already on, or other
        requests are outstanding.
    """
    assert isinstance(op.request, StartTLSRequest)
    if op.request.value is not None:
        raise ldaperrors.LDAPProtocolError("no request value expected")
    connection = op.connection
    if connection.startTLS is None:
        raise ldaperrors.LDAPProtocolError("TLS is not configured")
    if connection.secure:
        raise ldaperrors.LDAPOperationsError("TLS already started")
    connection.startTLS(op)
    connection.identity = ANONYMOUS
    return ExtendedOutcome(name=START_TLS.encode())
