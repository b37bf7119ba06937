"""Sans-I/O protocol codecs: pure functions and classes over bytes."""
