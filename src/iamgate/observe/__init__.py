"""Access and decision logs, Prometheus metrics."""
