"""The hardest as-of months: the default model passes its gate first time and the forecast runs.

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

# Issue 13 is still open for the 2007-2008 origins: with small-cap volume in the likelihood only from
# 2005-01 (model.volume_start) they hold 33-45 volume months, and the volume level/trend are weakly
# identified. The same seed passed first time in one run (r-hat 1.003-1.005) and failed twice in
# another (2008-09: r-hat 1.036 on vol_level). They run every time and are reported as XFAIL/XPASS
# rather than hiding either outcome; the other three origins must pass.
_FRAGILE = pytest.mark.xfail(reason="issue 13 open: 2007-08 fits fragile with volume from 2005 only",
                             strict=False)
HARD_ORIGINS = ("1990-01", pytest.param("2007-09", marks=_FRAGILE), pytest.param("2008-06", marks=_FRAGILE),
                pytest.param("2008-09", marks=_FRAGILE), "2016-06", "2019-09")


@pytest.mark.parametrize("as_of", HARD_ORIGINS)
def test_hard_origin_passes_the_gate_first_time_and_forecasts(as_of, data_store, tmp_path):
    config = load_config()
    out = forecast_run(config=config, out=tmp_path / "fc", data=data_store, as_of=as_of, seed=1,
                       horizon=12, progressbar=False)
    manifest = json.loads((out.run_dir / "manifest.json").read_text())
    attempts = manifest["fit_attempts"]["attempts"]
    assert len(attempts) == 1, attempts  # passed first time, no retry
    assert attempts[0]["problems"] == []
    assert manifest["as_of"] == as_of
    names = {e["name"] for e in (config.events or DEFAULT_EVENT_SPECS)}
    assert set(out.summary["event"]) == names and "volume_return" in names
    assert (out.run_dir / "forecast.nc").is_file()
