"""
Reading the values of ldaptor's request objects, which hold strings as
C{bytes} or C{str} depending on how the request was built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["octets", "text"]


def text(value: Any) -> str:
    """
    @return: C{value} as text (bytes decoded as UTF-8, bad bytes replaced).
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def octets(value: Any) -> bytes:
    """
    @return: C{value} as bytes (text encoded as UTF-8).
    """
    return value if isinstance(value, bytes) else str(value).encode("utf-8")
