"""Scores, decompositions and comparison tests against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from regimecast.backtest import scoring as S


def test_brier_and_log_score_by_hand():
    p = np.array([0.9, 0.2, 0.5, 0.0])
    y = np.array([1, 0, 1, 1])
    np.testing.assert_allclose(S.brier(p, y), [0.01, 0.04, 0.25, 1.0])
    expected = [-math.log(0.9), -math.log(0.8), -math.log(0.5), -math.log(S.LOG_FLOOR)]
    np.testing.assert_allclose(S.log_score(p, y), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("p", "y", "match"),
    [([0.5], [2], "0 or 1"), ([1.5], [1], r"\[0, 1\]"), ([0.5, 0.5], [1], "shape")],
)
def test_binary_scores_reject_bad_input(p, y, match):
    with pytest.raises(ValueError, match=match):
        S.brier(np.array(p), np.array(y))


def test_crps_ensemble_by_hand():
    # E|X - y| - E|X - X'| / 2 over the ensemble {0, 1, 2} at y = 0.5: 5/6 - 8/18
    np.testing.assert_allclose(S.crps([0.5], [[0.0, 1.0, 2.0]]), [5 / 6 - 8 / 18])
    # a one-member ensemble is the absolute error
    np.testing.assert_allclose(S.crps([1.0, -2.0], [[3.0], [-2.0]]), [2.0, 0.0])


def test_pit_randomises_ties_inside_the_tie_interval():
    v = S.pit(np.array([1.0] * 500), np.tile([0.0, 1.0, 2.0, 3.0], (500, 1)), random_seed=3)
    assert v.min() >= 0.25 and v.max() <= 0.5
    assert abs(v.mean() - 0.375) < 0.01
    np.testing.assert_array_equal(S.pit(np.array([5.0]), np.array([[1.0, 2.0]])), [1.0])


def test_brier_decomposition_by_hand():
    p = np.array([0.05] * 4 + [0.95] * 4)
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    d = S.brier_decomposition(p, y, bins=10)
    assert d.reliability == pytest.approx(0.04)
    assert d.resolution == pytest.approx(0.0625)
    assert d.uncertainty == pytest.approx(0.25)
    assert d.brier == pytest.approx(0.2275)
    assert d.brier == pytest.approx(d.reliability - d.resolution + d.uncertainty)


def test_reliability_band_contains_the_bernoulli_frequency_for_calibrated_forecasts():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=4000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    table = S.reliability_table(p, y, bins=5, level=0.99, random_seed=1)
    assert len(table) == 5 and table["n"].sum() == 4000
    inside = (table["observed"] >= table["band_lo"]) & (table["observed"] <= table["band_hi"])
    assert inside.all()
    # a forecaster that says 0.9 when the truth is 0.5 falls outside its band
    bad = S.reliability_table(np.full(400, 0.9), (rng.uniform(size=400) < 0.5).astype(float), bins=5)
    assert (bad["observed"] < bad["band_lo"]).all()


def test_newey_west_by_hand():
    d = np.array([1.0, -1.0, 1.0, -1.0])
    assert S.newey_west_variance(d, 0) == pytest.approx(1.0)
    # lag 1: 1 + 2 * (1 - 1/2) * (-3 / 4)
    assert S.newey_west_variance(d, 1) == pytest.approx(0.25)


def test_diebold_mariano_by_hand():
    model = np.zeros(5)
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    stat, pv = S.diebold_mariano(model, base, lag=0)
    dm = 3.0 / math.sqrt(2.0 / 5)
    expected = dm * math.sqrt(4 / 5)
    assert stat == pytest.approx(expected)
    assert pv == pytest.approx(2 * stats.t.sf(expected, df=4))
    c = S.compare(model + 1.0, base + 1.0)
    assert c.skill == pytest.approx(1 - 1.0 / 4.0) and c.n == 5 and c.dm_stat > 0


def test_diebold_mariano_rejects_rarely_under_the_null():
    rng = np.random.default_rng(5)
    rejections = 0
    for _ in range(400):
        e = rng.normal(size=(2, 120))
        rejections += S.diebold_mariano(e[0] ** 2, e[1] ** 2, lag=3)[1] < 0.05
    assert rejections / 400 < 0.1
