"""The web console on the admin port (``/console/``): sign-in with an access key of the identity
store, sessions, and the overview screen (docs/console.md). One more client of the management
API: what a signed-in identity may see is what its identity policies allow for the matching
management operation."""

from iamgate.console.app import ConsoleApp, claims

__all__ = ["ConsoleApp", "claims"]
