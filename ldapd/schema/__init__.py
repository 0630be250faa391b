"""
The directory's data model: attribute types, object classes and matching rules.
"""

from ldapd.schema.matching import InvalidValue, MatchingRule, RULES
from ldapd.schema.parser import SchemaError
from ldapd.schema.schema import AttributeType, ObjectClass, Schema

__all__ = [
    "AttributeType",
    "InvalidValue",
    "MatchingRule",
    "ObjectClass",
    "RULES",
    "Schema",
    "SchemaError",
]
