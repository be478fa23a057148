"""The management API: Amazon API Gateway's REST API over a store (docs/management.md)."""
