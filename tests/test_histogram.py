"""The fixed-bucket histograms of the roll-ups: stored as text, summed, read as percentiles."""

from __future__ import annotations

import random
from collections import Counter

from flask_jobs.history import histogram


def test_text_round_trip_keeps_only_non_empty_buckets() -> None:
    counts = histogram.of([0.0005, 0.2, 0.2, 3.0, None, 10**9])
    text = histogram.encode(counts)
    assert histogram.decode(text) == counts
    assert text.count(",") == 3  # four buckets, the empty ones left out
    assert histogram.decode(None) == Counter() == histogram.decode("x:1,2,:3,4:-1")
    assert histogram.encode(Counter()) == ""


def test_percentiles_are_within_the_bucket_width() -> None:
    rng = random.Random(5)
    values = [10 ** rng.uniform(-3, 4) for _ in range(20_000)]
    counts = histogram.of(values)
    ordered = sorted(values)
    for fraction in (0.5, 0.9, 0.95, 0.99):
        exact = ordered[round(fraction * (len(ordered) - 1))]
        estimate = histogram.percentile(counts, fraction)
        assert estimate is not None and abs(estimate - exact) / exact < 0.13, fraction
    assert histogram.percentile(Counter(), 0.5) is None


def test_histograms_add_up_bucket_by_bucket() -> None:
    first, second = histogram.of([1.0, 2.0]), histogram.of([2.0, 50.0])
    assert first + second == histogram.of([1.0, 2.0, 2.0, 50.0])
    one = histogram.of([7.0])
    assert histogram.BOUNDS[histogram.bucket_of(7.0) - 1] < histogram.percentile(one, 0.5) <= 7.95
