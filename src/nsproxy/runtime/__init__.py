"""The running proxy: listeners, streams, relays, backends."""
