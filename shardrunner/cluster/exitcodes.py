"""Exit codes a worker and its supervisor agree on (shared so that neither imports the other)."""

from __future__ import annotations

from typing import Final

#: The worker could not start (a preload failed, the link did not come up): restarting cannot help.
BOOT_FAILED: Final = 3
