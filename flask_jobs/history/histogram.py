"""Fixed-bucket histograms of durations, so percentiles survive the hourly roll-up.

A roll-up row keeps counts per bucket, not the durations: histograms of many
hours add up bucket by bucket, and a percentile is read off the sum. Buckets
are log-spaced, ten per decade from 1 ms to 100,000 s (each about 26% wider
than the last), so a percentile read back is within about 13% of the true one.
A histogram is stored as text, only its non-empty buckets: ``"index:count,..."``.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable

__all__ = ["BOUNDS", "bucket_of", "decode", "encode", "of", "percentile"]

#: Upper bounds (seconds) of the buckets; one more bucket holds anything longer.
BOUNDS: tuple[float, ...] = tuple(10 ** (exponent / 10) for exponent in range(-30, 51))


def bucket_of(seconds: float) -> int:
    """The index of the bucket ``seconds`` falls in (its upper bound is the first >= it)."""
    return bisect.bisect_left(BOUNDS, seconds)


def encode(counts: Counter[int]) -> str:
    """A histogram as stored: its non-empty buckets, ``"index:count"`` joined by commas."""
    return ",".join(f"{index}:{n}" for index, n in sorted(counts.items()) if n)


def decode(text: str | None) -> Counter[int]:
    """A stored histogram back as counts per bucket (an empty one for None or garbage)."""
    counts: Counter[int] = Counter()
    for part in (text or "").split(","):
        index, _, n = part.partition(":")
        if index.isdigit() and n.isdigit():
            counts[int(index)] += int(n)
    return counts


def of(values: Iterable[float | None]) -> Counter[int]:
    """The histogram of these durations (None: not known, left out)."""
    return Counter(bucket_of(value) for value in values if value is not None)


def percentile(counts: Counter[int], fraction: float) -> float | None:
    """The ``fraction`` percentile (0..1) of a histogram, interpolated inside its bucket.

    None for an empty histogram. Inside a bucket the values are taken as spread
    evenly on a log scale, which is how the buckets are spaced.
    """
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = fraction * total
    seen = 0
    for index in sorted(counts):
        n = counts[index]
        if seen + n >= rank and n:
            upper = BOUNDS[index] if index < len(BOUNDS) else BOUNDS[-1] * 10
            if index == 0:
                return upper
            lower = BOUNDS[index - 1]
            share = min(1.0, max(0.0, (rank - seen) / n))
            return math.exp(math.log(lower) + share * (math.log(upper) - math.log(lower)))
        seen += n
    return BOUNDS[-1]
