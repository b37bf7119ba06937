"""Sans-I/O HTTP/1.1 codec with HAProxy 2.6's verdicts: heads, body framing, connection rules."""
