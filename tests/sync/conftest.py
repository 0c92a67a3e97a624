"""Hypothesis profiles for the sync engine's property tests.

HYPOTHESIS_PROFILE=ci (default): 300 examples, what CI runs.
HYPOTHESIS_PROFILE=long: 5,000 examples, run before a release or after touching sync/.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_COMMON = {
    "deadline": None,  # a plan's cost grows with the events an example made; no per-step limit
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
    "stateful_step_count": 100,  # long enough for edits, crashes and recoveries to interleave
    # The explain phase traces every line of a long stateful run: minutes, for a small gain.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
}
settings.register_profile("ci", max_examples=300, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("long", max_examples=5000, **_COMMON)  # type: ignore[arg-type]

_profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if _profile in {"ci", "long"}:
    settings.load_profile(_profile)
