"""Run directories: save a fit (netCDF + CSV + JSON manifest) and load it back with identity checks.

A run directory holds::

    posterior.nc        InferenceData: posterior, sample_stats, and a ``regime_probabilities`` group
                        (``MacroFit.regime_probabilities()``: dims stat, time, macro | policy;
                        ``load_run`` answers the same request from it)
    regimes.csv         date, p_<macro label>..., p_<policy label>...  (posterior-mean smoothed)
    diagnostics.json    r-hat, bulk/tail ESS, divergences, sampling time, gate verdict
    config.json         the resolved configuration
    panel.csv           the monthly panel the fit saw (cut at the as-of month)
    manifest.json       package version, config digest, data vintage, as-of, seed, created
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import arviz as az
import pandas as pd

from regimecast import __version__
from regimecast.config import MODEL_STRUCTURE, RunConfig, config_from_dict
from regimecast.data.columns import VOLUME_SERIES
from regimecast.errors import RunMismatchError
from regimecast.io import atomic_path, atomic_write_json, atomic_write_text, digest
from regimecast.results import MacroFit
from regimecast.reweight import FILTER_GROUP, filter_state_dataset, fit_filter_state

log = logging.getLogger(__name__)

POSTERIOR = "posterior.nc"
MANIFEST = "manifest.json"


def write_fit(
    run_dir: Path,
    fit: MacroFit,
    *,
    as_of: str | None,
    data_vintage: dict[str, Any],
    gate_problems: list[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the fit's files into an existing (staging) directory; returns the manifest."""
    run_dir = Path(run_dir)
    cfg_dict = fit.config.to_dict()
    regimes = fit.regime_probabilities()  # scalar attrs only: they identify the request on load
    idata = fit.idata.copy()
    for group in ("regime_probabilities", FILTER_GROUP):  # a loaded run's: recomputed for this fit
        if group in idata.groups():
            del idata[group]
    # the per-draw filter state at the as-of month: an update continues it instead of refiltering
    state = filter_state_dataset(fit_filter_state(fit), fit.idata, fit.data)
    idata.add_groups({"regime_probabilities": regimes, FILTER_GROUP: state}, warn_on_custom_groups=False)
    # uncompressed: zlib (ArviZ's default, and inherited from a loaded parent's file) made writing the
    # 36 MB filter state take 0.8 s instead of 0.1 s, most of an update's write
    for group in idata.groups():
        for var in idata[group].variables.values():
            var.encoding = {}
    with atomic_path(run_dir / POSTERIOR) as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf", compress=False)
    atomic_write_text(run_dir / "regimes.csv", fit.regimes_frame().to_csv(index=False, float_format="%.6f"))
    diag = fit.diagnostics.to_dict()
    diag["gate"] = {"passed": not gate_problems, "problems": gate_problems, **vars(fit.config.gate)}
    atomic_write_json(run_dir / "diagnostics.json", diag)
    atomic_write_json(run_dir / "config.json", cfg_dict)
    panel = fit.panel.copy()
    panel.index = panel.index.strftime("%Y-%m-%d")
    atomic_write_text(run_dir / "panel.csv", panel.to_csv(index_label="date"))
    manifest = {
        "package_version": __version__,
        "config_digest": digest(cfg_dict),
        "config_source": fit.config.source,
        "data_vintage": data_vintage,
        "as_of": as_of or f"{fit.panel.index.max():%Y-%m}",
        "seed": fit.random_seed,
        "volume_series": VOLUME_SERIES,
        "model_structure": MODEL_STRUCTURE,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    atomic_write_json(run_dir / MANIFEST, manifest)
    return manifest


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        if k not in a or k not in b:
            out.append(key)
        elif isinstance(a[k], dict) and isinstance(b[k], dict):
            out.extend(_diff(a[k], b[k], key + "."))
        elif a[k] != b[k]:
            out.append(key)
    return out


def _check_structure(run_dir: Path, manifest: dict) -> None:
    """Refuse a run of another model structure (e.g. the 4-state policy chain before issue 9)."""
    found = manifest.get("model_structure")
    if found == MODEL_STRUCTURE:
        return
    made = (
        "the 4-state policy model (one policy chain: QE, cutting, hold, tightening)"
        if found is None
        else f"model structure {found!r}"
    )
    raise RunMismatchError(
        f"{run_dir} was made by {made}; this code models {MODEL_STRUCTURE!r} (a rate stance and a "
        "balance-sheet stance beside the macro regime), so its posterior does not fit this model: "
        "refit with `regimecast fit`"
    )


def _check_volume_series(run_dir: Path, manifest: dict) -> None:
    """Refuse a run whose small-cap volume series is not this code's (e.g. the old IWM splice)."""
    found = manifest.get("volume_series")
    if found == VOLUME_SERIES:
        return
    made = (
        "the old small-cap volume series (IWM share volume, rescaled ^RUT before 2005)"
        if found is None
        else f"small-cap volume series {found!r}"
    )
    raise RunMismatchError(
        f"{run_dir} was made with {made}, this code models {VOLUME_SERIES!r}: its volume "
        "parameters and forecasts are in other units; refit with `regimecast fit`"
    )


def load_run(run_dir: str | Path, *, expected_config: RunConfig | None = None) -> tuple[MacroFit, dict]:
    """Restore a fit from ``run_dir``; returns ``(fit, manifest)``.

    Raises :class:`RunMismatchError` when the run was made by another package version or with another
    small-cap volume series (manifest ``volume_series``), when its stored
    config no longer resolves to the digest it was saved with (the config schema changed), or when it
    differs from ``expected_config``; the message names what differs.
    """
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).is_file() or not (run_dir / POSTERIOR).is_file():
        raise RunMismatchError(
            f"{run_dir} is not a regimecast run (no {MANIFEST} / {POSTERIOR}); run `regimecast fit` first"
        )
    manifest = json.loads((run_dir / MANIFEST).read_text())
    if manifest.get("package_version") != __version__:
        raise RunMismatchError(
            f"{run_dir} was made by regimecast {manifest.get('package_version')}, this is {__version__}: "
            "refit with `regimecast fit`"
        )
    _check_structure(run_dir, manifest)
    _check_volume_series(run_dir, manifest)
    stored = json.loads((run_dir / "config.json").read_text())
    cfg = config_from_dict(stored, source=str(run_dir / "config.json"))
    if digest(cfg.to_dict()) != manifest.get("config_digest"):
        diff = _diff(cfg.to_dict(), stored)
        raise RunMismatchError(
            f"{run_dir}: its config no longer matches its digest under this code "
            f"(differs in: {', '.join(diff) or 'defaults'}); refit with `regimecast fit`"
        )
    if expected_config is not None and digest(expected_config.to_dict()) != manifest["config_digest"]:
        diff = _diff(expected_config.to_dict(), cfg.to_dict())
        raise RunMismatchError(
            f"{run_dir} was fitted with a different config (differs in: {', '.join(diff)}); "
            "drop --from-run to refit, or pass the run's own config"
        )
    idata = az.from_netcdf(str(run_dir / POSTERIOR), engine="h5netcdf")
    panel = pd.read_csv(run_dir / "panel.csv", parse_dates=["date"], index_col="date",
                        float_precision="round_trip")  # the exact floats the fit saw
    panel.index.freq = None
    fit = MacroFit(config=cfg, panel=panel, idata=idata, random_seed=int(manifest.get("seed", 0)))
    return fit, manifest
