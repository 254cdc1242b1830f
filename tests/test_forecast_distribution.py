"""The fan chart's numbers against the model's own one-step distribution (replaces a test that only
checked that quantiles are ordered, which any quantile function satisfies)."""

from __future__ import annotations

import numpy as np
import pytest
from pinned import CONFIG, pinned_fit, qe_prone_point
from scipy import stats

from regimecast.data import columns as C
from regimecast.forecast import forecast
from regimecast.models.macro import numpy_params
from regimecast.plots import fan_quantiles


@pytest.fixture(scope="module")
def fit():
    return pinned_fit(qe_prone_point())


@pytest.fixture(scope="module")
def fc(fit):
    return forecast(fit, horizon=2, max_draws=40, paths_per_draw=100, random_seed=12)


def test_one_step_cpi_fan_quantiles_follow_the_ar1_student_t_mixture(fit, fc):
    """Oracle: at horizon 1, CPI is mu_s + ar (cpi_0 - mu_s) + sigma_s t_nu in the path's regime s;
    the fan's quantile at level q must sit where that mixture's CDF is q."""
    p = numpy_params(qe_prone_point(), CONFIG.model)
    nu = CONFIG.model.priors.student_nu
    cpi0 = float(fit.panel[C.CPI_MOM_ANN].iloc[-1])  # the as-of print
    np.testing.assert_array_equal(fc[C.CPI_MOM_ANN].values[:, 0], cpi0)
    s1 = fc.macro_state.values[:, 1]
    weights = np.bincount(s1, minlength=3) / s1.size

    def cdf(x):
        mu = p["cpi_mean"]
        loc = mu + p["cpi_ar"] * (cpi0 - mu)
        return float(np.sum(weights * stats.t.cdf((x - loc) / p["cpi_sigma"], nu)))

    q = fan_quantiles(fc, C.CPI_MOM_ANN).sel(horizon=1)
    n = s1.size
    for level, value in zip(q["quantile"].values, q.values, strict=True):
        se = np.sqrt(level * (1 - level) / n)
        assert abs(cdf(value) - level) < 5 * se, (level, cdf(value))
    assert np.ptp(q.values) > 1.0  # a real spread, not a copied value
