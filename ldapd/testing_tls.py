"""
A throw-away certificate authority for tests of TLS: it writes a CA, server
and client certificates with their keys into a folder, valid for a day, so
that no key is ever committed.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ldapd.dn import DN

__all__ = ["CertificateAuthority"]

_VALIDITY = datetime.timedelta(days=1)

_TYPES = {
    "cn": NameOID.COMMON_NAME,
    "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "o": NameOID.ORGANIZATION_NAME,
    "dc": NameOID.DOMAIN_COMPONENT,
    "uid": NameOID.USER_ID,
    "c": NameOID.COUNTRY_NAME,
    "l": NameOID.LOCALITY_NAME,
    "st": NameOID.STATE_OR_PROVINCE_NAME,
    "emailaddress": NameOID.EMAIL_ADDRESS,
}


def _name(subject: str) -> x509.Name:
    """
    @param subject: a DN in RFC 4514 form, most specific RDN first.
    @return: the X.509 name, whose RDNs go the other way.
    """
    return x509.Name([
        x509.RelativeDistinguishedName(
            [x509.NameAttribute(_TYPES[ava.type.lower()], ava.value) for ava in rdn]
        )
        for rdn in reversed(list(DN.parse(subject)))
    ])


class CertificateAuthority:
    """
    A certificate authority in a folder.

    @ivar folder: where the files are written.
    @ivar caCertificate: the CA's certificate (PEM file).
    """

    def __init__(self, folder: Path, name: str = "ldapd test CA") -> None:
        """
        @param folder: an existing folder, private to the test.
        @param name: the CA's common name; two CAs with different names
            do not trust each other's certificates.
        """
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._name = subject
        self._ca = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.caCertificate = folder / f"{name.replace(' ', '-')}.pem"
        self.caCertificate.write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))

    def issue(self, fileName: str, subject: str, server: bool = False) -> tuple[Path, Path]:
        """
        Issue a certificate and write it and its key.

        @param fileName: the base name of the files (C{.pem} and C{.key}).
        @param subject: the subject DN in RFC 4514 form, e.g.
            C{cn=alice,ou=people,dc=example,dc=com}.
        @param server: whether it is a server certificate, for C{localhost}
            and C{127.0.0.1}; otherwise it is a client certificate.
        @return: the certificate's path and the key's.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        certificate = builder.sign(self._key, hashes.SHA256())
        certPath = self.folder / f"{fileName}.pem"
        keyPath = self.folder / f"{fileName}.key"
        certPath.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        keyPath.touch(mode=0o600)
        keyPath.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return certPath, keyPath
