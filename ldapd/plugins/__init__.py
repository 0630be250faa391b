"""
Operation plugins: policy around operations (access control, password policy,
the replication changelog), run as a chain in configuration order.
"""

from ldapd.plugins.chain import PluginChain

__all__ = ["PluginChain"]
