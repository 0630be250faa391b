from twisted.application.service import ServiceMaker

ldapd = ServiceMaker("ldapd", "ldapd.tap", "An LDAPv3 directory server.", "ldapd")
