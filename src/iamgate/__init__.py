"""iamgate: a self-hosted API gateway that enforces AWS-style resource policies."""

__version__ = "0.1.0"
