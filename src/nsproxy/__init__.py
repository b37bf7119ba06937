"""nsproxy: a network-namespace-aware TCP proxy speaking HAProxy's configuration language."""

__version__ = "0.1.0"
