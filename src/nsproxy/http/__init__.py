"""HAProxy's own HTTP answers."""
