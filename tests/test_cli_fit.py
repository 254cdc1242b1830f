"""The CLI end to end: the gate's exit codes, `fit` overrides and --force, `forecast --from-run`
refusals, and a valid scenario on each scenario variable (including a lone CPI print)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pinned import CONFIG, pinned_fit, qe_prone_point
from scipy import stats

from regimecast.cli import main
from regimecast.data import columns as C
from regimecast.errors import (
    ConfigError,
    ConvergenceError,
    DataError,
    RunExistsError,
    RunMismatchError,
)
from regimecast.forecast import _future_emission, parse_scenario
from regimecast.io import staged_run_dir
from regimecast.models.macro import numpy_params
from regimecast.results import MacroFit
from regimecast.runs import write_fit

RUN_CONFIG = CONFIG.replace(forecast={"paths_per_draw": 25})


def one_line_error(capsys) -> str:
    """Exactly one line on stderr, starting with ``error:``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def _save(fit: MacroFit, path: Path, *, gate: bool) -> Path:
    with staged_run_dir(path) as stage:
        write_fit(stage, fit, as_of="2023-12", data_vintage={"test": True},
                  gate_problems=[] if gate else ["r-hat nan > 1.01"],
                  extra={"gate_passed": gate, "demo": False})
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = pinned_fit(qe_prone_point())
    fit = MacroFit(config=RUN_CONFIG, panel=base.panel, idata=base.idata, random_seed=11)
    root = tmp_path_factory.mktemp("cli-runs")
    return {"fit": fit, "good": _save(fit, root / "good", gate=True),
            "bad": _save(fit, root / "bad", gate=False)}


def _forecast(capsys, run: Path, out: Path, *extra: str) -> int:
    capsys.readouterr()
    return main(["forecast", "--from-run", str(run), "--out", str(out), "--seed", "4", *extra])


# --------------------------------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------------------------------


def test_forecast_refuses_a_run_that_failed_its_gate(runs, tmp_path, capsys):
    out = tmp_path / "fc"
    assert _forecast(capsys, runs["bad"], out, "--horizon", "3") == ConvergenceError.exit_code == 4
    msg = one_line_error(capsys)
    assert "convergence gate" in msg and "--allow-unconverged" in msg
    assert not out.exists()
    assert _forecast(capsys, runs["bad"], out, "--horizon", "3", "--allow-unconverged") == 0
    assert (out / "forecast.nc").is_file()


def test_forecast_from_run_with_another_as_of(runs, tmp_path, capsys):
    out = tmp_path / "fc"
    assert _forecast(capsys, runs["good"], out, "--as-of", "2023-06") == DataError.exit_code == 2
    msg = one_line_error(capsys)
    assert "2023-06" in msg and "2023-12" in msg and "drop --from-run" in msg
    assert not out.exists()


def _run_config_toml(horizon: int) -> str:
    """models/default.toml turned into the pinned run's config, with ``forecast.horizon`` set."""
    text = (Path(__file__).resolve().parents[1] / "models" / "default.toml").read_text()
    for old, new in (('start = "1960-01"', 'start = "1995-01"'), ("max_draws = 1000", "max_draws = 40"),
                     ("paths_per_draw = 1\n", "paths_per_draw = 25\n"),
                     ("horizon = 24", f"horizon = {horizon}")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_forecast_from_run_with_another_config(runs, tmp_path, capsys):
    toml = tmp_path / "other.toml"
    toml.write_text(_run_config_toml(12))
    out = tmp_path / "fc"
    assert _forecast(capsys, runs["good"], out, "--config", str(toml)) == RunMismatchError.exit_code
    assert RunMismatchError.exit_code == 6
    msg = one_line_error(capsys)
    assert "differs in: forecast.horizon)" in msg and "different config" in msg
    assert not out.exists()
    # the run's own settings are accepted
    toml.write_text(_run_config_toml(24))
    assert _forecast(capsys, runs["good"], out, "--config", str(toml), "--horizon", "2") == 0


def test_forecast_refuses_to_overwrite_its_output(runs, tmp_path, capsys):
    out = tmp_path / "fc"
    out.mkdir()
    (out / "keep.txt").write_text("earlier")
    assert _forecast(capsys, runs["good"], out, "--horizon", "2") == RunExistsError.exit_code == 5
    assert "--force" in one_line_error(capsys)
    assert (out / "keep.txt").read_text() == "earlier"


def test_bad_scenario_month_is_a_config_error(runs, tmp_path, capsys):
    out = tmp_path / "fc"
    code = _forecast(capsys, runs["good"], out, "--horizon", "3", "--scenario", "cpi_mom_ann:2025-06=1")
    assert code == ConfigError.exit_code == 2
    assert "outside the forecast window" in one_line_error(capsys)
    assert not out.exists()


# --------------------------------------------------------------------------------------------------
# a valid scenario on each variable
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "fc"
    assert main(["forecast", "--from-run", str(runs["good"]), "--out", str(out), "--seed", "4",
                 "--horizon", "3"]) == 0
    return xr.load_dataset(out / "forecast.nc")


def _share(ds, var, h, state):
    return float((ds[var].values[:, h] == state).mean())


@pytest.mark.parametrize(
    ("scenario", "var", "h", "state"),
    [
        ("cpi_mom_ann:2024-01=-8,2024-02=-9", "macro_state", 2, 0),  # deflationary
        ("cpi_mom_ann:2024-03=-10", "macro_state", 3, 0),  # a lone print: its previous month unknown
        ("policy_rate_change:2024-01=-0.75", "rate_state", 1, 0),  # cutting
        # this run sits in QE at the as-of: two steady prints end it
        ("balance_sheet_growth:2024-01=0.5,2024-02=0.5", "bs_state", 2, 1),
    ],
    ids=["cpi", "cpi-lone", "rate", "balance-sheet"],
)
def test_valid_scenario_on_each_variable(runs, baseline, tmp_path, capsys, scenario, var, h, state):
    out = tmp_path / "fc"
    assert _forecast(capsys, runs["good"], out, "--horizon", "3", "--scenario", scenario) == 0
    fc = xr.load_dataset(out / "forecast.nc")
    assert fc.attrs["scenario"] == scenario
    assert _share(fc, var, h, state) > _share(baseline, var, h, state) + 0.3, (
        _share(fc, var, h, state), _share(baseline, var, h, state))
    if scenario.startswith("cpi_mom_ann"):
        prints = parse_scenario(scenario, pd.Timestamp("2023-12-01"), 3)[C.CPI_MOM_ANN]
        for k in range(1, 4):
            if np.isfinite(prints[k]):
                np.testing.assert_array_equal(fc[C.CPI_MOM_ANN].values[:, k], prints[k])


def test_lone_cpi_print_uses_the_stationary_ar1_density(runs):
    """Oracle: a print whose previous month is unknown scores N(mu_s, sigma_s^2 / (1 - ar^2))."""
    fit = runs["fit"]
    point = fit.points(1)[0]
    scen = parse_scenario("cpi_mom_ann:2024-03=-4.5", pd.Timestamp("2023-12-01"), 4)
    le = _future_emission(point, fit, scen, 4)
    p = numpy_params(point, fit.config.model)
    for k in range(27):
        s = k // 9
        sd = p["cpi_sigma"][s] / np.sqrt(1 - p["cpi_ar"] ** 2)
        assert le[2, k] == pytest.approx(stats.norm.logpdf(-4.5, p["cpi_mean"][s], sd), rel=1e-10)
    np.testing.assert_array_equal(le[[0, 1, 3]], 0.0)  # months without prints carry no evidence


# --------------------------------------------------------------------------------------------------
# `regimecast fit` end to end (a real, tiny fit of the demo economy)
# --------------------------------------------------------------------------------------------------

SMALL_TOML = """\
[model]
start = "2008-01"
[sampler]
sampler = "pymc"
start = "prior"
max_treedepth = 5
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "regimecast.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1500)


@pytest.mark.slow
def test_fit_cli_overrides_gate_exit_code_and_force(tmp_path):
    toml = tmp_path / "small.toml"
    toml.write_text(SMALL_TOML)
    run = tmp_path / "run"
    common = ["fit", "--demo", "--config", str(toml), "--out", str(run), "--seed", "3"]
    # far too few draws for the gate: exit 4, one line, the run kept for inspection
    r = _cli(*common, "--draws", "30", "--tune", "40", "--chains", "2", cwd=tmp_path)
    assert r.returncode == ConvergenceError.exit_code == 4, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: fit did not converge"), r.stderr
    assert "--allow-unconverged" in lines[0] and str(run) in lines[0]
    post = xr.open_dataset(run / "posterior.nc", group="posterior", engine="h5netcdf")
    assert (post.sizes["chain"], post.sizes["draw"]) == (2, 30)
    post.close()
    manifest = json.loads((run / "manifest.json").read_text())
    diag = json.loads((run / "diagnostics.json").read_text())
    assert manifest["gate_passed"] is False and diag["gate"]["passed"] is False
    assert diag["gate"]["problems"] and (diag["draws"], diag["chains"]) == (30, 2)
    assert "r-hat" in r.stdout and str(run) in r.stdout
    # without --force the run is not touched
    r = _cli(*common, "--draws", "10", "--tune", "10", "--chains", "1", cwd=tmp_path)
    assert r.returncode == RunExistsError.exit_code == 5
    assert len(r.stderr.strip().splitlines()) == 1 and "--force" in r.stderr
    assert json.loads((run / "manifest.json").read_text()) == manifest
    # --force replaces it; --allow-unconverged exits 0 although the gate still fails
    r = _cli(*common, "--draws", "25", "--tune", "30", "--chains", "3", "--force",
             "--allow-unconverged", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    post = xr.open_dataset(run / "posterior.nc", group="posterior", engine="h5netcdf")
    assert (post.sizes["chain"], post.sizes["draw"]) == (3, 25)
    post.close()
    assert json.loads((run / "manifest.json").read_text())["created"] >= manifest["created"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]  # no staging left
    # and a forecast from the unconverged run is refused at the CLI too
    r = _cli("forecast", "--from-run", str(run), "--out", str(tmp_path / "fc"), cwd=tmp_path)
    assert r.returncode == 4 and len(r.stderr.strip().splitlines()) == 1, r.stderr
