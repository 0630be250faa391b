"""
The access policy a directory has when no access-control plugin is configured.

It is the policy of Debian's stock slapd configuration: the root DN may do
anything; everyone may read, except C{userPassword} and the password history
(C{pwdHistory}, old passwords), which only their owner (and the root DN) may
read, compare or test in a filter; an owner may change C{userPassword} (and
prove the old one to change it); nothing else may be written by anyone but the
root DN. The private views plugins serve (the retro changelog C{cn=changelog},
as in 389 Directory Server, and C{cn=Monitor}:
L{ldapd.directory.Directory.addPrivateDatabase}) only the root DN may read.
Configure the C{acl} plugin for anything finer.
"""

from __future__ import annotations

from typing import Any

from ldaptor.protocols.ldap import ldaperrors
from zope.interface import implementer

from ldapd._cache import LRU
from ldapd.dn import DN
from ldapd.entry import Entry, Modification, parseDescription
from ldapd.filters import withoutAssertionsOn
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin
from ldapd.operation import Operation
from ldapd.passwordcheck import PasswordCheck
from ldapd.registry import ConfigTable
from ldapd.results import NoSuchObject
from ldapd.schema import AttributeType, Schema

__all__ = ["DefaultAccess", "DefaultAccessFactory"]


@implementer(IOperationPlugin)
class DefaultAccess:
    """
    Root writes, everyone reads, C{userPassword} and C{pwdHistory} are private
    to their owner, private views are the root DN's.

    @ivar directory: the directory served, once attached: it says which
        views are private.
    """

    name = "defaultaccess"
    controlsAccess = True

    def __init__(self, schema: Schema) -> None:
        """
        @param schema: the directory's schema.
        """
        self.schema = schema
        self._writable = _subtypes(schema, "userPassword")
        self._private = self._writable | _subtypes(schema, "pwdHistory")
        self._withheld: LRU[Entry, Entry] = LRU(4096)
        self.directory: Any = None

    def attach(self, host: PluginHost) -> None:
        """
        Remember the host's directory, whose private views the policy keeps
        to the root DN.
        """
        self.directory = host.directory

    def _privileged(self, op: Operation, ndn: DN | None = None) -> bool:
        return op.internal or op.identity.isRoot or (
            ndn is not None and op.identity.ndn is not None and op.identity.ndn == ndn
        )

    def _refuse(self, op: Operation) -> None:
        if not (op.internal or op.identity.isRoot):
            raise ldaperrors.LDAPInsufficientAccessRights("no write access to parent or entry")

    def pre_add(self, op: Operation, entry: Entry) -> None:
        self._refuse(op)

    def pre_delete(self, op: Operation, ndn: DN) -> None:
        self._refuse(op)

    def pre_rename(self, op: Operation, ndn: DN, *args: Any) -> None:
        self._refuse(op)

    def pre_modify(self, op: Operation, modifications: list[Modification], ndn: DN) -> None:
        """
        Allow the root DN anything, and a user to change their own password.
        """
        if self._privileged(op) or op.identity.ndn != ndn:
            self._refuse(op)
            return
        for mod in modifications:
            at, _ = parseDescription(self.schema, mod.description)
            if at not in self._writable:
                raise ldaperrors.LDAPInsufficientAccessRights(
                    f"no write access to attribute {mod.description}"
                )

    def pre_authenticate(self, op: Operation, check: PasswordCheck) -> None:
        """
        Anyone may bind; only the owner (and the root DN) may have the old
        password of a change checked, as only they may change it. A refusal
        is the invalidCredentials a wrong password gets, before the
        password is looked at.
        """
        if not check.isBind and not self._privileged(op, check.ndn):
            raise ldaperrors.LDAPInvalidCredentials()

    def _hidden(self, op: Operation, ndn: DN) -> bool:
        return (self.directory is not None and self.directory.privateSuffix(ndn) is not None
                and not self._privileged(op))

    def pre_compare(self, op: Operation, ndn: DN, at: AttributeType, value: bytes) -> None:
        if self._hidden(op, ndn):
            raise NoSuchObject("no such object")
        if at in self._private and not self._privileged(op, ndn):
            raise ldaperrors.LDAPInsufficientAccessRights("no compare access to attribute")

    def disclose_entry(self, op: Operation, entry: Entry) -> bool:
        """
        Every entry may be named to a client but those of private views.
        """
        return not self._hidden(op, entry.ndn)

    def pre_search(self, op: Operation, ndn: DN) -> None:
        """
        A search based in a private view is noSuchObject to all but the
        root DN, whether the base exists or not; assertions on
        C{userPassword} are Undefined to all but the root DN.
        """
        if self._hidden(op, ndn):
            raise NoSuchObject("no such object")
        if op.search is not None and not self._privileged(op):
            op.search.filter = withoutAssertionsOn(op.search.filter, self._private)

    def filter_entry(self, op: Operation, entry: Entry) -> Entry | None:
        """
        Withhold the entries of private subtrees and leave C{userPassword}
        out of entries others read. Entries are
        immutable, so the copy made for an entry is made once while it stays
        in a cache, and its encoding can be reused too.
        """
        if self._privileged(op, entry.ndn):
            return entry
        if self._hidden(op, entry.ndn):
            return None
        filtered = self._withheld.get(entry)
        if filtered is None:
            private = self._private
            filtered = entry.without(private) if entry.hasAnyOf(private) else entry
            self._withheld.put(entry, filtered)
        return filtered


def _subtypes(schema: Schema, name: str) -> frozenset[AttributeType]:
    """
    @return: the attribute type C{name} and its subtypes, or nothing when
        the schema lacks it.
    """
    at = schema.attributeType(name)
    return schema.subtypes(at) if at is not None else frozenset()


class DefaultAccessFactory:
    """
    Builds L{DefaultAccess}; a directory installs it itself when no plugin
    in its chain controls access.
    """

    name = "defaultaccess"
    description = "Root DN writes, everyone reads, passwords private to their owner."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: Any) -> DefaultAccess:
        """
        @param table: the plugin's configuration (no keys besides C{name}).
        @param context: the L{ldapd.config.ConfigContext}.
        """
        ConfigTable(table, context, ())
        return DefaultAccess(context.schema)
