"""One results API for the switching regression and the macro model (no sampling).

Posteriors are hand-made: the reference parameter point with one parameter varied across draws, so
the draws differ and subsets, bands and caches can be told apart.  Numbers are checked against the
NumPy reference smoother (:mod:`regimecast.hmm.reference`) run on the NumPy model arrays.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pinned import CONFIG, save_pinned_run

from regimecast.hmm.reference import smoother_np
from regimecast.models import (
    MarkovSwitchingRegression,
    MarkovSwitchingResults,
    build_switching_model,
)
from regimecast.models.macro import log_matrices_np
from regimecast.models.macro_sim import reference_point, simulate_panel
from regimecast.models.switching_arrays import hmm_inputs, marginal_regime
from regimecast.results import MacroFit
from regimecast.runs import load_run

SRC = Path(__file__).resolve().parents[1] / "src" / "regimecast"
N_DRAWS = 12
BAND = (0.03, 0.97)


@pytest.fixture(scope="module")
def macro_fit() -> MacroFit:
    point = reference_point(CONFIG.model)
    panel, _ = simulate_panel(point, CONFIG.model, start="1995-01", end="2015-12", random_seed=4)
    post = {k: np.broadcast_to(np.asarray(v), (1, N_DRAWS, *np.shape(v))).copy()
            for k, v in point.items()}
    post["cpi_ref"] = post["cpi_ref"] + np.linspace(-1.0, 1.0, N_DRAWS)[None]  # draws differ
    return MacroFit(config=CONFIG, panel=panel, idata=az.from_dict(posterior=post), random_seed=7)


@pytest.fixture(scope="module")
def switching_res() -> MarkovSwitchingResults:
    rng = np.random.default_rng(0)
    s = (np.arange(120) // 30) % 2
    y = pd.Series(np.where(s == 1, 2.0, -1.0) + rng.normal(size=120),
                  index=pd.date_range("2000-01-31", periods=120, freq="ME"))
    spec = MarkovSwitchingRegression(2, order=1, regime_names=("low", "high"))
    data = spec.prepare(y)
    model = build_switching_model(data, spec)
    stay = np.linspace(0.8, 0.98, N_DRAWS)
    post = {
        "transition": np.stack([[[p, 1 - p], [1 - p, p]] for p in stay])[None],
        "const": np.tile([-1.0, 2.0], (1, N_DRAWS, 1)),
        "sigma": np.full((1, N_DRAWS), 1.0),
        "ar": np.full((1, N_DRAWS, 1), 0.2),
    }
    dims = {k: list(v) for k, v in model.named_vars_to_dims.items() if k in post}
    idata = az.from_dict(posterior=post, coords=model.coords, dims=dims)
    return MarkovSwitchingResults(spec, data, idata)


def _oracle_macro(fit: MacroFit, max_draws: int) -> dict[str, np.ndarray]:
    """Per-draw smoothed macro / rate / bs probabilities from the NumPy model and reference smoother."""
    m = CONFIG.model
    out = {"macro": [], "rate": [], "bs": []}
    for p in fit.points(max_draws, random_seed=fit.random_seed):
        sm = smoother_np(*log_matrices_np(p, fit.data, m)).smoothed.reshape(-1, 3, 3, 3)  # (t, s, r, b)
        out["macro"].append(sm.sum((2, 3)))
        out["rate"].append(sm.sum((1, 3)))
        out["bs"].append(sm.sum((1, 2)))
    return {k: np.array(v) for k, v in out.items()}


def test_macro_regime_probabilities_follow_max_draws_not_the_first_call(macro_fit):
    """Regression: the hand-written cache returned the first call's result whatever was asked."""
    few = macro_fit.regime_probabilities(max_draws=3)
    many = macro_fit.regime_probabilities(max_draws=10)
    assert few.attrs["draws_used"] == 3 and many.attrs["draws_used"] == 10
    for ds, n in ((few, 3), (many, 10)):
        want = _oracle_macro(macro_fit, n)
        for dim in ("macro", "rate", "bs"):
            got = ds[f"smoothed_{dim}"]
            np.testing.assert_allclose(got.sel(stat="mean"), want[dim].mean(0), atol=1e-8)
            np.testing.assert_allclose(got.sel(stat="lower"), np.quantile(want[dim], BAND[0], 0),
                                       atol=1e-8)
            np.testing.assert_allclose(got.sel(stat="upper"), np.quantile(want[dim], BAND[1], 0),
                                       atol=1e-8)
    assert not np.allclose(few["smoothed_macro"], many["smoothed_macro"])
    assert macro_fit.regime_probabilities(max_draws=3) is few  # cached per argument set
    wide = macro_fit.regime_probabilities(max_draws=3, quantiles=(0.25, 0.75))
    assert wide.attrs["quantile_lower"] == 0.25
    assert (wide["smoothed_macro"].sel(stat="lower") >= few["smoothed_macro"].sel(stat="lower") - 1e-12).all()


def _check_band(ds: xr.Dataset, dims: dict[str, list[str]]) -> None:
    assert set(ds.data_vars) == {f"{k}_{d}" for k in ("smoothed", "filtered") for d in dims}
    for name, da in ds.data_vars.items():
        dim = name.split("_", 1)[1]
        assert da.dims == ("stat", "time", dim)
        assert list(da["stat"].values) == ["mean", "lower", "upper"]
        assert list(da[dim].values) == dims[dim]
        lo, mean, hi = (da.sel(stat=s).values for s in ("lower", "mean", "upper"))
        assert np.all(lo <= mean + 1e-12) and np.all(mean <= hi + 1e-12)
        assert np.any(hi - lo > 1e-3)  # the draws differ, so the band is not degenerate
        np.testing.assert_allclose(mean.sum(-1), 1.0, atol=1e-10)


def test_both_models_share_the_band_convention(macro_fit, switching_res):
    m = CONFIG.model
    _check_band(macro_fit.regime_probabilities(),
                {"macro": list(m.macro_labels), "rate": list(m.rate_labels), "bs": list(m.bs_labels)})
    res = switching_res.regime_probabilities()
    _check_band(res, {"regime": ["low", "high"]})
    # switching numbers against the reference smoother on the NumPy arrays, over all draws
    want = np.array([
        marginal_regime(smoother_np(*hmm_inputs(np, p, switching_res.data, switching_res.spec)).smoothed,
                        2, 1)
        for p in switching_res.points()
    ])
    got = res["smoothed_regime"]
    np.testing.assert_allclose(got.sel(stat="mean"), want.mean(0), atol=1e-8)
    np.testing.assert_allclose(got.sel(stat="upper"), np.quantile(want, BAND[1], 0), atol=1e-8)
    assert (res.time.values == switching_res.data.time_index.values).all()


def test_durations_share_the_band_convention(macro_fit, switching_res):
    sw = switching_res.expected_durations()
    assert sw.dims == ("stat", "regime")
    stay = np.linspace(0.8, 0.98, N_DRAWS)
    np.testing.assert_allclose(sw.sel(stat="mean"), [np.mean(1 / (1 - stay))] * 2)
    mac = macro_fit.expected_durations(max_draws=4)
    assert mac.dims == ("stat", "state") and mac.sizes["state"] == 27
    _, lt, _ = log_matrices_np(macro_fit.points(1)[0], macro_fit.data, CONFIG.model)
    # cpi_ref does not enter the transitions: every draw has the same durations
    np.testing.assert_allclose(mac.sel(stat="upper"), 1 / (1 - np.exp(np.diag(lt))), rtol=1e-8)
    m = CONFIG.model
    assert list(mac.state.values[:4]) == [f"{m.macro_labels[0]}|{m.rate_labels[0]}|{b}" for b in m.bs_labels] + [
        f"{m.macro_labels[0]}|{m.rate_labels[1]}|{m.bs_labels[0]}"]


def test_diagnostics_and_gate_are_shared(macro_fit, switching_res):
    for res in (macro_fit, switching_res):
        assert res.diagnostics is res.diagnostics  # computed once
        assert isinstance(res.convergence_problems(), list)  # one chain: r-hat cannot be computed
    assert macro_fit.gate == CONFIG.gate
    assert "sigma" in switching_res.summary().index


def test_saved_run_answers_the_same_request_and_recomputes_another(macro_fit, tmp_path):
    run = tmp_path / "run"
    save_pinned_run(macro_fit, run)
    loaded, _ = load_run(run)
    stored = loaded.regime_probabilities()
    xr.testing.assert_allclose(stored, macro_fit.regime_probabilities())
    assert stored.attrs["draws_used"] == N_DRAWS and stored.attrs["draws_seed"] == -1
    # the stored group answers the default request: tamper with it and the answer follows
    tampered = loaded.idata["regime_probabilities"]
    tampered = tampered.to_dataset() if hasattr(tampered, "to_dataset") else tampered
    fake = MacroFit(config=loaded.config, panel=loaded.panel, random_seed=loaded.random_seed,
                    idata=az.InferenceData(posterior=loaded.idata.posterior,
                                           regime_probabilities=tampered * 0 + 0.5))
    assert float(fake.regime_probabilities()["smoothed_macro"].max()) == 0.5
    # ... and another request is computed afresh
    sub = fake.regime_probabilities(max_draws=3)
    assert sub.attrs["draws_used"] == 3
    xr.testing.assert_allclose(sub, macro_fit.regime_probabilities(max_draws=3))


# --------------------------------------------------------------------------------------------------
# module structure: no import circle, the kernels do not import their oracle


MODULES = ("regimecast.models.switching", "regimecast.models.switching_results",
           "regimecast.models.hmm_results", "regimecast.results")


@pytest.mark.parametrize("order", [MODULES, MODULES[::-1]], ids=["forward", "reverse"])
def test_modules_import_in_any_order(order):
    code = "; ".join(f"import {m}" for m in order)
    code += "; import sys; assert 'regimecast.hmm.reference' not in sys.modules, 'oracle imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def _imports(path: Path) -> set[str]:
    """Every regimecast module a source file imports, at any depth (functions, TYPE_CHECKING)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("regimecast"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("regimecast"))
    return found


def _module_graph() -> dict[str, set[str]]:
    mods = {}
    for path in SRC.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        name = ".".join(("regimecast", *path.relative_to(SRC).with_suffix("").parts))
        mods[name] = path
    return {m: _imports(p) & set(mods) for m, p in mods.items()}


def test_no_import_cycle_among_modules():
    graph = _module_graph()
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(n):], n]))
            if n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_kernels_do_not_import_their_oracle():
    graph = _module_graph()
    for m in ("regimecast.hmm.forward", "regimecast.hmm.op"):
        assert "regimecast.hmm.reference" not in graph[m], m
    assert graph["regimecast.hmm.reference"] <= {"regimecast.hmm.types"}
