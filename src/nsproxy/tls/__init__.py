"""TLS: certificate files and stores, SSL contexts, runtime certificate API, fetch values."""
