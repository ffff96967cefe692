"""LAN discovery: SIP plug-and-play, mDNS, SNMP scan; every sighting feeds the device inbox."""
