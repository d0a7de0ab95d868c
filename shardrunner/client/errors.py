"""The one error the client raises."""

from __future__ import annotations


class ClientError(RuntimeError):
    """A command could not be sent, or the cluster could not be reached; the message says why."""
