"""The service-cost benchmarks run, and say what their reports claim (tiny sizes)."""

from __future__ import annotations

import os

import pytest
import soundfile as sf

from conftest import speech_like
from hush.bench import io_floor, products, tick


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


def test_io_floor_model_keeps_the_shipped_dsp_with_a_hundredth_of_the_products() -> None:
    from hush.models import ModelRegistry

    floor, gru_params = io_floor.floor_model("gru")
    gru, _ = ModelRegistry().load("gru")
    assert floor.features == gru.features
    assert floor.latency_samples == gru.latency_samples
    assert floor.arch.deep_filter_frames == gru.arch.deep_filter_frames
    assert floor.arch.deep_filter_bins == gru.arch.deep_filter_bins
    assert gru_params == gru.num_parameters()
    assert floor.num_parameters() < 0.02 * gru_params


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only")
def test_io_floor_run_serves_the_floor_with_the_client_demoted_and_restores_its_priority(tmp_path) -> None:
    audio = tmp_path / "speech.wav"
    sf.write(audio, speech_like(1.0, 16000), 16000)
    report = io_floor.run(streams=2, seconds=1.0, chunk_ms=20.0, idle_client=True, audio=audio)
    assert report["ok"] and report["streams_completed"] == 2
    assert report["io_floor"]["client_sched_idle"] is True
    assert report["config"]["model"] == io_floor.FLOOR_NAME
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
