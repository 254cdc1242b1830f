"""``regimecast update``: importance weights, news attribution, the new run and every error at the CLI.

The posterior is a pinned reference point with small seeded jitter (no sampling), so every number can be
checked against an independent computation: the NumPy reference filter over the full sample, the PyMC
model's own prior density, and Monte-Carlo paths scored by the events module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from pinned import CONFIG

from regimecast.attribution import reweight_with_news
from regimecast.cli import main
from regimecast.data import load_panel
from regimecast.events import state_start_months
from regimecast.fit import Diagnostics
from regimecast.hmm.reference import filter_np
from regimecast.io import staged_run_dir
from regimecast.models.macro import build_macro_model, log_matrices_np, prepare_data
from regimecast.models.macro_sim import reference_point, simulate_panel
from regimecast.news import find_news, release_steps
from regimecast.reweight import p_start_within, posterior_arrays, psis
from regimecast.runs import load_run, write_fit
from regimecast.update import NumpyFit

N_CHAINS, N_DRAWS = 2, 20
RUT_LOG_LEVEL = 22.1  # log of ~4e9 shares a day: ^RUT constituent volume near the trend centre
POSITIVE_FREE = {"macro_policy_sd", "rate_tau", "bs_tau", "cpi_gap", "cpi_sigma", "rate_gap", "rate_scale",
                 "bs_gap", "bs_scale", "vol_sigma", "rate_era_scale", "bs_proxy_scale"}


def jittered_posterior(sd: float = 0.05, seed: int = 0, vol_level: float = 17.6) -> az.InferenceData:
    """The reference point with seeded jitter (log scale for positive parameters)."""
    rng = np.random.default_rng(seed)
    post = {}
    for k, v in reference_point(CONFIG.model).items():
        v = np.asarray(v, dtype=float)
        noise = rng.normal(0.0, sd, (N_CHAINS, N_DRAWS, *v.shape))
        post[k] = v * np.exp(noise) if k in POSITIVE_FREE else v + noise
    post["vol_ar"] = np.clip(post["vol_ar"], 0.05, 0.95)
    post["cpi_ar"] = np.clip(post["cpi_ar"], 0.05, 0.95)
    post["vol_level"] = vol_level + rng.normal(0.0, 0.05, (N_CHAINS, N_DRAWS))
    post["vol_trend"] = 0.5 + rng.normal(0.0, 0.05, (N_CHAINS, N_DRAWS))
    return az.from_dict(posterior=post)


@pytest.fixture(scope="module")
def sim_panel() -> pd.DataFrame:
    panel, _ = simulate_panel(reference_point(CONFIG.model), CONFIG.model, start="1995-01", end="2023-12",
                              random_seed=11)
    return panel


def oracle_log_weights(idata, old: pd.DataFrame, new: pd.DataFrame) -> np.ndarray:
    """log p_new(theta*) - log p_old(theta): NumPy reference filter over the full samples plus the PyMC
    model's own prior density of vol_level (the one prior that depends on the data)."""
    cfg = CONFIG.model
    d_old, d_new = prepare_data(old, cfg), prepare_data(new, cfg)
    delta = d_old.trend[0] - d_new.trend[0]  # the volume trend's centre moved: theta* shifts vol_level
    arrays = posterior_arrays(idata)
    priors = []
    for d in (d_old, d_new):
        model, _ = build_macro_model(d, cfg)
        v = pt.dscalar("v")
        priors.append(pytensor.function([v], pm.logp(model["vol_level"], v)))
    out = []
    for i in range(len(arrays["vol_level"])):
        p = {k: v[i] for k, v in arrays.items()}
        q = {**p, "vol_level": p["vol_level"] + p["vol_trend"] * delta}
        ll_new = filter_np(*log_matrices_np(q, d_new, cfg)).loglik
        ll_old = filter_np(*log_matrices_np(p, d_old, cfg)).loglik
        pr_old, pr_new = priors[0](p["vol_level"]), priors[1](q["vol_level"])
        out.append(ll_new + pr_new - ll_old - pr_old)
    return np.array(out)


def _reweight(idata, old, new):
    news = find_news(old, new, CONFIG.model)
    arrays = posterior_arrays(idata)
    return reweight_with_news(arrays, old, new, news, CONFIG.model, n_chains=N_CHAINS), news


def test_log_weights_equal_the_full_sample_reference_computation(sim_panel):
    idata = jittered_posterior()
    old, new = sim_panel.loc[:"2023-09"], sim_panel
    rw, news = _reweight(idata, old, new)
    assert set(news["kind"]) == {"new month"} and news["month"].max() == "2023-12"
    want = oracle_log_weights(idata, old, new)
    assert np.ptp(want) > 0.1  # the test can fail: the weights are far from uniform
    np.testing.assert_allclose(rw.log_weights - rw.log_weights.mean(), want - want.mean(), atol=1e-8)


def test_a_revised_past_value_changes_the_weights(sim_panel):
    idata = jittered_posterior(seed=3)
    old = sim_panel.copy()
    new = sim_panel.copy()
    new.loc["2020-05-01", "cpi_mom_ann"] += 4.0
    rw, news = _reweight(idata, old, new)
    assert news[["series", "month", "kind"]].values.tolist() == [["cpi_mom_ann", "2020-05", "revised"]]
    want = oracle_log_weights(idata, old, new)
    assert np.ptp(want) > 0.01
    np.testing.assert_allclose(rw.log_weights - rw.log_weights.mean(), want - want.mean(), atol=1e-8)
    assert rw.attribution["step"].tolist()[-1].startswith("CPI revisions (2020-05")


def test_appending_zero_months_gives_uniform_weights(sim_panel):
    idata = jittered_posterior()
    rw, news = _reweight(idata, sim_panel, sim_panel)
    assert news.empty
    np.testing.assert_array_equal(rw.smoothed.weights, np.full(N_CHAINS * N_DRAWS, 1 / (N_CHAINS * N_DRAWS)))
    assert rw.smoothed.ess == N_CHAINS * N_DRAWS


def test_too_few_independent_draws_refit(sim_panel):
    """``[update] min_ess`` counts independent draws: the weights' ESS x the parent's bulk ESS / draws.
    The same weights pass from a parent whose draws are independent and fail from a correlated one."""
    from regimecast.update import _refit_reasons, draw_efficiency

    rw, _ = _reweight(jittered_posterior(), sim_panel.loc[:"2023-09"], sim_panel)
    ess = rw.smoothed.ess
    cfg = CONFIG.replace(update={"min_ess": 0.5 * ess, "khat_threshold": 1.0})
    assert _refit_reasons(rw, cfg, 1.0) == []
    (reason,) = _refit_reasons(rw, cfg, 0.25)
    assert "independent draws" in reason and f"{0.25 * ess:.0f}" in reason
    # the backtest's own floor, [update] backtest_min_ess, replaces min_ess when named
    for least, passes in ((0.2 * ess, True), (0.3 * ess, False)):
        bt = cfg.replace(update={"backtest_min_ess": least})
        reasons = _refit_reasons(rw, bt, 0.25, floor="backtest_min_ess")
        assert (reasons == []) is passes, reasons
    assert "backtest_min_ess" in reasons[0] and f"< {0.3 * ess:.0f}" in reasons[0]
    # the efficiency: the sampler's bulk ESS / draws, or what a reweighted posterior recorded
    n = N_CHAINS * N_DRAWS
    diag = Diagnostics(r_hat_max=1.0, ess_bulk_min=10.0, ess_tail_min=10.0, divergences=0,
                       sampling_seconds=0.0, draws=N_DRAWS, chains=N_CHAINS)
    fit = NumpyFit(config=CONFIG, panel=sim_panel, idata=jittered_posterior(), random_seed=1,
                   diagnostics_override=diag)
    assert draw_efficiency(fit) == pytest.approx(10.0 / n)
    idata = jittered_posterior()
    idata.posterior.attrs["effective_draws"] = 4.0
    fit = NumpyFit(config=CONFIG, panel=sim_panel, idata=idata, random_seed=1, diagnostics_override=diag)
    assert draw_efficiency(fit) == pytest.approx(4.0 / n)


def test_exact_start_probability_matches_simulated_paths():
    """Oracle: 200,000 Markov-chain paths scored by events.state_start_months."""
    rng = np.random.default_rng(5)
    K = 12
    A = rng.dirichlet(np.full(K, 0.3), size=K) * 0.5 + np.eye(K) * 0.5
    alpha = rng.dirichlet(np.ones(K))
    target = (np.arange(K) % 4) == 0
    want = p_start_within(alpha[None], np.log(A)[None], target, 12)[0]
    n = 200_000
    paths = np.empty((n, 13), dtype=int)
    paths[:, 0] = rng.choice(K, size=n, p=alpha)
    cum = np.cumsum(A, axis=1)
    for h in range(1, 13):
        u = rng.random(n)
        paths[:, h] = np.minimum((u[:, None] > cum[paths[:, h - 1]]).sum(1), K - 1)
    first = state_start_months(target[paths])
    got = np.isfinite(first).mean()
    assert abs(got - want) < 5 * np.sqrt(want * (1 - want) / n), (got, want)


def test_attributions_add_up_to_the_total_change(sim_panel):
    idata = jittered_posterior(sd=0.08, seed=7)
    old, new = sim_panel.loc[:"2023-09"].copy(), sim_panel.copy()
    new.loc["2021-03-01", "balance_sheet_growth"] += 1.5  # a revision too
    rw, news = _reweight(idata, old, new)
    att = rw.attribution
    steps = release_steps(old, new, news, CONFIG.model)
    assert len(att) == len(steps) + 2  # parent row, "time passes", one row per release
    assert att["step"].iloc[2].startswith("balance sheet revisions")
    assert att["step"].iloc[3] == "2023-10 small-cap volume" and att["step"].iloc[-1] == "2023-12 CPI"
    for key in ("qe", "cut"):
        total = att[f"p_{key}"].iloc[-1] - att[f"p_{key}"].iloc[0]
        assert att[f"change_{key}"].iloc[1:].sum() == pytest.approx(total, abs=1e-12)
    # the last row, independently: oracle weights (PSIS) x exact probabilities from the reference filter
    cfg = CONFIG.model
    d_old, d_new = prepare_data(old, cfg), prepare_data(new, cfg)
    arrays = posterior_arrays(idata)
    w = psis(oracle_log_weights(idata, old, new), N_CHAINS).weights
    probs = []
    for i in range(len(w)):
        p = {k: v[i] for k, v in arrays.items()}
        p["vol_level"] = p["vol_level"] + p["vol_trend"] * (d_old.trend[0] - d_new.trend[0])
        li, lt, le = log_matrices_np(p, d_new, cfg)
        alpha = filter_np(li, lt, le).filtered[-1]
        in_qe = (np.arange(27) % 3) == 2  # the balance-sheet chain in QE, k = (s * 3 + r) * 3 + b
        probs.append(p_start_within(alpha[None], lt[None], in_qe, 12)[0])
    assert att["p_qe"].iloc[-1] == pytest.approx(float(np.sum(w * np.array(probs))), abs=1e-9)


# --------------------------------------------------------------------------------------------------
# the command, on a copy of the real store (a pinned posterior on the real panel: no sampling)
# --------------------------------------------------------------------------------------------------
def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _save(fit, path: Path, *, gate: bool = True) -> Path:
    with staged_run_dir(path) as stage:
        write_fit(stage, fit, as_of=f"{fit.panel.index.max():%Y-%m}", data_vintage={"test": True},
                  gate_problems=[], extra={"gate_passed": gate, "demo": False})
    return path


@pytest.fixture(scope="module")
def store(data_store, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("store") / "data"
    shutil.copytree(data_store, dst, ignore=shutil.ignore_patterns("raw"))
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


@pytest.fixture(scope="module")
def parent(store, tmp_path_factory) -> Path:
    panel = load_panel(store, as_of="2023-09")
    # 40 pinned draws, nearly identical: their k-hat is noise around 0.7, not a verdict on the weights
    cfg = CONFIG.replace(update={"min_ess": 2, "khat_threshold": 1.0})
    fit = NumpyFit(config=cfg, panel=panel, idata=jittered_posterior(sd=0.01, vol_level=RUT_LOG_LEVEL), random_seed=1)
    return _save(fit, tmp_path_factory.mktemp("runs") / "parent")


@pytest.fixture(scope="module")
def updated(parent, store, tmp_path_factory):
    before = _hashes(parent)
    out = tmp_path_factory.mktemp("runs") / "updated"
    code = main(["update", "--from-run", str(parent), "--data", str(store), "--as-of", "2023-12",
                 "--out", str(out), "--refit", "never"])
    return code, out, before


def test_update_writes_a_complete_run_with_lineage(updated, parent):
    code, out, _ = updated
    assert code == 0
    for name in ("posterior.nc", "regimes.csv", "diagnostics.json", "config.json", "panel.csv",
                 "manifest.json", "forecast.nc", "event_summary.csv", "report.md", "news.csv",
                 "changes.csv", "changes.md"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    lin = manifest["lineage"]
    assert lin["method"] == "reweighted" and lin["parent"] == str(parent.resolve())
    assert lin["parent_manifest_sha256"] == hashlib.sha256((parent / "manifest.json").read_bytes()).hexdigest()
    assert lin["parent_config_digest"] == json.loads((parent / "manifest.json").read_text())["config_digest"]
    assert 0 < lin["ess"] <= N_CHAINS * N_DRAWS and manifest["as_of"] == "2023-12"
    fit, _ = load_run(out)  # loads like any run, same posterior shape as the parent
    sizes = fit.idata.posterior.sizes
    assert (sizes["chain"], sizes["draw"]) == (N_CHAINS, N_DRAWS)
    assert fit.panel.index.max() == pd.Timestamp("2023-12-01")
    changes = pd.read_csv(out / "changes.csv")
    assert set(changes["section"]) == {"event", "regime", "news"}
    assert "What changed since 2023-09" in (out / "changes.md").read_text()


def test_the_report_opens_with_what_changed(updated):
    """The update's report leads with "What changed since <parent as-of>", in Markdown and HTML, and
    its P(QE within 12 m) before -> after are the numbers of changes.csv."""
    _, out, _ = updated
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    first_md = [ln for ln in md.splitlines() if ln.startswith("## ")][0]
    assert first_md == "## What changed since 2023-09"
    assert html.index("What changed since 2023-09") < html.index("Headlines")
    changes = pd.read_csv(out / "changes.csv")
    row = changes[(changes.section == "event") & (changes.item == "qe_start")
                  & (changes.measure == "p_within_12m")].iloc[0]
    for value in (float(row["before"]), float(row["after"])):
        assert f"{100 * value:.0f}%" in md.split("## Headlines")[0]


def test_the_parent_run_is_byte_identical_after_an_update(updated, parent):
    _, _, before = updated
    assert _hashes(parent) == before


def test_no_new_data_exits_zero_and_writes_nothing(parent, store, tmp_path, capsys):
    out = tmp_path / "u"
    assert main(["update", "--from-run", str(parent), "--data", str(store), "--as-of", "2023-09",
                 "--out", str(out)]) == 0
    assert "no new data" in capsys.readouterr().out
    assert not out.exists() and not list(tmp_path.iterdir())


def test_as_of_before_the_parent_is_an_error(parent, store, tmp_path, capsys):
    out = tmp_path / "u"
    assert main(["update", "--from-run", str(parent), "--data", str(store), "--as-of", "2023-06",
                 "--out", str(out)]) == 7
    assert "before the parent run's as-of 2023-09" in _one_line_error(capsys)
    assert not list(tmp_path.iterdir())


def _truncated_store(store: Path, dst: Path, last: str) -> Path:
    shutil.copytree(store, dst)
    for f in list((dst / "fred").glob("*.csv")) + list((dst / "yahoo").glob("*.csv")):
        lines = f.read_text().splitlines()
        keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0].strip('"')[:10] <= last]
        f.write_text("\n".join(keep) + "\n")
    return dst


def test_a_store_older_than_the_parent_is_an_error(parent, store, tmp_path, capsys):
    old_store = _truncated_store(store, tmp_path / "old", "2023-06-30")
    assert main(["update", "--from-run", str(parent), "--data", str(old_store), "--out",
                 str(tmp_path / "u")]) == 7
    assert "older than the run" in _one_line_error(capsys)
    assert not (tmp_path / "u").exists()


def test_a_store_missing_a_series_the_parent_used_is_an_error(parent, store, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(store, bad)
    f = bad / "fred" / "FEDFUNDS.csv"
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0]] + [ln if ln[:4] < "2020" else ln.split(",")[0] + "," for ln in lines[1:]])
                 + "\n")
    assert main(["update", "--from-run", str(parent), "--data", str(bad), "--out", str(tmp_path / "u")]) == 7
    assert "policy_rate" in _one_line_error(capsys)
    assert not (tmp_path / "u").exists()


def _copy_run(parent: Path, dst: Path, **manifest_changes) -> Path:
    shutil.copytree(parent, dst)
    m = json.loads((dst / "manifest.json").read_text())
    m.update(manifest_changes)
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def test_a_parent_from_another_package_version_is_an_error(parent, store, tmp_path, capsys):
    run = _copy_run(parent, tmp_path / "p", package_version="0.0.1")
    assert main(["update", "--from-run", str(run), "--data", str(store), "--out", str(tmp_path / "u")]) == 6
    assert "regimecast 0.0.1" in _one_line_error(capsys)
    assert not (tmp_path / "u").exists()


def test_a_parent_with_a_changed_config_is_an_error(parent, store, tmp_path, capsys):
    run = _copy_run(parent, tmp_path / "p")
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["zlb"] = 0.5
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["update", "--from-run", str(run), "--data", str(store), "--out", str(tmp_path / "u")]) == 6
    assert "config" in _one_line_error(capsys)
    assert not (tmp_path / "u").exists()


def test_a_parent_that_failed_its_gate_is_refused(parent, store, tmp_path, capsys):
    run = _copy_run(parent, tmp_path / "p", gate_passed=False)
    assert main(["update", "--from-run", str(run), "--data", str(store), "--out", str(tmp_path / "u")]) == 4
    assert "--allow-unconverged" in _one_line_error(capsys)
    assert not (tmp_path / "u").exists()


def test_refit_never_with_untrusted_weights_is_an_error(store, tmp_path, capsys):
    panel = load_panel(store, as_of="2023-09")
    cfg = CONFIG.replace(update={"min_ess": 1e6})  # no weights can be trusted this much
    fit = NumpyFit(config=cfg, panel=panel, idata=jittered_posterior(sd=0.01, vol_level=RUT_LOG_LEVEL), random_seed=1)
    run = _save(fit, tmp_path / "p")
    before = _hashes(run)
    assert main(["update", "--from-run", str(run), "--data", str(store), "--as-of", "2023-12",
                 "--refit", "never", "--out", str(tmp_path / "u")]) == 8
    err = _one_line_error(capsys)
    assert "independent draws" in err and "nothing was written" in err
    assert not (tmp_path / "u").exists() and _hashes(run) == before


def test_an_existing_output_is_not_overwritten(parent, store, updated, capsys):
    _, out, _ = updated
    before = _hashes(out)
    assert main(["update", "--from-run", str(parent), "--data", str(store), "--as-of", "2023-12",
                 "--out", str(out)]) == 5
    assert "--force" in _one_line_error(capsys)
    assert _hashes(out) == before


def test_an_interrupted_update_leaves_no_run_directory(parent, store, tmp_path, capsys):
    out = tmp_path / "u"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "regimecast.cli", "update", "--from-run", str(parent),
                             "--data", str(store), "--as-of", "2023-12", "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob(".u.*.staging")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".u.*.staging")), "the update never started writing"
    proc.send_signal(signal.SIGKILL)  # the hardest interruption: no clean-up code runs
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    # no run directory at --out; only the hidden staging folder is left (a later update ignores it)
    assert not out.exists()
    assert main(["update", "--from-run", str(parent), "--data", str(store), "--as-of", "2023-12",
                 "--out", str(out), "--refit", "never"]) == 0
    assert (out / "manifest.json").is_file()


def test_a_chain_of_updates_keeps_the_lineage_and_reuses_the_parents_forecast(updated, store, tmp_path):
    _, first, _ = updated
    out = tmp_path / "second"
    assert main(["update", "--from-run", str(first), "--data", str(store), "--as-of", "2024-01",
                 "--out", str(out), "--refit", "never"]) == 0
    lin = json.loads((out / "manifest.json").read_text())["lineage"]
    assert lin["parent"] == str(first.resolve()) and lin["parent_as_of"] == "2023-12"
    assert lin["parent_lineage"]["parent_as_of"] == "2023-09"
    # independent draws compound along the chain: ESS x (the parent's own independent draws / draws)
    n = N_CHAINS * N_DRAWS
    first_lin = lin["parent_lineage"]
    ess0 = json.loads((first / "diagnostics.json").read_text())["ess_bulk_min"]
    assert first_lin["effective_draws"] == pytest.approx(first_lin["ess"] * min(1.0, ess0 / n), abs=0.1)
    assert lin["effective_draws"] == pytest.approx(lin["ess"] * first_lin["effective_draws"] / n, abs=0.2)
    assert lin["effective_draws"] < first_lin["effective_draws"]
    # "before" is the parent's own forecast (same seed and settings): its event summary, exactly
    changes = pd.read_csv(out / "changes.csv")
    own = pd.read_csv(first / "event_summary.csv").set_index("event")
    ev = changes[(changes["section"] == "event") & (changes["measure"] == "p_within_12m")].set_index("item")
    for event, row in ev.iterrows():
        assert float(row["before"]) == pytest.approx(own.loc[event, "p_within_12m"], abs=1e-12)


def _reference_filter(arrays: dict, i: int, d, cfg):
    p = {k: v[i] for k, v in arrays.items()}
    return filter_np(*log_matrices_np(p, d, cfg))


def test_a_run_stores_its_filter_state_and_an_update_continues_it(updated, parent):
    """Oracle: the NumPy reference filter of every stored draw over the run's own panel.  The updated
    run's state was continued from the parent's (no refiltering): it must equal a filter of the
    resampled draws (new coordinates) over the whole new panel."""
    from regimecast.reweight import FILTER_GROUP, FILTER_WINDOW, stored_filter_state

    cfg = CONFIG.model
    for run in (parent, updated[1]):
        fit, _ = load_run(run)
        assert FILTER_GROUP in fit.idata.groups()
        state = stored_filter_state(fit.idata, fit.data)
        arrays = posterior_arrays(fit.idata)
        fixed = {k: v for k, v in NumpyFit.points(fit, 1)[0].items() if k not in arrays}
        arrays |= {k: np.broadcast_to(v, (len(state.loglik), *np.shape(v))) for k, v in fixed.items()}
        for i in (0, 7, len(state.loglik) - 1):
            ref = _reference_filter(arrays, i, fit.data, cfg)
            assert state.loglik[i] == pytest.approx(ref.loglik, abs=1e-7)
            np.testing.assert_allclose(state.alpha[i], ref.filtered[-1], atol=1e-9)
            # the last months' filtered states (the updated run's continued over its new months)
            np.testing.assert_allclose(state.window[i], ref.filtered[-FILTER_WINDOW:], atol=1e-9)
    # a stored state never answers for other data: one month less gives another digest
    fit, _ = load_run(parent)
    shorter = prepare_data(fit.panel.iloc[:-1], cfg)
    assert stored_filter_state(fit.idata, shorter) is None


def test_weights_without_the_attribution_are_the_same(sim_panel):
    idata = jittered_posterior(seed=4)
    old, new = sim_panel.loc[:"2023-09"], sim_panel
    news = find_news(old, new, CONFIG.model)
    arrays = posterior_arrays(idata)
    full = reweight_with_news(arrays, old, new, news, CONFIG.model, n_chains=N_CHAINS)
    fast = reweight_with_news(arrays, old, new, news, CONFIG.model, n_chains=N_CHAINS, attribute=False)
    np.testing.assert_array_equal(fast.log_weights, full.log_weights)
    np.testing.assert_array_equal(fast.state_new.alpha, full.state_new.alpha)
    assert fast.attribution.empty and len(full.attribution) > 3


def test_regime_changes_match_an_independent_filter(updated, parent):
    """Oracle for changes.csv's regime rows: per draw, the NumPy reference forward filter
    (``hmm.reference``) over each run's own data; "before" is the parent's filtered state at its
    as-of pushed through the transition matrix, "after" the updated run's filtered state, both
    posterior means over the same draws the module uses, marginalised onto each chain."""
    from regimecast.changes import MAX_DRAWS
    from regimecast.hmm.reference import _forward

    _, out, _ = updated
    before_fit, _ = load_run(parent)
    after_fit, _ = load_run(out)
    m = after_fit.config.model
    comps = {c: np.asarray(v) for c, v in m.state_components().items()}

    def mean_filtered(fit, n_last):
        rows = []
        for p in fit.points(MAX_DRAWS, random_seed=fit.random_seed):
            li, lt, le = fit.matrices(p)
            filt = np.exp(_forward(li, lt, le)[1])  # (T, K) filtered, log space
            rows.append((filt[-n_last:], np.exp(lt)))
        return rows

    b = mean_filtered(before_fit, 1)
    before = np.mean([[f[0] @ np.linalg.matrix_power(A, k) for k in range(4)] for f, A in b], axis=0)
    after = np.mean([f for f, _ in mean_filtered(after_fit, 4)], axis=0)
    changes = pd.read_csv(out / "changes.csv")
    reg = changes[changes.section == "regime"]
    assert len(reg) == 4 * sum(len(v) for v in m.chain_labels().values())
    for t, month in enumerate(["2023-09", "2023-10", "2023-11", "2023-12"]):
        for chain, labels in m.chain_labels().items():
            for j, lab in enumerate(labels):
                row = reg[(reg["item"] == month) & (reg["measure"] == f"P({chain} = {lab})")].iloc[0]
                assert float(row["before"]) == pytest.approx(before[t][comps[chain] == j].sum(), abs=1e-9)
                assert float(row["after"]) == pytest.approx(after[t][comps[chain] == j].sum(), abs=1e-9)
