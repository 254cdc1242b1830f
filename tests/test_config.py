"""Settings: one set of defaults (dataclasses = packaged TOML = models/default.toml), no sampler imports,
and every sampler setting honoured or rejected."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from regimecast.cli import main
from regimecast.config import (
    GateSettings,
    RunConfig,
    SamplerSettings,
    UpdateSettings,
    config_from_dict,
    default_config_text,
    load_config,
)
from regimecast.errors import ConfigError
from regimecast.io import digest

REPO = Path(__file__).resolve().parents[1]
USER_COPY = REPO / "models" / "default.toml"
SECTIONS = ("model", "sampler", "gate", "update", "forecast")
NOT_IN_TOML = {("sampler", "cores")}  # None (one core per chain) has no TOML spelling


def _raw() -> dict:
    return tomllib.loads(USER_COPY.read_text(encoding="utf-8"))


def test_packaged_default_is_byte_identical_to_models_default():
    packaged = resources.files("regimecast").joinpath("default.toml").read_bytes()
    assert packaged == USER_COPY.read_bytes(), (
        "src/regimecast/default.toml and models/default.toml differ: "
        "copy models/default.toml over src/regimecast/default.toml"
    )
    assert default_config_text().encode("utf-8") == packaged


def _flatten(table: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _dataclass_value(section: str, dotted: str):
    obj = getattr(RunConfig(), section)
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("section", SECTIONS)
def test_dataclass_defaults_equal_the_toml_values(section):
    """The oracle is the raw TOML (parsed by tomllib alone), not load_config."""
    raw = _flatten(_raw()[section])
    for key, toml_value in raw.items():
        value = _dataclass_value(section, key)
        if isinstance(value, tuple):
            value = list(value)
        assert value == toml_value, f"[{section}] {key}: dataclass {value!r} != TOML {toml_value!r}"


@pytest.mark.parametrize("section", SECTIONS)
def test_every_setting_is_listed_in_the_toml(section):
    raw = _flatten(_raw()[section])
    declared = _flatten(dataclasses.asdict(getattr(RunConfig(), section)))
    missing = {k for k in declared if k not in raw and (section, k) not in NOT_IN_TOML}
    assert not missing, f"[{section}] settings missing from models/default.toml: {sorted(missing)}"


def test_run_config_equals_load_config_and_digest():
    """Events aside: RunConfig() has none (events are user content, not settings with defaults)."""
    bare, loaded = RunConfig(), load_config()
    for section in SECTIONS:
        assert getattr(bare, section) == getattr(loaded, section), section
    a, b = bare.to_dict(), loaded.to_dict()
    assert a.pop("events") == [] and len(b.pop("events")) == len(_raw()["events"])
    # canonical JSON, where TOML's 200 and the dataclass's 200.0 would differ
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert digest(a) == digest(b)


def test_the_documented_defaults():
    """The numbers the README and the issue name, spelled out by hand."""
    s, g, u = SamplerSettings(), GateSettings(), UpdateSettings()
    assert (s.sampler, s.start, s.draws, s.tune, s.chains) == ("nutpie", "map", 1500, 700, 4)
    assert (s.target_accept, s.max_treedepth, s.retries, s.retry_tune_factor) == (0.9, 10, 1, 2.0)
    assert (g.max_rhat, g.min_ess_bulk, g.min_ess_tail) == (1.01, 200.0, 100.0)
    assert g.max_divergences == 0
    assert (u.khat_threshold, u.min_ess, u.backtest_min_ess) == (0.7, 200.0, 100.0)


def test_config_imports_no_sampler(tmp_path):
    """Reading a config (from a directory outside the checkout) loads neither PyMC, ArviZ nor nutpie."""
    code = (
        "import sys, regimecast.config as c; cfg = c.load_config(); "
        "print(cfg.sampler.sampler, sorted(m for m in ('pymc', 'arviz', 'nutpie', 'pytensor') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "nutpie []"


def test_fit_reexports_the_same_settings():
    from regimecast import fit

    assert fit.SamplerSettings is SamplerSettings and fit.GateSettings is GateSettings


@pytest.mark.parametrize(
    ("section", "values", "word"),
    [
        ("update", {"khat_threshold": 0.0}, "khat_threshold"),
        ("update", {"khat_threshold": 1.5}, "khat_threshold"),
        ("update", {"min_ess": 0}, "min_ess"),
        ("update", {"backtest_min_ess": 0.5}, "backtest_min_ess"),
        ("update", {"pareto": 1}, "pareto"),
        ("sampler", {"retries": -1}, "retries"),
        ("sampler", {"retry_tune_factor": 0.5}, "retry_tune_factor"),
        ("sampler", {"max_treedepth": 0}, "max_treedepth"),
        ("sampler", {"init": "jitter"}, "init"),
        ("sampler", {"cores": 0}, "cores"),
        ("gate", {"max_rhat": 0.9}, "max_rhat"),
    ],
)
def test_bad_settings_are_named(section, values, word):
    with pytest.raises(ConfigError, match=word):
        config_from_dict({section: values})


def test_update_and_retry_settings_read_from_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        "[update]\nkhat_threshold = 0.5\nmin_ess = 50\n[sampler]\nretries = 3\nretry_tune_factor = 3\n"
    )
    cfg = load_config(path)
    assert cfg.update == UpdateSettings(khat_threshold=0.5, min_ess=50.0)
    assert (cfg.sampler.retries, cfg.sampler.retry_tune_factor) == (3, 3.0)
    assert isinstance(cfg.update.min_ess, float) and isinstance(
        cfg.sampler.retry_tune_factor, float
    )


def test_nutpie_rejects_tune_zero_and_pymc_init():
    with pytest.raises(ConfigError, match=r"tune = 0.*nutpie.*sampler = \"pymc\""):
        SamplerSettings(tune=0)
    with pytest.raises(ConfigError, match=r"init = 'adapt_full'.*nutpie.*sampler = \"pymc\""):
        SamplerSettings(init="adapt_full")
    with pytest.raises(ConfigError, match="tune"):
        RunConfig().replace(sampler={"tune": 0})
    # PyMC honours both
    assert SamplerSettings(sampler="pymc", tune=0, init="adapt_full").tune == 0


def test_pymc_init_keeps_the_mass_matrix_choice_when_starting_at_the_mode():
    from regimecast.fit import pymc_init

    pymc = {"sampler": "pymc"}
    assert (
        pymc_init(SamplerSettings(**pymc, start="prior", init="jitter+adapt_full"))
        == "jitter+adapt_full"
    )
    assert pymc_init(SamplerSettings(**pymc, start="map", init="jitter+adapt_full")) == "adapt_full"
    assert pymc_init(SamplerSettings(**pymc, start="map")) == "adapt_diag"  # as before this change
    assert pymc_init(SamplerSettings(**pymc, start="map", init="advi")) == "advi"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", ["fit", "forecast"])
def test_cli_tune_zero_reaches_the_config(command, tmp_path, capsys):
    """`--tune 0` used to be dropped by a truthiness test (forecast then fitted with tune = 700)."""
    out = tmp_path / "run"
    assert main([command, "--demo", "--tune", "0", "--out", str(out)]) == 2
    assert "tune = 0" in _one_line_error(capsys)
    assert not out.exists()


def _tiny_correlated_model():
    import numpy as np
    import pymc as pm

    with pm.Model() as model:
        pm.MvNormal("x", mu=np.zeros(2), cov=np.array([[1.0, 0.995], [0.995, 1.0]]))
    return model


@pytest.mark.slow  # 30-90 s on a loaded 2-core machine (nutpie's numba compile)
@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_max_treedepth_is_honoured(sampler):
    """A strongly correlated Gaussian needs deep trees; capped at depth 2 every draw stops there."""
    from regimecast.fit import sample_model

    settings = SamplerSettings(
        sampler=sampler, start="prior", draws=200, tune=200, chains=1, cores=1, max_treedepth=2
    )
    idata = sample_model(_tiny_correlated_model(), settings, random_seed=3, progressbar=False)
    stats = idata.sample_stats
    depth = stats["depth"] if "depth" in stats else stats["tree_depth"]
    assert int(depth.max()) == 2
    hit = (
        stats["maxdepth_reached"] if "maxdepth_reached" in stats else stats["reached_max_treedepth"]
    )
    assert float(hit.mean()) > 0.5  # the cap binds: without it the trees would grow deeper
    assert idata.posterior.sizes["draw"] == 200
