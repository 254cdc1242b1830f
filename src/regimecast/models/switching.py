"""Bayesian Markov-switching regression (statsmodels' ``MarkovRegression`` / ``MarkovAutoregression``).

The model, for regimes ``S_t`` in ``0..K-1`` following a Markov chain with transition matrix ``P``
(row = from; constant with Dirichlet rows, or time-varying through a softmax of covariates), is::

    y_t - x_t b_{S_t} = sum_{j=1..p} phi_{S_t, j} (y_{t-j} - x_{t-j} b_{S_{t-j}}) + sigma_{S_t} e_t

with ``x_t`` the trend terms (``trend="c"``: intercept) followed by the exogenous regressors, and each
group of coefficients switching or common.  ``p = 0`` is ``MarkovRegression``; ``p > 0`` is Hamilton's
mean-adjusted ``MarkovAutoregression``, run through the expanded state ``(S_t, ..., S_{t-p})``.  The
regimes are marginalised by the engine's forward filter (:func:`regimecast.hmm.hmm_logp`) and the
parameters sampled with NUTS.

Example
-------
>>> spec = MarkovSwitchingRegression(2, order=4, switching_ar=False)          # doctest: +SKIP
>>> res = spec.fit(gnp_growth, random_seed=1)                                  # doctest: +SKIP
>>> res.summary(); res.regime_probabilities(); res.forecast(8, random_seed=2)  # doctest: +SKIP

Conventions shared with statsmodels (and checked against it in ``tests/test_switching.py``): the first
``order`` observations only condition the AR terms; ``exog_tvtp[s]`` drives the move from ``s - 1`` to
``s``; by default ``S_0`` starts from the stationary distribution of the (first) transition matrix.
Missing ``endog`` values are allowed: an observation contributes nothing to the likelihood when it or
any of its ``order`` lags is missing (so one gap in an AR(p) model removes ``p + 1`` terms).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from regimecast.config import SamplerSettings
from regimecast.errors import ConfigError
from regimecast.fit import sample_model
from regimecast.hmm import hmm_logp
from regimecast.models.switching_arrays import hmm_inputs
from regimecast.models.switching_data import SwitchingData, prepare_data
from regimecast.models.switching_results import MarkovSwitchingResults

log = logging.getLogger(__name__)

_TRENDS = ("n", "c", "t", "ct")


def duration_concentrations(expected_duration, strength: float = 20.0) -> np.ndarray:
    """Dirichlet concentrations (K, K) whose prior mean regime durations equal ``expected_duration``.

    Row k has total concentration ``strength`` (pseudo-transitions); its diagonal ``a`` and its
    off-diagonal total ``b`` (split evenly over the other regimes) solve ``a + b = strength`` and
    ``E[1 / (1 - p_kk)] = (a + b - 1) / (b - 1) = d_k`` (``1 - p_kk ~ Beta(b, a)``), i.e.
    ``b = (strength + d_k - 1) / d_k``.  So the prior mean of the expected duration is exactly ``d_k``.
    """
    d = np.asarray(expected_duration, dtype=float)
    k = d.size
    if d.ndim != 1 or k < 2:
        raise ConfigError(
            f"expected_duration needs one value per regime (>= 2), got {expected_duration!r}"
        )
    if np.any(~np.isfinite(d)) or np.any(d <= 1):
        raise ConfigError(f"expected durations must be finite and > 1 period, got {tuple(d)}")
    if not strength > 1:
        raise ConfigError(f"duration prior strength must be > 1, got {strength}")
    off_total = (strength + d - 1) / d
    diag = strength - off_total
    alpha = np.repeat((off_total / (k - 1))[:, None], k, axis=1)
    alpha[np.arange(k), np.arange(k)] = diag
    return alpha


@dataclass(frozen=True)
class SwitchingPrior:
    """Priors.  Scales marked "x sd(y)" are multiplied by the standard deviation of the observed y.

    * transitions: Dirichlet rows with concentration ``transition_concentration`` (scalar, or K x K
      nested tuple), or, if ``expected_duration`` is given, :func:`duration_concentrations`
      (``duration_strength`` pseudo-transitions per row).
    * TVTP coefficients: Normal(0, ``tvtp_scale`` / sd(covariate)) (``tvtp_scale`` for a constant column).
    * trend terms: Normal(mean(y), ``intercept_scale`` x sd(y)) for the intercept, Normal(0, ...) scaled
      by sd(t) for the time trend; regressors Normal(0, ``coef_scale`` x sd(y) / sd(x)).
    * sigma: HalfNormal(``sigma_scale`` x sd(y)); AR coefficients Normal(0, ``ar_scale``).
    * ``initial``: "stationary" (statsmodels' default) or "dirichlet" (a free Dirichlet(1) vector).
    """

    expected_duration: tuple[float, ...] | None = None
    duration_strength: float = 20.0
    transition_concentration: float | tuple[tuple[float, ...], ...] = 1.0
    tvtp_scale: float = 3.0
    intercept_scale: float = 2.0
    coef_scale: float = 2.5
    sigma_scale: float = 2.0
    ar_scale: float = 0.5
    initial: str = "stationary"

    def __post_init__(self) -> None:
        if self.initial not in {"stationary", "dirichlet"}:
            raise ConfigError(
                f"prior.initial must be 'stationary' or 'dirichlet', got {self.initial!r}"
            )
        for name in ("tvtp_scale", "intercept_scale", "coef_scale", "sigma_scale", "ar_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"prior.{name} must be > 0, got {getattr(self, name)}")
        if self.expected_duration is not None:
            object.__setattr__(
                self, "expected_duration", tuple(float(d) for d in self.expected_duration)
            )
            duration_concentrations(self.expected_duration, self.duration_strength)

    def transition_alpha(self, k_regimes: int) -> np.ndarray:
        """(K, K) Dirichlet concentrations of the transition rows."""
        if self.expected_duration is not None:
            if len(self.expected_duration) != k_regimes:
                raise ConfigError(
                    f"expected_duration has {len(self.expected_duration)} values for {k_regimes} regimes"
                )
            return duration_concentrations(self.expected_duration, self.duration_strength)
        alpha = np.broadcast_to(
            np.asarray(self.transition_concentration, dtype=float), (k_regimes, k_regimes)
        )
        if np.any(~(alpha > 0)):
            raise ConfigError("transition_concentration must be > 0")
        return np.array(alpha)


@dataclass(frozen=True)
class MarkovSwitchingRegression:
    """Spec of a univariate Markov-switching (auto)regression; ``fit`` returns the posterior.

    Parameters mirror statsmodels: ``k_regimes``, ``order`` (AR lags, Hamilton's mean-adjusted form),
    ``trend`` in {"n", "c", "t", "ct"}, and whether the trend terms, the exogenous regressors, the
    variance and the AR coefficients switch.  ``exog_tvtp=True`` makes the transitions depend on the
    covariates passed to ``fit(exog_tvtp=...)`` (statsmodels' layout: include a column of ones).
    ``ordering``: which switching parameter is constrained increasing across regimes against label
    switching ("auto": the intercept if it switches, else sigma if it switches, else none; "const",
    "sigma" or "none").  ``regime_names`` label the ``regime`` coordinate (default "regime0", ...).
    """

    k_regimes: int
    order: int = 0
    switching_trend: bool = True
    switching_exog: bool = False
    switching_variance: bool = False
    switching_ar: bool = False
    exog_tvtp: bool = False
    trend: str = "c"
    prior: SwitchingPrior = field(default_factory=SwitchingPrior)
    ordering: str = "auto"
    regime_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.k_regimes, bool) or not isinstance(self.k_regimes, int | np.integer):
            raise ConfigError(f"k_regimes must be an integer >= 2, got {self.k_regimes!r}")
        if self.k_regimes < 2:
            raise ConfigError(
                f"k_regimes must be >= 2 (a switching model needs two regimes), got {self.k_regimes}"
            )
        if (
            isinstance(self.order, bool)
            or not isinstance(self.order, int | np.integer)
            or self.order < 0
        ):
            raise ConfigError(f"order must be an integer >= 0, got {self.order!r}")
        if self.k_regimes ** (self.order + 1) > 4096:
            raise ConfigError(
                f"k_regimes**(order+1) = {self.k_regimes ** (self.order + 1)} expanded states is too many; "
                "lower order or k_regimes"
            )
        if self.trend not in _TRENDS:
            raise ConfigError(f"trend must be one of {_TRENDS}, got {self.trend!r}")
        if self.ordering not in {"auto", "const", "sigma", "none"}:
            raise ConfigError(
                f"ordering must be 'auto', 'const', 'sigma' or 'none', got {self.ordering!r}"
            )
        if self.ordering == "const" and not ("c" in self.trend and self.switching_trend):
            raise ConfigError(
                "ordering='const' needs a switching intercept (trend with 'c', switching_trend=True)"
            )
        if self.ordering == "sigma" and not self.switching_variance:
            raise ConfigError("ordering='sigma' needs switching_variance=True")
        if self.switching_ar and self.order == 0:
            raise ConfigError("switching_ar=True needs order >= 1")
        if self.exog_tvtp and self.prior.expected_duration is not None:
            raise ConfigError(
                "expected_duration priors apply to constant transitions, not to exog_tvtp models"
            )
        if self.regime_names is not None:
            names = tuple(str(n) for n in self.regime_names)
            if len(names) != self.k_regimes or len(set(names)) != len(names):
                raise ConfigError(
                    f"regime_names must be {self.k_regimes} distinct names, got {self.regime_names!r}"
                )
            object.__setattr__(self, "regime_names", names)
        self.prior.transition_alpha(self.k_regimes)

    @property
    def regimes(self) -> tuple[str, ...]:
        return self.regime_names or tuple(f"regime{k}" for k in range(self.k_regimes))

    @property
    def ordered_parameter(self) -> str | None:
        """The parameter constrained increasing across regimes ("const", "sigma") or None."""
        if self.ordering == "none":
            return None
        if self.ordering in {"const", "sigma"}:
            return self.ordering
        if "c" in self.trend and self.switching_trend:
            return "const"
        if self.switching_variance:
            return "sigma"
        return None

    def prepare(self, endog, exog=None, exog_tvtp=None) -> SwitchingData:
        """Validate the data against this spec (raises DataError / ConfigError)."""
        return prepare_data(endog, exog, exog_tvtp, self)

    def fit(
        self,
        endog,
        exog=None,
        exog_tvtp=None,
        *,
        random_seed: int,
        sampler_settings: SamplerSettings | None = None,
        initvals: dict[str, np.ndarray] | None = None,
        progressbar: bool = False,
    ) -> MarkovSwitchingResults:
        """Sample the posterior with NUTS (:func:`regimecast.fit.sample_model`); the spec is unchanged.

        ``sampler_settings`` defaults to :class:`regimecast.config.SamplerSettings` (the defaults of
        ``models/default.toml``: nutpie from the posterior mode); the gate is the config's default
        :class:`~regimecast.config.GateSettings`.  ``SamplerSettings(sampler="pymc", start="prior")``
        selects PyMC's own NUTS, measured faster on small models (README "Engine").
        """
        data = self.prepare(endog, exog, exog_tvtp)
        model = build_switching_model(data, self)
        settings = sampler_settings or SamplerSettings()
        idata = sample_model(
            model, settings, random_seed=random_seed, initvals=initvals, progressbar=progressbar
        )
        res = MarkovSwitchingResults(self, data, idata)
        problems = res.convergence_problems()
        if problems:
            log.warning(
                "Markov-switching fit did not pass the convergence gate: %s", "; ".join(problems)
            )
        return res


# --------------------------------------------------------------------------------------------------
# the PyMC graph


def model_coords(data: SwitchingData, spec: MarkovSwitchingRegression) -> dict[str, list]:
    coords = {
        "regime": list(spec.regimes),
        "regime_from": list(spec.regimes),
        "regime_to": list(spec.regimes),
        "time": list(data.time_index),
    }
    if data.n_exog:
        coords["exog"] = list(data.exog_names)
    if spec.order:
        coords["lag"] = list(range(1, spec.order + 1))
    if spec.exog_tvtp:
        coords["tvtp_to"] = list(spec.regimes[:-1])
        coords["tvtp_variable"] = list(data.tvtp_names)
    return coords


def _sd(x: np.ndarray) -> float:
    s = float(np.std(x))
    return s if s > 0 else 1.0


def build_switching_model(
    endog, spec: MarkovSwitchingRegression, exog=None, exog_tvtp=None
) -> pm.Model:
    """The PyMC model of ``spec`` on the data (``endog`` may be prepared :class:`SwitchingData`).

    Free variables (as present): ``transition`` (regime_from, regime_to) or ``tvtp_coef`` (regime_from,
    tvtp_to, tvtp_variable); ``init_probs``; ``const``, ``trend`` (regime) or scalar; ``exog_coef``
    ([regime,] exog); ``sigma`` ([regime]); ``ar`` ([regime,] lag).  ``expected_duration`` is a
    deterministic; the likelihood is the potential ``loglik`` (regimes marginalised by the engine).
    """
    data = endog if isinstance(endog, SwitchingData) else prepare_data(endog, exog, exog_tvtp, spec)
    with pm.Model(coords=model_coords(data, spec)) as model:
        params = {**_transition_priors(data, spec), **_regression_priors(data, spec)}
        log_init, log_trans, log_em = hmm_inputs(pt, params, data, spec)
        pm.Potential("loglik", hmm_logp(log_init, log_trans, log_em))
    return model


def _transition_priors(data: SwitchingData, spec: MarkovSwitchingRegression) -> dict:
    """``tvtp_coef`` or ``transition`` (+ ``expected_duration``), and ``init_probs`` if free."""
    k = spec.k_regimes
    pr = spec.prior
    params: dict[str, pt.TensorVariable] = {}
    if spec.exog_tvtp:
        scale = np.array(
            [
                pr.tvtp_scale / s if np.ptp(c) > 0 else pr.tvtp_scale
                for c, s in zip(data.exog_tvtp.T, map(_sd, data.exog_tvtp.T), strict=True)
            ]
        )
        init = np.zeros((k, k - 1, len(scale)))
        const_cols = [i for i, c in enumerate(data.exog_tvtp.T) if np.ptp(c) == 0 and c[0] != 0]
        if const_cols:  # start persistent: stay logit +3 vs the reference, reference row -3
            c = const_cols[0]
            cval = data.exog_tvtp[0, c]
            for i in range(k):
                for j in range(k - 1):
                    init[i, j, c] = (3.0 if i == j else 0.0) / cval if i < k - 1 else -3.0 / cval
        params["tvtp_coef"] = pm.Normal(
            "tvtp_coef",
            0.0,
            np.broadcast_to(scale, init.shape),
            dims=("regime_from", "tvtp_to", "tvtp_variable"),
            initval=init,
        )
    else:
        alpha = pr.transition_alpha(k)
        start = np.full((k, k), 0.1 / (k - 1))
        np.fill_diagonal(start, 0.9)
        params["transition"] = pm.Dirichlet(
            "transition", a=alpha, dims=("regime_from", "regime_to"), initval=start
        )
        pm.Deterministic(
            "expected_duration", 1.0 / (1.0 - pt.diagonal(params["transition"])), dims="regime"
        )
    if pr.initial == "dirichlet":
        params["init_probs"] = pm.Dirichlet("init_probs", a=np.ones(k), dims="regime")
    return params


def _regression_priors(data: SwitchingData, spec: MarkovSwitchingRegression) -> dict:
    """``const``, ``trend``, ``exog_coef``, ``sigma`` and ``ar`` as the spec has them."""
    k = spec.k_regimes
    y_obs = data.y[data.observed]
    y_mean, y_sd = data.y_mean, data.y_sd
    pr = spec.prior
    ordered = spec.ordered_parameter
    lin = np.linspace(-1.0, 1.0, k)
    params: dict[str, pt.TensorVariable] = {}
    if "c" in spec.trend:
        scale = pr.intercept_scale * y_sd
        if spec.switching_trend:
            kw = {}
            start = y_mean + 0.5 * y_sd * lin
            if ordered == "const":
                kw["transform"] = pm.distributions.transforms.ordered
            params["const"] = pm.Normal(
                "const", y_mean, scale, dims="regime", initval=start, **kw
            )
        else:
            params["const"] = pm.Normal("const", y_mean, scale, initval=np.median(y_obs))
    if "t" in spec.trend:
        tt = np.arange(1, data.n_obs_full + 1, dtype=float)
        scale = pr.coef_scale * y_sd / _sd(tt)
        params["trend"] = pm.Normal(
            "trend", 0.0, scale, dims="regime" if spec.switching_trend else None
        )
    if data.n_exog:
        xs = data.design[:, data.n_trend :]
        scale = pr.coef_scale * y_sd / np.array([_sd(c) for c in xs.T])
        dims = ("regime", "exog") if spec.switching_exog else ("exog",)
        shape = (k, data.n_exog) if spec.switching_exog else (data.n_exog,)
        params["exog_coef"] = pm.Normal(
            "exog_coef", 0.0, np.broadcast_to(scale, shape), dims=dims
        )
    sscale = pr.sigma_scale * y_sd
    if spec.switching_variance:
        kw = {}
        if ordered == "sigma":
            kw["transform"] = pm.distributions.transforms.Ordered(positive=True)
        start = y_sd * np.linspace(0.5, 1.0, k)
        params["sigma"] = pm.HalfNormal("sigma", sscale, dims="regime", initval=start, **kw)
    else:
        params["sigma"] = pm.HalfNormal("sigma", sscale, initval=0.7 * y_sd)
    if spec.order:
        dims = ("regime", "lag") if spec.switching_ar else ("lag",)
        shape = (k, spec.order) if spec.switching_ar else (spec.order,)
        params["ar"] = pm.Normal("ar", 0.0, pr.ar_scale, dims=dims, initval=np.zeros(shape))
    return params
