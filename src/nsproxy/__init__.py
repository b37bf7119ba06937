"""nsproxy: a network-namespace-aware TCP proxy speaking HAProxy's configuration language."""

from nsproxy import hotpath as hotpath

__version__ = "0.1.0"
# Before any other nsproxy import: the hot-path modules run compiled (mypyc) or from their .py.
MODE = hotpath.install()
