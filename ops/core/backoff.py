"""The one backoff formula: exponential steps, capped, with jitter."""

from __future__ import annotations

import random
from typing import Callable


def delay(attempt: int, base: float, cap: float, *, jitter: tuple[float, float] = (0.5, 1.0),
          rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `attempt + 1` (attempt counts from 0).

    base * 2**attempt, at most `cap`, then scaled by a random factor within
    `jitter` so that many clients failing together do not retry together.
    """
    # the exponent stops at 1000 so that a long outage (attempt in the thousands) cannot overflow a float
    step = min(cap, base * (2.0 ** min(max(0, attempt), 1000)))
    low, high = jitter
    return step * (low + (high - low) * rng())
