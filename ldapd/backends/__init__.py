"""
Backends: where the entries of a naming context live (L{ldapd.interfaces.IBackend}).
"""

from ldapd.backends.memory import MemoryBackend

__all__ = ["MemoryBackend"]
