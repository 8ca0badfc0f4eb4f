"""The service-cost benchmarks run, and say what their reports claim (tiny sizes)."""

from __future__ import annotations

import pytest

from hush.bench import products, tick


def test_tick_bench_splits_the_tick_into_its_parts() -> None:
    run = tick.measure("gru", streams=4, chunk_ms=20.0, ticks=3)
    parts = run["median_ms"]
    assert parts["model"] > 0 and parts["tick"] > 0
    # medians of parts need not add up exactly to the median tick, but nearly
    split = parts["apply"] + parts["model"] + parts["bookkeeping"] + parts["collect"]
    assert split == pytest.approx(parts["tick"], rel=0.5)
    assert run["us_per_stream_frame"] == pytest.approx(1000 * parts["tick"] / (4 * 2), rel=0.01)


def test_product_candidates_keep_the_properties_the_bench_reports() -> None:
    results = products.measure("gru", batch=8, rounds=1)["results"]
    assert set(results) == set(products.CANDIDATES)
    assert results["float32"]["max_rel_deviation"] < 1e-5
    # two int8 parts: near-float accuracy and exact integer sums, so a row is the same
    # alone or in a batch; one part and bfloat16 are an 8-bit approximation
    exact_split = results["int8 act x2"]
    assert exact_split["max_rel_deviation"] < 1e-4 and exact_split["row_same_alone_and_batched"]
    assert results["int8 act x1"]["max_rel_deviation"] > 1e-3
    assert results["bfloat16"]["max_rel_deviation"] > 1e-3
