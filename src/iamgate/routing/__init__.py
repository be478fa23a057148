"""Routing, below the configuration and the request path: the canonical form of a request path
(``paths``) and the resource trees that match it to a route (``tree``). Imports nothing from
``config``, ``pipeline`` or the server: the configuration builds its trees with it, the request
path walks them."""
