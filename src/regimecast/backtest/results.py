"""One result file per origin, written atomically, and the table of all of them.

``origins/<YYYY-MM>.json`` holds the plain numbers of one real-time forecast (method, k-hat, ESS,
wall time, event probabilities, series quantiles, the last observed values); ``origins/<YYYY-MM>.npz``
the simulated values of each series target (for CRPS and PIT).  A file exists only when its origin is
complete, so ``--resume`` redoes exactly the missing origins.
"""

from __future__ import annotations

import io as _io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regimecast.io import atomic_write_bytes, atomic_write_text

ORIGINS_DIR = "origins"
#: event target -> (event name, months)
EVENT_TARGETS: dict[str, tuple[str, int]] = {
    "qe_start_6m": ("qe_start", 6),
    "qe_start_12m": ("qe_start", 12),
    "qe_start_24m": ("qe_start", 24),
    "first_cut_12m": ("first_cut", 12),
    "first_hike_12m": ("first_hike", 12),
}
#: series target -> (panel column, months ahead)
SERIES_TARGETS: dict[str, tuple[str, int]] = {
    "cpi_yoy_12m": ("cpi_yoy", 12),
    "policy_rate_12m": ("policy_rate", 12),
    "smallcap_volume_12m": ("smallcap_volume", 12),
}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class OriginResult:
    origin: str
    method: str  # "refit" | "reweighted" | "failed"
    wall_seconds: float
    khat: float | None = None
    ess: float | None = None
    attempts: int = 1
    gate_passed: bool = True
    problems: list[str] = field(default_factory=list)
    prob: dict[str, float] = field(default_factory=dict)
    last_obs: dict[str, float] = field(default_factory=dict)
    ensembles: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def quantiles(self) -> dict[str, float]:
        out = {}
        for name, x in self.ensembles.items():
            x = np.asarray(x, dtype=float)
            x = x[np.isfinite(x)]
            for q in QUANTILES:
                out[f"{name}_q{int(q * 100):02d}"] = float(np.quantile(x, q)) if x.size else float("nan")
        return out


def origin_paths(out: Path, origin: str) -> tuple[Path, Path]:
    d = Path(out) / ORIGINS_DIR
    return d / f"{origin}.json", d / f"{origin}.npz"


def write_origin(out: Path, res: OriginResult) -> Path:
    """Write the ensembles first and the JSON last: the JSON's presence marks a complete origin."""
    js, npz = origin_paths(out, res.origin)
    buf = _io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v, dtype=float) for k, v in res.ensembles.items()})
    atomic_write_bytes(npz, buf.getvalue())
    d = asdict(res)
    d.pop("ensembles")
    d["quantiles"] = res.quantiles()
    atomic_write_text(js, json.dumps(d, indent=1, sort_keys=True, default=_json_default) + "\n")
    return js


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} to JSON")


def done_origins(out: Path) -> set[str]:
    d = Path(out) / ORIGINS_DIR
    if not d.is_dir():
        return set()
    return {p.stem for p in d.glob("*.json") if (d / f"{p.stem}.npz").is_file()}


def read_origins(out: Path) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """All complete origins as one row each (sorted), plus their ensembles by origin."""
    rows, ens = [], {}
    for origin in sorted(done_origins(out)):
        js, npz = origin_paths(out, origin)
        d = json.loads(js.read_text())
        row: dict[str, Any] = {k: d[k] for k in ("origin", "method", "wall_seconds", "khat", "ess",
                                                  "attempts", "gate_passed")}
        row.update({f"p_{k}": v for k, v in d["prob"].items()})
        row.update({f"last_{k}": v for k, v in d["last_obs"].items()})
        row.update(d["quantiles"])
        row["problems"] = "; ".join(d.get("problems", []))
        rows.append(row)
        with np.load(npz) as z:
            ens[origin] = {k: z[k] for k in z.files}
    return pd.DataFrame(rows), ens


def probabilities_from_events(summary: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Event targets from ``{event: {"p_within_6m": ..., ...}}`` (an event summary by name)."""
    out = {}
    for target, (event, months) in EVENT_TARGETS.items():
        if event in summary:
            out[target] = float(summary[event][f"p_within_{months}m"])
    return out
