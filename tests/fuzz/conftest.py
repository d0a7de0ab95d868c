"""Hypothesis profiles for the property tests and fuzzing of tests/fuzz/.

- ``ci`` (the default): derandomized, so a run is repeatable and bounded; a modest number of examples
  per property, no deadline (the machine is shared).
- ``long``: ``SHARDRUNNER_FUZZ=long pytest tests/fuzz`` for a longer, random search. A failure it
  finds is shrunk by hypothesis; add the input to the corpus (tests/fuzz/corpus/) so that every run
  replays it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("SHARDRUNNER_FUZZ", "ci"))
