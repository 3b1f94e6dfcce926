"""Latency statistics: known percentiles, a deterministic bootstrap, and warnings that fire only when they should."""
from __future__ import annotations

import numpy as np
import pytest

from shufflenet_deploy.bench import stats
from shufflenet_deploy.bench.stats import compare_conditions, merge_trials, summarize
from shufflenet_deploy.errors import UserError


def test_known_percentiles_of_1_to_100():
    s = summarize(list(range(1, 101)), n_boot=200)
    # linear interpolation: p = 1 + q/100 * 99
    assert (s.p50, s.p90, s.p99) == pytest.approx((50.5, 90.1, 99.01))
    assert (s.mean, s.min, s.max, s.count) == (50.5, 1.0, 100.0, 100)
    assert s.std == pytest.approx(np.sqrt(100 * 101 / 12))  # sample std of 1..n is sqrt(n(n+1)/12)
    assert s.cv == pytest.approx(s.std / 50.5)
    assert s.spread_pct == pytest.approx((90.1 - 50.5) / 50.5 * 100)


def test_bootstrap_is_deterministic_and_contains_the_median():
    x = np.random.default_rng(7).lognormal(np.log(20), 0.1, size=150)
    a, b = summarize(x, seed=3), summarize(x, seed=3)
    assert (a.median_ci_low, a.median_ci_high) == (b.median_ci_low, b.median_ci_high)
    c = summarize(x, seed=4)
    assert (c.median_ci_low, c.median_ci_high) != (a.median_ci_low, a.median_ci_high)
    assert a.median_ci_low <= a.p50 <= a.median_ci_high
    assert a.median_ci_low < a.median_ci_high


def test_bootstrap_ci_narrows_with_more_samples_and_widens_with_level():
    rng = np.random.default_rng(1)
    small, large = summarize(rng.normal(10, 1, 30)), summarize(rng.normal(10, 1, 3000))
    assert (large.median_ci_high - large.median_ci_low) < (small.median_ci_high - small.median_ci_low)
    x = rng.normal(10, 1, 200)
    w80, w99 = (summarize(x, ci=c) for c in (0.80, 0.99))
    assert (w99.median_ci_high - w99.median_ci_low) > (w80.median_ci_high - w80.median_ci_low)


def test_bootstrap_in_chunks_still_brackets_the_median(monkeypatch):
    monkeypatch.setattr(stats, "_BOOT_CHUNK_ELEMENTS", 1000)  # forces many chunks, incl. a partial last one
    x = np.random.default_rng(2).normal(50, 2, 300)
    s = summarize(x, n_boot=500)
    assert s.median_ci_low < np.median(x) < s.median_ci_high


def test_tight_sample_is_stable():
    x = np.random.default_rng(0).normal(10.0, 0.05, 200)
    s = summarize(x)
    assert s.stable and s.warnings == []
    assert abs(s.trend_pct) < 1


def test_too_few_runs_warns():
    s = summarize([10.0, 10.1, 9.9, 10.0, 10.05])
    assert not s.stable
    assert any("only 5 runs" in w for w in s.warnings)
    assert s.trend_pct is None  # too short for thirds


def test_heavy_tail_warns():
    x = np.r_[np.full(80, 10.0), np.full(20, 14.0)]
    np.random.default_rng(0).shuffle(x)
    s = summarize(x)
    assert any("p90/p50 = 1.40" in w for w in s.warnings)
    assert not s.stable


def test_wide_ci_warns():
    x = np.random.default_rng(5).uniform(5, 15, 12)
    s = summarize(x)
    assert any("CI of the median" in w for w in s.warnings)


@pytest.mark.parametrize("direction, values", [("slower", np.linspace(10, 13, 60)),
                                               ("faster", np.linspace(13, 10, 60))])
def test_trend_warns(direction, values):
    s = summarize(values)
    assert any("thermal" in w and direction in w for w in s.warnings)
    assert (s.trend_pct > 10) == (direction == "slower")


def test_single_sample_and_bad_input():
    s = summarize([12.5])
    assert s.std is None and s.cv is None and s.p50 == 12.5 and s.median_ci_low == s.median_ci_high == 12.5
    for bad in ([], [1.0, float("nan")], [1.0, -2.0]):
        with pytest.raises(UserError):
            summarize(bad)
    with pytest.raises(UserError):
        summarize([1.0, 2.0], ci=1.5)


def test_to_dict_round_trips_fields():
    d = summarize(np.arange(1.0, 21.0), n_boot=100).to_dict()
    assert d["count"] == 20 and isinstance(d["warnings"], list) and "median_ci_low" in d


# ------------------------------------------------------------------------------------------- conditions

BEFORE = {"freq_khz": {"cpu0": 1800000, "cpu4": 2400000}, "governor": {"cpu0": "schedutil", "cpu4": "schedutil"},
          "temp_c": {"zone0:cpu": 40.0, "zone1:battery": 30.0}}


def test_conditions_unchanged_is_quiet():
    after = {"freq_khz": {"cpu0": 1850000, "cpu4": 2400000}, "governor": dict(BEFORE["governor"]),
             "temp_c": {"zone0:cpu": 43.0, "zone1:battery": 30.5}}
    assert compare_conditions(BEFORE, after) == []


def test_conditions_changes_warn():
    after = {"freq_khz": {"cpu0": 1800000}, "governor": {"cpu0": "performance", "cpu4": "schedutil"},
             "temp_c": {"zone0:cpu": 52.0, "zone1:battery": "NA"}}
    after["freq_khz"]["cpu4"] = 1200000
    w = compare_conditions(BEFORE, after)
    assert any(x.startswith("cpu4 frequency changed 2400000 -> 1200000 kHz (-50%") for x in w)
    assert "cpu0 governor changed schedutil -> performance" in w
    assert any(x.startswith("zone0:cpu temperature changed 40.0 -> 52.0") for x in w)
    assert not any("battery" in x for x in w)  # unreadable values are skipped, not guessed
    assert len(w) == 3


def test_conditions_vanished_cpu_and_thresholds():
    after = {"freq_khz": {"cpu0": 1800000}, "temp_c": {"zone0:cpu": 44.0}}
    w = compare_conditions(BEFORE, after)
    assert w == ["cpu4 reported a frequency only before the run (core went on/offline)"]
    assert compare_conditions(BEFORE, after, max_temp_change_c=3.0)[-1].startswith("zone0:cpu temperature")


# ------------------------------------------------------------------------------------------- trials


def test_merge_trials_median_of_medians_and_spread():
    t = merge_trials([[10, 10, 10], [11, 11.0], [10.5, 10.4, 10.6]])
    assert t.trial_medians == [10.0, 11.0, 10.5]
    assert t.median_of_medians == 10.5
    assert t.spread_pct == pytest.approx(1 / 10.5 * 100)
    assert not t.stable and "trials disagree" in t.warnings[0]


def test_merge_trials_agreeing_is_stable():
    t = merge_trials([[10.0, 10.2], [10.1, 10.1], [10.05]])
    assert t.stable and t.warnings == [] and t.spread_pct < 1
    with pytest.raises(UserError):
        merge_trials([])
    with pytest.raises(UserError, match="trial 2"):
        merge_trials([[1.0], []])
