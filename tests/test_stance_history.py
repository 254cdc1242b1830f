"""The history helper of the two instruments: most probable stance per month and its episodes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.results import stance_episodes, stance_history


def _probs(rate: np.ndarray, bs: np.ndarray, macro: np.ndarray) -> xr.Dataset:
    time = pd.date_range("2022-01-01", periods=len(rate), freq="MS")
    return xr.Dataset(
        {"smoothed_rate": (("time", "rate"), rate), "smoothed_bs": (("time", "bs"), bs),
         "smoothed_macro": (("time", "macro"), macro)},
        coords={"time": time, "rate": ["cutting", "hold", "hiking"], "bs": ["QT", "steady", "QE"],
                "macro": ["deflationary", "moderate", "inflationary"]},
    )


def test_stance_history_picks_the_most_probable_state_of_each_chain():
    """Oracle: probabilities typed by hand, the argmax read off by eye."""
    rate = np.array([[0.1, 0.2, 0.7], [0.1, 0.2, 0.7], [0.2, 0.6, 0.2], [0.5, 0.4, 0.1]])
    bs = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.7, 0.2, 0.1], [0.55, 0.4, 0.05]])
    macro = np.tile([0.1, 0.3, 0.6], (4, 1))
    hist = stance_history(_probs(rate, bs, macro))
    assert hist["rate"].tolist() == ["hiking", "hiking", "hold", "cutting"]
    assert hist["bs"].tolist() == ["QT"] * 4
    assert hist["policy"].tolist() == ["hiking + QT", "hiking + QT", "hold + QT", "cutting + QT"]
    np.testing.assert_allclose(hist["p_rate"], [0.7, 0.7, 0.6, 0.5])
    np.testing.assert_allclose(hist["p_bs"], [0.8, 0.6, 0.7, 0.55])
    assert (hist["macro"] == "inflationary").all()
    ep = stance_episodes(hist)
    assert ep.to_dict("records") == [
        {"start": "2022-01", "end": "2022-02", "months": 2, "policy": "hiking + QT"},
        {"start": "2022-03", "end": "2022-03", "months": 1, "policy": "hold + QT"},
        {"start": "2022-04", "end": "2022-04", "months": 1, "policy": "cutting + QT"},
    ]
