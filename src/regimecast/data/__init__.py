"""The real-data layer: the data store, fetching, the monthly panel and its checks.

Public API (the model code calls exactly these)::

    resolve_store(data) -> Path
    load_panel(store=None, as_of=None) -> pandas.DataFrame
    panel_to_dataset(df) -> xarray.Dataset
    require_history(df, min_months, what=...)
    fetch(store=None, series=None, ...) -> dict
    data_vintage(store) -> dict
"""

from __future__ import annotations

from regimecast.data import columns
from regimecast.data.fetch import data_vintage, fetch
from regimecast.data.panel import (
    build_panel,
    load_panel,
    panel_to_dataset,
    read_panel_csv,
    summarize_panel,
    write_panel_csv,
)
from regimecast.data.sources import SERIES, read_fred, read_series, read_yahoo, resolve_store
from regimecast.data.validate import require_history

__all__ = [
    "SERIES",
    "build_panel",
    "columns",
    "data_vintage",
    "fetch",
    "load_panel",
    "panel_to_dataset",
    "read_fred",
    "read_panel_csv",
    "read_series",
    "read_yahoo",
    "require_history",
    "resolve_store",
    "summarize_panel",
    "write_panel_csv",
]
