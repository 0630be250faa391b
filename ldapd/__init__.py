"""
ldapd: an LDAPv3 directory server framework for Twisted.

Run it with C{twist ldapd --config ldapd.toml}, or embed it: build a
L{Directory} of L{Database}s and serve it with L{LDAPServerFactory} on any
stream endpoint.
"""

from ldapd._version import __version__
from ldapd.directory import Database, Directory
from ldapd.limits import Limits
from ldapd.protocol import LDAPServerFactory

__all__ = ["Database", "Directory", "LDAPServerFactory", "Limits", "__version__"]
