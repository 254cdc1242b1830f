"""A small fitted model whose posterior is pinned at known parameters (no sampling), for fast tests."""

from __future__ import annotations

import arviz as az
import numpy as np

from regimecast.config import load_config
from regimecast.io import staged_run_dir
from regimecast.models.macro_sim import reference_point, simulate_panel
from regimecast.results import MacroFit
from regimecast.runs import write_fit

BASE = load_config()
CONFIG = BASE.replace(model={"start": "1995-01"}, forecast={"max_draws": 40})
N_CHAINS, N_DRAWS = 2, 20


def pinned_fit(point: dict, *, end: str = "2023-12", seed: int = 11) -> MacroFit:
    panel, _ = simulate_panel(point, CONFIG.model, start="1995-01", end=end, random_seed=seed)
    posterior = {k: np.broadcast_to(np.asarray(v), (N_CHAINS, N_DRAWS, *np.shape(v))).copy()
                 for k, v in point.items()}
    idata = az.from_dict(posterior=posterior)
    return MacroFit(config=CONFIG, panel=panel, idata=idata, random_seed=seed)


def qe_prone_point() -> dict:
    """A model where deflation leads to QE: under the deflationary regime steady -> QE is likely."""
    p = {k: np.array(v, copy=True) for k, v in reference_point(CONFIG.model).items()}
    p["bs_dev_macro"][0, 1, 1] = 8.0  # deflationary: steady -> QE (columns of row steady: QT, QE)
    return p




def save_pinned_run(fit, path, *, gate=True):
    with staged_run_dir(path) as stage:
        write_fit(stage, fit, as_of="2023-12", data_vintage={"test": True}, gate_problems=[],
                  extra={"gate_passed": gate, "demo": False})
