"""
The directory's data model: attribute types, object classes and matching rules.
"""

from ldapd.schema.matching import RULES, InvalidValue, MatchingRule
from ldapd.schema.parser import SchemaError, isAttributeDescription
from ldapd.schema.schema import AttributeType, ObjectClass, Schema
from ldapd.schema.syntaxes import SYNTAXES, Syntax

__all__ = [
    "RULES",
    "SYNTAXES",
    "AttributeType",
    "InvalidValue",
    "MatchingRule",
    "ObjectClass",
    "Schema",
    "SchemaError",
    "Syntax",
    "isAttributeDescription",
]
