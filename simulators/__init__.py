"""Simulated SIP desk phones that boot against a provisioning server.

The simulators deliberately share no code with the ``provisioning`` package:
they fetch files the way a real phone does and read them with their own
parsers, so a test that passes proves the server's output is readable by an
independent implementation of the vendor's rules, not merely by itself.
"""
