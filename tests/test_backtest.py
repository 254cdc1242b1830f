"""The backtest driver on a pinned posterior (no sampling): cuts, resume after a kill, Dask == one process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from regimecast.backtest.driver import origin_months, parse_refit, plan_blocks
from regimecast.backtest.results import read_origins
from regimecast.backtest.run import run_backtest
from regimecast.config import load_config
from regimecast.errors import ConfigError, RunExistsError, RunMismatchError

TESTS = Path(__file__).resolve().parent
FITTER = "backtest_fixtures:pinned_fitter"
START, END = "2007-01", "2007-10"
# 30 pinned draws: an ESS floor of 2 lets origins be reweighted (the default 100 would refit them all)
CFG = load_config().replace(model={"start": "1995-01"}, forecast={"max_draws": 30},
                            update={"backtest_min_ess": 2.0})
FORECAST_COLS = ("p_", "cpi_yoy_12m_q", "policy_rate_12m_q", "smallcap_volume_12m_q", "method", "khat", "ess")


@pytest.fixture(autouse=True)
def _fixtures_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def _run(store, out, **kw):
    args = dict(store=store, out=out, start=START, end=END, every=3, refit="every:2", scheduler=None,
                fitter=FITTER, seed=3)
    args.update(kw)
    return run_backtest(CFG, **args)


def _forecast_part(df: pd.DataFrame) -> pd.DataFrame:
    return df[[c for c in df.columns if c == "origin" or c.startswith(FORECAST_COLS)]]


@pytest.fixture(scope="module")
def clean(data_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("bt") / "clean"
    sys.path.insert(0, str(TESTS))
    return _run(data_store, out)


def test_origins_blocks_and_refit_modes():
    assert origin_months("2007-01", "2008-01", 3) == ["2007-01", "2007-04", "2007-07", "2007-10", "2008-01"]
    assert plan_blocks(["a", "b", "c"], "every:2") == [["a", "b"], ["c"]]
    assert plan_blocks(["a", "b"], "always") == [["a"], ["b"]]
    assert parse_refit("auto")[0] == "auto"
    # auto: a block at each model change, long segments split into equal blocks of <= AUTO_BLOCK (24)
    o = [f"o{i:02d}" for i in range(60)]
    blocks = plan_blocks(o, "auto", starts=["o10", "o50"])
    assert [(b[0], len(b)) for b in blocks] == [("o00", 10), ("o10", 20), ("o30", 20), ("o50", 10)]
    assert sum(blocks, []) == o
    assert [len(b) for b in plan_blocks(o[:25], "auto")] == [12, 13]
    assert plan_blocks(o[:3], "every:2", starts=["o01"]) == [["o00", "o01"], ["o02"]]  # explicit N wins
    for bad in ("sometimes", "every:0", "every:x"):
        with pytest.raises(ConfigError, match="--refit"):
            parse_refit(bad)
    with pytest.raises(ConfigError, match="before"):
        origin_months("2008-01", "2007-01")


def test_model_change_points_are_where_reweighting_cannot_carry_a_fit(data_store):
    """Oracle: ``same_parameters`` on consecutive panels loaded one by one with ``load_panel(store,
    as_of=...)`` (what a worker reads).  2011-04 is the twelfth QE-like month (the QE state and the
    odds of moving into it are freed), 2022-10 the 36th QT-like month."""
    from regimecast.backtest.driver import model_change_points
    from regimecast.data import load_panel
    from regimecast.models.macro import prepare_data
    from regimecast.reweight import same_parameters

    cfg = load_config()
    origins = origin_months("2010-10", "2011-10", 3) + origin_months("2022-07", "2023-01", 3)
    got = model_change_points(cfg, data_store, origins)
    d = [prepare_data(load_panel(data_store, as_of=o), cfg.model) for o in origins]
    want = [o for o, a, b in zip(origins[1:], d[:-1], d[1:], strict=True) if not same_parameters(a, b, cfg.model)]
    assert got == want
    assert "2011-04" in got and "2022-10" in got and "2011-07" not in got and "2023-01" not in got


def test_outputs_open_and_hold_every_origin(clean):
    out = clean.out
    assert list(clean.origins["origin"]) == ["2007-01", "2007-04", "2007-07", "2007-10"]
    methods = clean.origins.set_index("origin")["method"]
    assert methods.loc[["2007-04", "2007-10"]].eq("reweighted").all()  # the 2nd origin of each block
    reweighted = clean.origins[clean.origins["method"] == "reweighted"]
    assert (reweighted["khat"] <= 0.7).all() and (reweighted["ess"] >= 5).all()
    first_of_block = clean.origins.set_index("origin").loc[["2007-01", "2007-07"], "method"]
    assert (first_of_block == "refit").all()
    for name in ("timeline.png", "pit_cpi_yoy.png", "reliability_qe_start_12m.png"):
        img = mpimg.imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 100
    html = (out / "report.html").read_text()
    assert "<h2>Scores</h2>" in html and html.count("data:image/png;base64,") >= 3
    md = (out / "report.md").read_text()
    assert "## Scores" in md and "## Limitations" in md
    scores = pd.read_csv(out / "scores.csv")
    model = scores[(scores.target == "qe_start_12m") & (scores.score == "brier") & (scores.forecaster == "model")]
    o = clean.origins
    expected = np.mean((o["p_qe_start_12m"] - o["y_qe_start_12m"]) ** 2)
    assert model["mean"].iloc[0] == pytest.approx(expected, rel=1e-5)  # CSV keeps 6 digits
    # the realised outcome comes from the chronology: QE1 was announced in 2008-11
    assert o.set_index("origin").loc["2007-01", "y_qe_start_24m"] == 1.0


def test_existing_directory_is_not_overwritten(clean, data_store):
    with pytest.raises(RunExistsError, match="--resume"):
        _run(data_store, clean.out)
    with pytest.raises(RunMismatchError, match="other settings"):
        _run(data_store, clean.out, resume=True, seed=4)


def _poison(src: Path, dst: Path, after: str) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("raw"))
    cut = pd.Timestamp(after) + pd.offsets.MonthEnd(0)
    for f in list(dst.glob("fred/*.csv")) + list(dst.glob("yahoo/*.csv")):
        df = pd.read_csv(f, dtype=str)
        dates = pd.to_datetime(df.iloc[:, 0], errors="coerce")
        late = dates > cut
        value = "1" if f.stem == "USREC" else "1000000000"  # an indicator stays 0/1, just wrong
        for col in df.columns[1:]:
            df.loc[late & df[col].notna() & (df[col] != ""), col] = value
        df.to_csv(f, index=False)


def test_no_look_ahead_poisoned_future_changes_nothing(clean, data_store, tmp_path):
    store = tmp_path / "poisoned"
    _poison(data_store, store, END)
    poisoned = _run(store, tmp_path / "out", end=END)
    pd.testing.assert_frame_equal(_forecast_part(poisoned.origins), _forecast_part(clean.origins))


def test_resume_after_kill_equals_uninterrupted(clean, data_store, tmp_path):
    out = tmp_path / "killed"
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
        "from regimecast.config import load_config\n"
        "from regimecast.backtest.run import run_backtest\n"
        "cfg = load_config().replace(model={'start': '1995-01'}, forecast={'max_draws': 30},\n"
        "                           update={'backtest_min_ess': 2.0})\n"
        f"run_backtest(cfg, store={str(data_store)!r}, out={str(out)!r}, start={START!r}, end={END!r},\n"
        f"             every=3, refit='every:2', scheduler=None, fitter={FITTER!r}, seed=3)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and len(list((out / "origins").glob("*.json"))) < 1:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = {p.stem for p in (out / "origins").glob("*.json")}
    assert 1 <= len(written) < 4, written
    assert not any(p.name.endswith(".tmp") for p in (out / "origins").iterdir() if p.name.startswith("2"))
    resumed = _run(data_store, out, resume=True)
    pd.testing.assert_frame_equal(_forecast_part(resumed.origins), _forecast_part(clean.origins))


def test_dask_cluster_gives_the_same_numbers(clean, data_store, tmp_path):
    dask = _run(data_store, tmp_path / "dask", scheduler="local", workers=2)
    pd.testing.assert_frame_equal(_forecast_part(dask.origins), _forecast_part(clean.origins))
    first = json.loads((tmp_path / "dask" / "origins" / "2007-01.json").read_text())
    assert first["method"] == "refit" and 0.0 <= first["prob"]["qe_start_12m"] <= 1.0
    df, ens = read_origins(tmp_path / "dask")
    assert ens["2007-04"]["cpi_yoy_12m"].shape == (30,)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--start", "2007-01", "--end", "2006-01"], 2, "before --start"),
        (["--start", "2007-01", "--end", "2008-01", "--refit", "sometimes"], 2, "--refit"),
        (["--start", "2007-13", "--end", "2008-01"], 2, "YYYY-MM"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, data_store, args, code, needle):
    out = tmp_path / "bt"
    proc = subprocess.run(
        [sys.executable, "-m", "regimecast.cli", "backtest", *args, "--out", str(out), "--data", str(data_store)],
        capture_output=True, text=True, timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert not out.exists()


def test_cli_refuses_an_existing_backtest(clean, data_store):
    proc = subprocess.run(
        [sys.executable, "-m", "regimecast.cli", "backtest", "--start", START, "--end", END,
         "--out", str(clean.out), "--data", str(data_store)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 5
    assert proc.stderr.strip().splitlines() == [
        f"error: backtest directory {clean.out} already exists; pass --resume to continue it, "
        "--force to start again, or choose another --out"
    ]


def test_fits_on_a_dask_worker_use_the_workers_threads_not_every_core():
    from dask.distributed import Client, LocalCluster

    from regimecast.backtest.driver import worker_config

    cfg = load_config()
    assert cfg.sampler.cores is None and worker_config(cfg) is cfg  # outside a worker: unchanged
    for threads in (1, 2):
        with LocalCluster(n_workers=1, threads_per_worker=threads, processes=True, dashboard_address=None) as lc, \
                Client(lc) as client:
            assert client.submit(lambda c: worker_config(c).sampler.cores, cfg).result() == threads
            pinned = cfg.replace(sampler={"cores": 3})
            assert client.submit(lambda c: worker_config(c).sampler.cores, pinned).result() == 3
