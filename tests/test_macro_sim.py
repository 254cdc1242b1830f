"""The simulator's policy-rate and balance-sheet paths against the process written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from regimecast.config import load_config
from regimecast.data import columns as C
from regimecast.models.macro import joint_log_transition, numpy_params
from regimecast.models.macro_sim import reference_point, simulate_series, simulate_states

CFG = load_config().model
START = {C.CPI_MOM_ANN: 2.8, C.POLICY_RATE: 5.3, C.BALANCE_SHEET: 7000.0, C.SMALLCAP_VOLUME_LOG: 16.5}
MODERATE_HOLD_STEADY = (1 * 3 + 1) * 3 + 1


def _rate_paths_by_hand(p: dict, macro: np.ndarray, rate_state: np.ndarray, r0: float, rng) -> np.ndarray:
    """The 25 bp step recursion, one path and one month at a time, with its constants typed out:

    target = max(cpi_mean[s] + 0.5, 0.05); gap = rate - target (cutting) or target - rate (hiking);
    N ~ Poisson(min(|rate_mean[r]| / 0.25 * exp(1.0 * gap), 2)); rate += -0.25 N (cutting),
    +0.25 N (hiking), 0 (hold); rate = max(rate, 0.05).
    """
    n, H1 = rate_state.shape
    out = np.empty((n, H1))
    for i in range(n):
        rate = r0
        out[i, 0] = rate
        for h in range(1, H1):
            s, r = macro[i, h], rate_state[i, h]
            target = max(p["cpi_mean"][s] + 0.5, 0.05)
            if r != 1:
                sign = -1.0 if r == 0 else 1.0
                gap = (rate - target) if r == 0 else (target - rate)
                lam = min(abs(p["rate_mean"][r]) / 0.25 * np.exp(1.0 * gap), 2.0)
                rate = max(rate + sign * 0.25 * rng.poisson(lam), 0.05)
            out[i, h] = rate
    return out


@pytest.fixture(scope="module")
def paths():
    """4000 state paths of 24 months from moderate | hold | steady under the reference transitions."""
    p = reference_point(CFG)
    lt = joint_log_transition(np, numpy_params(p, CFG), CFG)
    states = simulate_states(lt, np.full(4000, MODERATE_HOLD_STEADY), 24, np.random.default_rng(0))
    return p, states


def test_rate_band_from_5_3_percent_is_realistic(paths):
    """Oracle: the recursion typed out by hand, run on the same state paths with another seed; both
    90% bands at 24 months agree, and are far narrower than the random walk's (the likelihood's
    Student-t changes simulated forward, the former forecast) on the same state paths."""
    p, states = paths
    sims = simulate_series(p, CFG, states, initial=START, trend0=0.0, rng=np.random.default_rng(1))
    got = np.quantile(sims[C.POLICY_RATE][:, 24], [0.05, 0.5, 0.95])
    q = numpy_params(p, CFG)
    want_paths = _rate_paths_by_hand(q, states // 9, (states // 3) % 3, 5.3, np.random.default_rng(2))
    want = np.quantile(want_paths[:, 24], [0.05, 0.5, 0.95])
    np.testing.assert_allclose(got, want, atol=0.3)
    assert got[0] > 1.0 and got[2] < 8.0, got
    walk = simulate_series(p, CFG, states, initial=START, trend0=0.0, rng=np.random.default_rng(1),
                           rate_dynamics="emission")[C.POLICY_RATE][:, 24]
    walk_band = np.quantile(walk, [0.05, 0.95])
    assert got[2] - got[0] < 0.6 * (walk_band[1] - walk_band[0]), (got, walk_band)
    # every move is a whole number of 25 bp steps, except onto the floor
    moves = np.diff(sims[C.POLICY_RATE], axis=1) / 0.25
    on_floor = sims[C.POLICY_RATE][:, 1:] == 0.05
    assert np.allclose(moves[~on_floor], np.round(moves[~on_floor]))
    assert sims[C.POLICY_RATE].min() >= 0.05


def test_rate_holds_still_on_hold_and_steps_at_the_stance_pace():
    """Closed forms: on hold the rate never moves; cutting at the target level moves by
    -0.25 * |rate_mean[cut]| / 0.25 = rate_mean[cut] a month on average (Poisson mean)."""
    p = reference_point(CFG)
    q = numpy_params(p, CFG)
    n = 20000
    hold = np.full((n, 13), MODERATE_HOLD_STEADY)
    sims = simulate_series(p, CFG, hold, initial=START, trend0=0.0, rng=np.random.default_rng(3))
    assert (sims[C.POLICY_RATE] == 5.3).all()
    target = q["cpi_mean"][1] + 0.5
    cutting = np.full((n, 2), (1 * 3 + 0) * 3 + 1)
    sims = simulate_series(p, CFG, cutting, initial={**START, C.POLICY_RATE: target}, trend0=0.0,
                           rng=np.random.default_rng(4))
    move = sims[C.POLICY_RATE_CHANGE][:, 1]
    lam = abs(q["rate_mean"][0]) / 0.25
    assert move.mean() == pytest.approx(-0.25 * lam, abs=4 * 0.25 * np.sqrt(lam / n))


def test_balance_sheet_shrinks_at_the_qt_pace():
    """Closed form: 12 months in QT change the log balance sheet by the sum of 12 symmetric draws
    around bs_mean[QT], whose median is 12 * bs_mean[QT] / 100."""
    p = reference_point(CFG)
    q = numpy_params(p, CFG)
    qt = np.full((20000, 13), (1 * 3 + 1) * 3 + 0)  # moderate | hold | QT
    sims = simulate_series(p, CFG, qt, initial=START, trend0=0.0, rng=np.random.default_rng(5))
    change = np.log(sims[C.BALANCE_SHEET][:, 12] / 7000.0)
    assert np.median(change) == pytest.approx(12 * q["bs_mean"][0] / 100, abs=0.003)
    assert np.median(change) < 0


def test_emission_rate_dynamics_for_recovery():
    """``rate_dynamics="emission"``: changes centred on the stance's rate_mean (simulate_panel)."""
    p = reference_point(CFG)
    q = numpy_params(p, CFG)
    hiking = np.full((20000, 2), (1 * 3 + 2) * 3 + 1)
    sims = simulate_series(p, CFG, hiking, initial={**START, C.POLICY_RATE: 4.0}, trend0=0.0,
                           rng=np.random.default_rng(6), rate_dynamics="emission")
    assert np.median(sims[C.POLICY_RATE_CHANGE][:, 1]) == pytest.approx(q["rate_mean"][2], abs=0.01)
    with pytest.raises(ValueError, match="rate_dynamics"):
        simulate_series(p, CFG, hiking, initial=START, trend0=0.0, rng=np.random.default_rng(0),
                        rate_dynamics="walk")


def test_batch_of_one_draw_is_the_single_draw_simulation():
    """Same draw, same paths, same seed: the batched simulation is the per-draw one, number for number
    (one draw means the same random numbers in the same order), on mixed states."""
    from regimecast.models.macro_sim import simulate_series_batch

    p = reference_point(CFG)
    rng = np.random.default_rng(3)
    states = simulate_states(joint_log_transition(np, numpy_params(p, CFG), CFG),
                             rng.integers(0, 27, 500), 24, rng)
    one = simulate_series(p, CFG, states, initial=START, trend0=0.3, rng=np.random.default_rng(9))
    two = simulate_series_batch([p, dict(p)], CFG, states, initial=START, trend0=0.3,
                                rng=np.random.default_rng(9))
    for k in one:
        np.testing.assert_array_equal(one[k], two[k], err_msg=k)


def test_batch_rows_follow_their_own_draw():
    """Two draws with different QT paces: each draw's paths shrink at its own pace (closed form as in
    the QT test: median 12-month log change = 12 * bs_mean[QT] / 100)."""
    from regimecast.models.macro_sim import simulate_series_batch

    p1 = reference_point(CFG)
    p2 = {**p1, "bs_gap": np.asarray(p1["bs_gap"]) * 2.0}  # QT and QE twice as far from steady
    qt = np.full((20000, 13), (1 * 3 + 1) * 3 + 0)  # moderate | hold | QT, 10000 paths per draw
    sims = simulate_series_batch([p1, p2], CFG, qt, initial=START, trend0=0.0,
                                 rng=np.random.default_rng(5))
    change = np.log(sims[C.BALANCE_SHEET][:, 12] / 7000.0)
    for rows, p in ((slice(0, 10000), p1), (slice(10000, 20000), p2)):
        want = 12 * numpy_params(p, CFG)["bs_mean"][0] / 100
        assert np.median(change[rows]) == pytest.approx(want, abs=0.004)
    assert numpy_params(p2, CFG)["bs_mean"][0] < numpy_params(p1, CFG)["bs_mean"][0] - 0.1
