"""Sans-I/O protocol codecs: pure functions over bytes, no sockets."""
