"""Model spec apart from fitted result: ``MacroRegimeModel(config).fit(panel) -> MacroFit``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import arviz as az
import numpy as np
import pandas as pd

from regimecast.config import RunConfig
from regimecast.fit import GateSettings, sample_model
from regimecast.models.hmm_results import HMMResults
from regimecast.models.macro import (
    MacroData,
    build_macro_model,
    compile_matrices,
    free_param_names,
    inactive_params,
    joint_log_emission_batch,
    joint_log_transition,
    numpy_params,
    prepare_data,
    reusable_model,
    transition_drivers,
)

log = logging.getLogger(__name__)


class MacroRegimeModel:
    """The macro-regime x rate-stance x balance-sheet-stance model as a specification; ``fit`` never
    mutates it."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def fit(self, panel: pd.DataFrame, *, random_seed: int, progressbar: bool = True,
            reuse_compiled: bool = False) -> MacroFit:
        """``reuse_compiled``: sample a model built once per structure in this process and refilled
        with this panel (:func:`~regimecast.models.macro.reusable_model`): the same draws for the same
        seed, without the compile after the first fit.  For processes that fit many panels."""
        cfg = self.config
        data = prepare_data(panel, cfg.model)
        model = reusable_model(data, cfg.model) if reuse_compiled else build_macro_model(data, cfg.model)[0]
        log.info("sampling %d chains x (%d tune + %d draws), T = %d months, K = %d states",
                 cfg.sampler.chains, cfg.sampler.tune, cfg.sampler.draws, data.T,
                 cfg.model.n_states)
        idata = sample_model(model, cfg.sampler, random_seed=random_seed, progressbar=progressbar)
        return MacroFit(config=cfg, panel=panel, idata=idata, random_seed=random_seed)


@dataclass
class MacroFit(HMMResults):
    """A fitted model: posterior, regime probabilities, diagnostics; the input to ``forecast``.

    The outputs follow :class:`~regimecast.models.hmm_results.HMMResults`: ``regime_probabilities()``
    holds ``smoothed_<chain>`` and ``filtered_<chain>`` for the chains ``macro``, ``rate`` and ``bs``
    with dims (stat, time, <chain>); ``expected_durations()`` is (stat, state) over the joint states
    ``"<macro>|<rate>|<bs>"`` (stat, time, state with time-varying transitions).
    """

    config: RunConfig
    panel: pd.DataFrame
    idata: az.InferenceData
    random_seed: int

    @cached_property
    def data(self) -> MacroData:
        return prepare_data(self.panel, self.config.model)

    @cached_property
    def _model(self):
        return build_macro_model(self.data, self.config.model)

    @cached_property
    def _matrix_fn(self):
        return compile_matrices(*self._model)

    # ------------------------------------------------------------------------------------ hooks
    @property
    def parameter_names(self) -> list[str]:
        return free_param_names(self._model[0])

    def fixed_parameters(self) -> dict[str, np.ndarray]:
        return inactive_params(self.data, self.config.model)

    def matrices(self, point: dict):
        """(log_init, log_transition, log_emission) at a posterior point."""
        return self._matrix_fn(point)

    def hmm_arrays(self, point: dict):
        return self.matrices(point)

    def hmm_arrays_many(self, points: list[dict], chunk: int = 100):
        """The NumPy model matrices of many draws, their emissions ``chunk`` draws at a time
        (``joint_log_emission_batch``): the regime probabilities of 400 draws over 790 months spent
        most of their time in one emission call per draw."""
        cfg, d = self.config.model, self.data
        fixed, drivers = inactive_params(d, cfg), transition_drivers(d, cfg)
        li = np.full(cfg.n_states, -np.log(cfg.n_states))
        for lo in range(0, len(points), chunk):
            ps = [numpy_params({**fixed, **p}, cfg) for p in points[lo : lo + chunk]]
            for q, le in zip(ps, joint_log_emission_batch(ps, d, cfg), strict=True):
                yield li, joint_log_transition(np, q, cfg, drivers=drivers), le

    @property
    def time_index(self) -> pd.Index:
        return pd.DatetimeIndex(self.data.dates)

    def state_coords(self) -> dict[str, list[str]]:
        return {c: list(v) for c, v in self.config.model.chain_labels().items()}

    def marginal_probabilities(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        m = self.config.model
        joint = probs.reshape(probs.shape[:-1] + (m.n_macro, m.n_rate, m.n_bs))
        return {"macro": joint.sum((-2, -1)), "rate": joint.sum((-3, -1)), "bs": joint.sum((-3, -2))}

    def duration_log_transitions(self, point: dict) -> np.ndarray:
        return self.matrices(point)[1]

    def duration_coords(self) -> tuple[str, list[str], pd.Index | None]:
        return "state", self.config.model.joint_labels(), pd.DatetimeIndex(self.data.dates[1:])

    @property
    def draw_seed(self) -> int:
        return self.random_seed

    @property
    def gate(self) -> GateSettings:
        return self.config.gate

    # ------------------------------------------------------------------------------------ outputs
    def regimes_frame(self) -> pd.DataFrame:
        """``date`` plus ``p_<label>`` columns: posterior-mean smoothed probabilities."""
        ds = self.regime_probabilities().sel(stat="mean")
        df = pd.DataFrame({"date": pd.DatetimeIndex(ds.time.values).strftime("%Y-%m-%d")})
        for chain in self.config.model.chains:
            for lab in ds[chain].values:
                df[f"p_{lab}"] = ds[f"smoothed_{chain}"].sel({chain: lab}).values
        return df

    def stance_history(self) -> pd.DataFrame:
        """Per month the most probable rate stance, balance-sheet stance and macro regime from the
        posterior-mean smoothed probabilities (see :func:`stance_history`)."""
        return stance_history(self.regime_probabilities().sel(stat="mean"))


def stance_history(probs, *, chains: tuple[str, ...] = ("rate", "bs", "macro")) -> pd.DataFrame:
    """Label each month with each chain's most probable state and its probability.

    ``probs``: a Dataset with ``smoothed_<chain>`` (time, <chain>) (``regime_probabilities()`` at one
    stat).  Returns a frame indexed by month with columns ``<chain>`` (label), ``p_<chain>`` and
    ``policy`` (``"<rate> + <bs>"``), for the history table of the two instruments.
    """
    out = pd.DataFrame(index=pd.DatetimeIndex(probs["time"].values, name="date"))
    for chain in chains:
        arr = probs[f"smoothed_{chain}"].transpose("time", chain)
        idx = arr.values.argmax(axis=1)
        out[chain] = np.asarray(arr[chain].values)[idx]
        out[f"p_{chain}"] = arr.values[np.arange(len(idx)), idx]
    if {"rate", "bs"} <= set(chains):
        out["policy"] = out["rate"].astype(str) + " + " + out["bs"].astype(str)
    return out


def stance_episodes(history: pd.DataFrame, column: str = "policy") -> pd.DataFrame:
    """Runs of consecutive months with the same ``column`` value: ``start``, ``end``, ``months``,
    ``column`` (the README's history table)."""
    values = history[column].to_numpy()
    breaks = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts, ends = np.r_[0, breaks], np.r_[breaks, len(values)] - 1
    idx = history.index
    return pd.DataFrame({
        "start": [f"{idx[a]:%Y-%m}" for a in starts],
        "end": [f"{idx[b]:%Y-%m}" for b in ends],
        "months": ends - starts + 1,
        column: values[starts],
    })
