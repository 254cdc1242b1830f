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
    prepare_data,
)

log = logging.getLogger(__name__)


class MacroRegimeModel:
    """The macro-regime x policy-state model as a specification; ``fit`` never mutates it."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def fit(self, panel: pd.DataFrame, *, random_seed: int, progressbar: bool = True) -> MacroFit:
        cfg = self.config
        data = prepare_data(panel, cfg.model)
        model, _ = build_macro_model(data, cfg.model)
        log.info("sampling %d chains x (%d tune + %d draws), T = %d months, K = %d states",
                 cfg.sampler.chains, cfg.sampler.tune, cfg.sampler.draws, data.T,
                 cfg.model.n_macro * cfg.model.n_policy)
        idata = sample_model(model, cfg.sampler, random_seed=random_seed, progressbar=progressbar)
        return MacroFit(config=cfg, panel=panel, idata=idata, random_seed=random_seed)


@dataclass
class MacroFit(HMMResults):
    """A fitted model: posterior, regime probabilities, diagnostics; the input to ``forecast``.

    The outputs follow :class:`~regimecast.models.hmm_results.HMMResults`: ``regime_probabilities()``
    holds ``smoothed_macro``, ``smoothed_policy``, ``filtered_macro`` and ``filtered_policy`` with dims
    (stat, time, macro|policy); ``expected_durations()`` is (stat, state) over the joint states
    ``"<macro>|<policy>"`` (stat, time, state with time-varying transitions).
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

    @property
    def time_index(self) -> pd.Index:
        return pd.DatetimeIndex(self.data.dates)

    def state_coords(self) -> dict[str, list[str]]:
        m = self.config.model
        return {"macro": list(m.macro_labels), "policy": list(m.policy_labels)}

    def marginal_probabilities(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        m = self.config.model
        joint = probs.reshape(probs.shape[:-1] + (m.n_macro, m.n_policy))
        return {"macro": joint.sum(-1), "policy": joint.sum(-2)}

    def duration_log_transitions(self, point: dict) -> np.ndarray:
        return self.matrices(point)[1]

    def duration_coords(self) -> tuple[str, list[str], pd.Index | None]:
        m = self.config.model
        labels = [f"{s}|{z}" for s in m.macro_labels for z in m.policy_labels]
        return "state", labels, pd.DatetimeIndex(self.data.dates[1:])

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
        for lab in ds.macro.values:
            df[f"p_{lab}"] = ds["smoothed_macro"].sel(macro=lab).values
        for lab in ds.policy.values:
            df[f"p_{lab}"] = ds["smoothed_policy"].sel(policy=lab).values
        return df
