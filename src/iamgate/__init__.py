"""iamgate: a self-hosted API gateway that enforces AWS-style resource policies."""

from iamgate import _compiled

__version__ = "0.1.0"

# Before any request-path module is imported: use the mypyc-compiled modules only when they were
# built from the sources on disk (see iamgate/_compiled.py and docs/architecture.md).
_compiled.install()
