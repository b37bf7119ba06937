"""Stick tables, frequency counters and the peers protocol (sans I/O)."""
