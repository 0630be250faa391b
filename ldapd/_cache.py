"""
A bounded least-recently-used mapping, for the hot path's caches: normalised
DNs of frequent names, encoded search results, attributes shared between
stored entries.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

__all__ = ["LRU"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class LRU(Generic[_K, _V]):
    """
    At most C{size} items; adding one more drops the least recently used.
    """

    def __init__(self, size: int) -> None:
        """
        @param size: the most items held.
        """
        self.size = size
        self._items: OrderedDict[_K, _V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: _K) -> _V | None:
        """
        @return: the value held for C{key}, now the most recently used; or C{None}.
        """
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: _K, value: _V) -> None:
        """
        Hold C{value} for C{key}, dropping the least recently used item if
        the cache is full.
        """
        items = self._items
        items[key] = value
        items.move_to_end(key)
        if len(items) > self.size:
            items.popitem(last=False)
