"""The workflow's guards: checks before sampling, and refits of a fit that fails its gate."""

from __future__ import annotations

import time

import pymc as pm
import pytest

from regimecast.config import load_config
from regimecast.errors import ConfigError, ConvergenceError, DataError, RunExistsError
from regimecast.fit import (
    GateSettings,
    SamplerSettings,
    convergence_problems,
    diagnose,
    sample_model,
)
from regimecast.workflow import _check_before_sampling, demo_panel, fit_with_retries, forecast_run

LATE_EVENT = {"name": "volume_2021", "kind": "threshold", "variable": "smallcap_volume",
              "mean_of": ["2021-01", "2021-12"]}


class TinyFit:
    """A real (tiny) PyMC fit judged by a gate of our choosing."""

    def __init__(self, settings: SamplerSettings, seed: int, gate: GateSettings) -> None:
        with pm.Model() as model:
            pm.Normal("x", 0.0, 1.0)
        self.settings, self.seed, self.gate = settings, seed, gate
        self.idata = sample_model(model, settings, random_seed=seed, progressbar=False)
        self.diagnostics = diagnose(self.idata)

    def convergence_problems(self) -> list[str]:
        return convergence_problems(self.diagnostics, self.gate)


SMALL = SamplerSettings(draws=50, tune=20, chains=2, cores=1, retries=2, retry_tune_factor=2.0,
                        sampler="pymc", start="prior")  # a tiny model: PyMC from the prior


def test_a_fit_that_keeps_failing_is_retried_with_longer_tuning_and_new_seeds():
    # only the bulk ESS can fail: more effective draws than 2 x 50 draws can give
    impossible = GateSettings(max_rhat=10.0, min_ess_bulk=1e6, min_ess_tail=1.0, max_divergences=10**6)
    calls: list[tuple[int, int]] = []

    def once(settings, seed):
        calls.append((settings.tune, seed))
        return TinyFit(settings, seed, impossible)

    out = fit_with_retries(once, SMALL, random_seed=7)
    assert calls == [(20, 7), (40, 1007), (80, 2007)]
    assert not out.passed and out.retries_used == 2
    assert [a.seed for a in out.attempts] == [7, 1007, 2007]
    assert all(len(a.problems) == 1 and "bulk ESS" in a.problems[0] for a in out.attempts)
    assert out.result.seed == 2007
    assert out.attempts[-1].diagnostics["draws"] == 50
    # the different seeds give different chains
    assert out.attempts[0].diagnostics["r_hat_max"] != out.attempts[1].diagnostics["r_hat_max"]
    with pytest.raises(ConvergenceError, match="3 time"):
        fit_with_retries(lambda s, seed: TinyFit(s, seed, impossible), SMALL, random_seed=7,
                         raise_on_failure=True)


def test_a_fit_that_passes_is_not_retried():
    lenient = GateSettings(max_rhat=10.0, min_ess_bulk=1.0, min_ess_tail=1.0, max_divergences=10**6)
    out = fit_with_retries(lambda s, seed: TinyFit(s, seed, lenient), SMALL, random_seed=3)
    assert out.passed and out.retries_used == 0 and out.attempts[0].tune == 20
    assert out.to_dict()["attempts"][0]["seed"] == 3


def test_retries_zero_tries_once():
    impossible = GateSettings(min_ess_bulk=1e6)
    settings = SamplerSettings(draws=30, tune=10, chains=2, cores=1, retries=0, sampler="pymc",
                               start="prior")
    out = fit_with_retries(lambda s, seed: TinyFit(s, seed, impossible), settings, random_seed=1)
    assert len(out.attempts) == 1 and not out.passed
    assert "bulk ESS" in out.problems[0]


@pytest.mark.parametrize("bad", [{"retries": -1}, {"retry_tune_factor": 0.5}])
def test_retry_settings_are_validated(bad):
    with pytest.raises(ConfigError, match="retr"):
        SamplerSettings(**bad)


def test_sampler_retry_settings_load_from_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[sampler]\nretries = 3\nretry_tune_factor = 1.5\n")
    s = load_config(path).sampler
    assert (s.retries, s.retry_tune_factor) == (3, 1.5)


@pytest.fixture(scope="module")
def late_event_config():
    cfg = load_config()
    kept = tuple(e for e in cfg.events if e.get("variable") != "smallcap_volume")
    return cfg.replace(events=(*kept, LATE_EVENT))


def test_event_window_after_the_as_of_fails_before_sampling(late_event_config, tmp_path):
    out = tmp_path / "fc"
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="volume_2021.*after the as-of month 2015-06"):
        forecast_run(config=late_event_config, out=out, as_of="2015-06", demo=True,
                     progressbar=False)
    assert time.perf_counter() - t0 < 10.0  # a fit takes minutes; the demo panel ~0.1 s
    assert not out.exists()


def test_checks_pass_for_a_window_before_the_as_of(late_event_config, tmp_path):
    panel = demo_panel(late_event_config, "2022-03")
    events = _check_before_sampling(late_event_config, panel, "2022-03", None, tmp_path / "x", False)
    assert "volume_2021" in [e.name for e in events]
    assert not (tmp_path / "x").exists()


def test_bad_scenario_and_existing_output_fail_before_sampling(tmp_path):
    cfg = load_config()
    panel = demo_panel(cfg, "2023-12")
    with pytest.raises(ConfigError, match="outside the forecast window"):
        _check_before_sampling(cfg, panel, "2023-12", "cpi_mom_ann:2023-10=1", tmp_path / "a", False)
    (tmp_path / "b").mkdir()
    with pytest.raises(RunExistsError):
        _check_before_sampling(cfg, panel, "2023-12", None, tmp_path / "b", False)
    _check_before_sampling(cfg, panel, "2023-12", None, tmp_path / "b", True)
