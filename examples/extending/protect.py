"""
An operation plugin: entries that carry a configured attribute value (a
"protected" flag) cannot be deleted, and the outcomes of deletes are counted.

    [[plugin]]
    name = "examples.extending.protect:ProtectEntriesFactory"
    attribute = "description"      # the default
    value = "protected"            # the default

A delete of an entry with C{description: protected} is refused with
unwillingToPerform (53) by the C{pre_delete} hook, before the backend is
asked; the C{post_delete} hook counts every delete's result code.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ldaptor.protocols.ldap import ldaperrors
from zope.interface import implementer

from ldapd.dn import DN
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin
from ldapd.operation import Operation
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.results import NoSuchObject
from ldapd.schema import AttributeType, InvalidValue

__all__ = ["ProtectEntries", "ProtectEntriesFactory"]


@implementer(IOperationPlugin)
class ProtectEntries:
    """
    Refuses to delete the entries that hold a value, and counts deletes.

    @ivar attribute: the attribute type of the flag.
    @ivar value: its value.
    @ivar outcomes: how many deletes ended with each result code.
    """

    name = "protect"

    def __init__(self, attribute: AttributeType, value: bytes) -> None:
        """
        @param attribute: the attribute type of the flag.
        @param value: the value that protects an entry, compared with the
            type's equality rule (C{Protected} is C{protected} for
            C{description}).
        """
        self.attribute = attribute
        self.value = value
        self.outcomes: Counter[int] = Counter()

    def attach(self, host: PluginHost) -> None:
        """
        Keep the directory, through which the hook reads the entry.
        """
        self._directory = host.directory

    async def pre_delete(self, op: Operation, ndn: DN) -> None:
        """
        Refuse to delete a protected entry.

        The entry is read as the server (an internal operation), whatever
        the client may read: the plugin decides, not the client. Put it
        after the C{acl} plugin, whose hook refuses first what the client
        may not delete at all, so that the answer tells it nothing more.

        @raise ldaperrors.LDAPUnwillingToPerform: if the entry is protected.
        """
        try:
            entry = await self._directory.get(self._directory.internalOperation(), ndn)
        except NoSuchObject:
            # The delete itself answers noSuchObject, with its matched DN.
            return
        if entry.hasValue(self.attribute, self.value):
            raise ldaperrors.LDAPUnwillingToPerform(f"{entry.dn} is protected")

    def post_delete(self, op: Operation, resultCode: int) -> None:
        """
        Count the delete's outcome (it has been decided; a post hook cannot
        change it).
        """
        self.outcomes[resultCode] += 1


class ProtectEntriesFactory:
    """
    Builds L{ProtectEntries} from a C{[[plugin]]} table with the keys
    C{attribute} (C{"description"} by default) and C{value}
    (C{"protected"} by default).
    """

    name = "protect"
    description = "Refuses to delete the entries that carry a protected flag."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> ProtectEntries:
        """
        @param table: the plugin's keys (C{name} is taken out).
        @param context: where the table is.
        @raise ldapd.registry.ConfigError: for an unknown key, an undefined
            attribute type, or a value its equality rule does not accept.
        """
        config = ConfigTable(table, context, {"attribute", "value"})
        name = config.string("attribute", "description")
        value = config.string("value", "protected").encode("utf-8")
        attribute = context.schema.attributeType(name)
        if attribute is None:
            raise config.error("attribute", f"undefined attribute type {name!r}")
        try:
            context.schema.normalizeValue(attribute, value)
        except InvalidValue as e:
            raise config.error("value", f"not a value of {name}: {e}") from None
        return ProtectEntries(attribute, value)
