"""
Replication: the Content Synchronization Operation (syncrepl, RFC 4533) as
provider and consumer, and persistent search (draft-ietf-ldapext-psearch).

The provider serves what the C{changelog} plugin records
(L{ldapd.interfaces.IChangelog}); the consumer keeps a local database in
step with a provider, ldapd's or OpenLDAP's.
"""
