"""The request path: canonical paths, routing, request context, authorization, responses."""
