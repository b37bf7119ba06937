"""Test lab: real network namespaces, in-namespace servers and clients, an nsproxy process."""
