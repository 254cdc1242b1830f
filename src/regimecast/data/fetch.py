"""Download the raw series into the data store, atomically, and record the data vintage.

* FRED: the public CSV download ``https://fred.stlouisfed.org/graph/fredgraph.csv?id=<ID>`` (no API
  key), stored as is in ``<store>/fred/<ID>.csv``.
* Yahoo: the v8 chart JSON API ``https://query1.finance.yahoo.com/v8/finance/chart/<TICKER>?period1=0
  &period2=<now>&interval=1d`` (the v7 CSV download needs a cookie and crumb), converted to
  ``Date,Open,High,Low,Close,Volume`` (prices dividend-adjusted when Yahoo sends ``adjclose``, raw
  share volume) in ``<store>/yahoo/<TICKER>.csv``; ``^RUT`` is stored as ``RUT.csv``.

Every download is validated with the same readers the panel uses before anything is replaced; the
whole fetch is staged in ``<store>/.commit-stage-*/`` and committed only if every series downloaded
and validated, so a failure (network error, HTTP error, HTML or garbage body, a body over the size
limit) leaves the store exactly as it was.  The commit moves the files and the manifest together
through a journal (:func:`regimecast.io.commit_files`): a fetch killed mid-commit leaves
``<store>/.commit-journal.json``, and the next fetch or read of the store completes it, so no reader
ever sees a store mixing two vintages.  ``<store>/manifest.json`` records, per file, the source
URL, the UTC download time, the SHA-256, the number of rows and the last observation; a fetch of
some series keeps the other files' entries.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from regimecast import __version__
from regimecast.data.sources import (
    SERIES,
    SeriesSpec,
    file_info,
    lookup,
    reading_store,
    resolve_store,
)
from regimecast.errors import DataError, FetchError
from regimecast.io import (
    commit_files,
    folder_lock,
    pending_commit,
    recover,
    sha256_file,
    staged_files,
)

DEFAULT_FRED_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv"
DEFAULT_YAHOO_URL = "https://query1.finance.yahoo.com/v8/finance/chart"
ENV_FRED_URL = "REGIMECAST_FRED_URL"
ENV_YAHOO_URL = "REGIMECAST_YAHOO_URL"
USER_AGENT = (
    f"Mozilla/5.0 (compatible; regimecast/{__version__}; +https://pypi.org/project/regimecast)"
)
DEFAULT_TIMEOUT = 30.0
MANIFEST = "manifest.json"
MAX_BYTES = 64 << 20


def fred_url(series_id: str, base: str | None = None) -> str:
    """The FRED CSV download URL of ``series_id`` (base: argument > ``REGIMECAST_FRED_URL`` > FRED)."""
    base = base or os.environ.get(ENV_FRED_URL) or DEFAULT_FRED_URL
    return f"{base}?{urllib.parse.urlencode({'id': series_id})}"


def yahoo_url(ticker: str, base: str | None = None, *, now: int | None = None) -> str:
    """The Yahoo v8 chart URL of ``ticker``'s whole daily history up to ``now`` (epoch seconds)."""
    base = (base or os.environ.get(ENV_YAHOO_URL) or DEFAULT_YAHOO_URL).rstrip("/")
    now = int(time.time()) if now is None else int(now)
    return f"{base}/{urllib.parse.quote(ticker, safe='')}?period1=0&period2={now}&interval=1d"


def download(
    url: str, *, timeout: float = DEFAULT_TIMEOUT, what: str = "", max_bytes: int = MAX_BYTES
) -> bytes:
    """GET ``url`` with a timeout and a User-Agent; any failure is a :class:`FetchError`.

    A body longer than ``max_bytes`` is refused (only ``max_bytes + 1`` bytes are ever read).
    """
    label = f"{what} " if what else ""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read(max_bytes + 1)
    except urllib.error.HTTPError as err:
        raise FetchError(
            f"download of {label}from {url} failed: HTTP {err.code} {err.reason}; "
            "the data store was left as it was (check the series id, or try again later)"
        ) from None
    except urllib.error.URLError as err:
        raise FetchError(
            f"download of {label}from {url} failed: {err.reason}; the data store was left as it "
            "was (check the network connection or the base URL)"
        ) from None
    except TimeoutError:
        raise FetchError(
            f"download of {label}from {url} timed out after {timeout:g} s; the data store was left "
            "as it was (try again, or raise --timeout)"
        ) from None
    except (http.client.HTTPException, OSError) as err:
        raise FetchError(
            f"download of {label}from {url} failed: {type(err).__name__}: {err}; the data store "
            "was left as it was"
        ) from None
    if len(body) > max_bytes:
        raise FetchError(
            f"download of {label}from {url} is larger than {max_bytes} bytes; refused, and the "
            "data store was left as it was"
        )
    return body


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def yahoo_chart_to_csv(body: bytes, ticker: str, *, url: str = "") -> str:
    """Convert a Yahoo v8 chart JSON response to ``Date,Open,High,Low,Close,Volume`` CSV text.

    Dates are exchange-local (timestamp + ``meta.gmtoffset``).  When ``adjclose`` is present the
    prices are dividend-adjusted (Open/High/Low scaled by adjclose/close, Close = adjclose); volume
    is raw.  Bars without prices are dropped; a repeated date keeps its last bar.
    """
    where = url or ticker
    try:
        obj = json.loads(body.decode("utf-8"))
        chart = obj["chart"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise FetchError(
            f"{where} did not return Yahoo chart JSON for {ticker} (got {body[:60]!r}); "
            "the data store was left as it was"
        ) from None
    if chart.get("error"):
        raise FetchError(f"Yahoo reports an error for {ticker} at {where}: {chart['error']}")
    try:
        result = chart["result"][0]
        stamps = result["timestamp"]
        quote = result["indicators"]["quote"][0]
        if not isinstance(stamps, list) or not isinstance(quote, dict):
            raise TypeError("no timestamp list or quote table")
        adj_list = result["indicators"].get("adjclose") or [{}]
        adj = adj_list[0].get("adjclose")
        offset = int(result.get("meta", {}).get("gmtoffset") or 0)
    except (KeyError, IndexError, TypeError):
        raise FetchError(
            f"{where} returned chart JSON for {ticker} without timestamps or quotes; "
            "the data store was left as it was"
        ) from None
    n = len(stamps)

    def column(values: Any) -> list[Any]:
        values = list(values) if isinstance(values, list) else []
        return (values + [None] * n)[:n]

    opens, highs, lows, closes, volumes = (
        column(quote.get(k)) for k in ("open", "high", "low", "close", "volume")
    )
    adj = column(adj) if adj is not None else None
    bars: dict[str, list[str]] = {}
    for i, ts in enumerate(stamps):
        o, h, lo, c = (_num(x[i]) for x in (opens, highs, lows, closes))
        v = _num(volumes[i])
        if c is None:
            continue
        a = _num(adj[i]) if adj is not None else None
        if a is not None and c:
            f = a / c
            o, h, lo = (None if x is None else x * f for x in (o, h, lo))
            c = a
        day = datetime.fromtimestamp(int(ts) + offset, UTC).date().isoformat()
        cells = ["" if x is None else repr(float(x)) for x in (o, h, lo, c)]
        cells.append("" if v is None else str(int(v)))
        bars[day] = cells
    if not bars:
        raise FetchError(
            f"{where} returned no daily bars for {ticker}; the data store was left as it was"
        )
    lines = ["Date,Open,High,Low,Close,Volume"]
    lines += [",".join([d, *bars[d]]) for d in sorted(bars)]
    return "\n".join(lines) + "\n"


def _now_utc() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def read_manifest(store: Path) -> dict[str, Any] | None:
    """The store's manifest, or None when there is none."""
    path = Path(store) / MANIFEST
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(
            f"{path} is not valid JSON ({err}); delete it and run `regimecast fetch` to rebuild it"
        ) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("files", {}), dict):
        raise DataError(f"{path} has no 'files' table; delete it and run `regimecast fetch`")
    return obj


def fetch(
    store: str | os.PathLike[str] | None = None,
    series: Iterable[str] | None = None,
    *,
    fred_base: str | None = None,
    yahoo_base: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> dict[str, dict[str, Any]]:
    """Download ``series`` (default: all of :data:`~regimecast.data.sources.SERIES`) into ``store``.

    Every file is downloaded and validated into a staging folder inside the store first; only when
    all are good are they committed, together with the merged manifest, as one unit through
    :func:`regimecast.io.commit_files`: a reader sees the whole old store or the whole new one,
    and a fetch interrupted mid-commit is completed by the next fetch or read.  Raises
    :class:`FetchError` (store unchanged) when a download fails, and :class:`DataError` before any
    download when the existing manifest is corrupt.  Returns the manifest entries of the files
    written, keyed by store path.
    """
    root = resolve_store(store)
    specs = _requested(series)
    now = int(time.time())
    try:
        if pending_commit(root):  # an earlier fetch was interrupted mid-commit: finish it first
            with folder_lock(root, exclusive=True):
                recover(root, clean=False)
        read_manifest(root)  # a corrupt manifest is reported before anything is downloaded
        with staged_files(root) as stage:
            written: dict[str, dict[str, Any]] = {}
            for spec in specs:
                url = (
                    fred_url(spec.symbol, fred_base)
                    if spec.source == "fred"
                    else yahoo_url(spec.symbol, yahoo_base, now=now)
                )
                body = download(url, timeout=timeout, what=spec.key, max_bytes=max_bytes)
                if spec.source == "yahoo":
                    body = yahoo_chart_to_csv(body, spec.symbol, url=url).encode("utf-8")
                written[spec.relpath] = _stage(stage, body, spec, url)
            _commit(root, stage, written)
    except OSError as err:
        state = (
            "the next fetch or read of the store completes the interrupted commit"
            if pending_commit(root)
            else "the data store was left as it was"
        )
        raise FetchError(f"cannot write into the data store {root}: {err}; {state}") from None
    return written


def _requested(series: Iterable[str] | None) -> list[SeriesSpec]:
    """The specs of the requested series (all when none), each once, in request order."""
    try:
        names = [n for s in (series or ()) for n in str(s).split(",") if n.strip()]
        specs = [lookup(n) for n in names] if names else list(SERIES.values())
    except DataError as err:
        raise FetchError(str(err)) from None
    return list({s.key: s for s in specs}.values())


def _commit(root: Path, stage: Path, written: dict[str, dict[str, Any]]) -> None:
    """Merge the new entries into the manifest and commit files + manifest as one unit."""
    with folder_lock(root, exclusive=True):
        recover(root)  # finish an earlier interrupted fetch, drop abandoned stages
        manifest = read_manifest(root) or {}  # read under the lock: a concurrent fetch is merged
        files = {**manifest.get("files", {}), **written}
        doc = {"format": 1, "updated_utc": _now_utc(), "regimecast": __version__, "files": files}
        text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
        (stage / MANIFEST).write_text(text, encoding="utf-8")
        commit_files(root, stage, [*written, MANIFEST])  # the manifest last: it marks a full set


def _stage(stage: Path, body: bytes, spec: SeriesSpec, url: str) -> dict[str, Any]:
    """Write one download into the stage, validate it, and return its manifest entry."""
    path = stage / spec.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    try:
        info = file_info(path, spec)
    except DataError as err:
        msg = str(err).replace(str(path), url)
        raise FetchError(
            f"the download of {spec.key} is not a valid {spec.relpath} ({msg}); the data store "
            "was left as it was"
        ) from None
    return {
        "series": spec.key,
        "source_url": url,
        "downloaded_utc": _now_utc(),
        "sha256": sha256_file(path),
        "rows": info["rows"],
        "first_observation": info["first_observation"],
        "last_observation": info["last_observation"],
    }


def data_vintage(store: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The data vintage of a store, for run manifests.

    The manifest's entries for files whose SHA-256 still matches; for files without an entry (or
    changed since the fetch) the SHA-256, rows and last observation computed from the file itself.
    Read as one consistent set (see :func:`~regimecast.data.sources.reading_store`).
    """
    root = resolve_store(store)
    with reading_store(root):
        manifest = read_manifest(root)
        recorded = (manifest or {}).get("files", {})
        files = {
            spec.relpath: _vintage_entry(spec, root, recorded.get(spec.relpath))
            for spec in SERIES.values()
            if spec.path(root).is_file()
        }
    return {
        "store": str(root.resolve()),
        "source": "manifest" if manifest else "files",
        "updated_utc": (manifest or {}).get("updated_utc"),
        "files": files,
    }


def _vintage_entry(spec: SeriesSpec, root: Path, rec: dict[str, Any] | None) -> dict[str, Any]:
    path = spec.path(root)
    sha = sha256_file(path)
    if rec and rec.get("sha256") == sha:
        return dict(rec)
    info = file_info(path, spec)
    entry: dict[str, Any] = {
        "series": spec.key,
        "source_url": None,
        "downloaded_utc": None,
        "sha256": sha,
        "rows": info["rows"],
        "first_observation": info["first_observation"],
        "last_observation": info["last_observation"],
    }
    if rec:
        entry["modified_since_fetch"] = True
    return entry
