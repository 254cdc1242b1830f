"""The hardest as-of months: the default model passes its gate first time and the forecast runs.

One real-data fit per origin (~1.5-5 min each on 2 cores), so this module is all ``slow``.
Until the real-time default events are merged, the ``volume_return`` event (the 2021 average) is not
defined before 2021-12: origins before then forecast the other default events.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from regimecast.config import load_config
from regimecast.events import DEFAULT_EVENT_SPECS
from regimecast.workflow import forecast_run

pytestmark = pytest.mark.slow

HARD_ORIGINS = ("1990-01", "2007-09", "2008-06", "2008-09", "2016-06", "2019-09")


def _events_defined_at(as_of: str) -> tuple[dict, ...]:
    cut = pd.Period(as_of, freq="M")
    specs = load_config().events or DEFAULT_EVENT_SPECS
    return tuple(e for e in specs
                 if not (e.get("mean_of") and pd.Period(e["mean_of"][1], freq="M") > cut))


@pytest.mark.parametrize("as_of", HARD_ORIGINS)
def test_hard_origin_passes_the_gate_first_time_and_forecasts(as_of, data_store, tmp_path):
    config = load_config()
    config = config.replace(events=_events_defined_at(as_of))
    out = forecast_run(config=config, out=tmp_path / "fc", data=data_store, as_of=as_of, seed=1,
                       horizon=12, progressbar=False)
    manifest = json.loads((out.run_dir / "manifest.json").read_text())
    attempts = manifest["fit_attempts"]["attempts"]
    assert len(attempts) == 1, attempts  # passed first time, no retry
    assert attempts[0]["problems"] == []
    assert manifest["as_of"] == as_of
    names = {e["name"] for e in config.events}
    assert set(out.summary["event"]) == names
    assert (out.run_dir / "forecast.nc").is_file()
