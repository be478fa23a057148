"""The HTTP/1.1 client to backends: pooled keep-alive connections, streaming, timeouts."""
