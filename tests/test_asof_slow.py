"""The hardest as-of months: the default model passes its gate (a failed first attempt, if any, only
just misses it) and the forecast runs.

One real-data fit per origin (~1.5-5 min each on 2 cores), so this module is all ``slow``.
The default events are the shipped ones: every one of them, ``volume_return`` included, is defined at
every as-of (it is relative to the last liquidity peak before the as-of).
"""

from __future__ import annotations

import json

import pytest

from regimecast.config import load_config
from regimecast.events import DEFAULT_EVENT_SPECS
from regimecast.workflow import forecast_run

pytestmark = pytest.mark.slow

# 2007-09 .. 2008-09 hold 33-45 months of small-cap volume in the likelihood (model.volume_start is
# 2005-01): they failed the gate until the volume trend was pinned below MIN_TREND_MONTHS.
# 2008-06 is fitted once per session and shared (conftest: the update across Lehman starts from it);
# 2007-09 and 2016-06 passed here and are left to the benchmark sweep (benchmarks/bench_asof.py
# --origins 2007-09 2016-06) and the backtest to save CI time; 2008-06 and 2008-09 keep the 2007-08 window.
HARD_ORIGINS = ("1990-01", "2008-06", "2008-09", "2019-09")


@pytest.mark.parametrize("as_of", HARD_ORIGINS)
def test_hard_origin_passes_the_gate_and_forecasts(as_of, data_store, tmp_path, request):
    import pandas as pd

    config = load_config()
    if as_of == "2008-06":  # the fit the update across Lehman starts from (session fixture)
        run = request.getfixturevalue("fit_2008_06")
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["gate_passed"], manifest["fit_attempts"]
        out_dir = forecast_run(from_run=run, out=tmp_path / "fc", horizon=12, progressbar=False).run_dir
    else:
        out_dir = forecast_run(config=config, out=tmp_path / "fc", data=data_store, as_of=as_of, seed=1,
                               horizon=12, progressbar=False).run_dir
        manifest = json.loads((out_dir / "manifest.json").read_text())
    summary = pd.read_csv(out_dir / "event_summary.csv")
    attempts = manifest["fit_attempts"]["attempts"]
    # the gate passes, first time or after the one retry the product makes ([sampler] retries); a
    # first attempt that fails is never far off (1990-01 on this machine: r-hat 1.0101 > 1.01, bulk
    # ESS 407; on the CI machine it passed first time).  A real failure (a chain in another mode) reads
    # r-hat > 1.05 and a bulk ESS in single digits.
    assert manifest["gate_passed"] and attempts[-1]["problems"] == [], attempts
    assert len(attempts) <= 1 + config.sampler.retries
    first = attempts[0]["diagnostics"]
    assert first["r_hat_max"] <= 1.02 and first["ess_bulk_min"] >= 200 and first["divergences"] == 0, first
    assert manifest["as_of"] == as_of
    names = {e["name"] for e in (config.events or DEFAULT_EVENT_SPECS)}
    assert set(summary["event"]) == names and "volume_return" in names
    assert (out_dir / "forecast.nc").is_file()
