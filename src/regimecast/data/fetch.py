"""Download the raw series into the data store, atomically, and record the data vintage.

* FRED: the public CSV download ``https://fred.stlouisfed.org/graph/fredgraph.csv?id=<ID>`` (no API
  key), stored as is in ``<store>/fred/<ID>.csv``.
* Yahoo: the v8 chart JSON API ``https://query1.finance.yahoo.com/v8/finance/chart/<TICKER>?period1=0
  &period2=<now>&interval=1d`` (the v7 CSV download needs a cookie and crumb), converted to
  ``Date,Open,High,Low,Close,Volume`` (prices dividend-adjusted when Yahoo sends ``adjclose``, raw
  share volume) in ``<store>/yahoo/<TICKER>.csv``; ``^RUT`` is stored as ``RUT.csv``.

Every download is validated with the same readers the panel uses before anything is replaced; the
whole fetch is staged first and committed only if every series downloaded and validated, so a
failure (network error, HTTP error, HTML or garbage body) leaves the store exactly as it was.
``<store>/manifest.json`` records, per file, the source URL, the UTC download time, the SHA-256,
the number of rows and the last observation.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from regimecast import __version__
from regimecast.data.sources import SERIES, SeriesSpec, file_info, lookup, resolve_store
from regimecast.errors import DataError, FetchError
from regimecast.io import atomic_path, sha256_file

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


def download(url: str, *, timeout: float = DEFAULT_TIMEOUT, what: str = "") -> bytes:
    """GET ``url`` with a timeout and a User-Agent; any failure is a :class:`FetchError`."""
    label = f"{what} " if what else ""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read(MAX_BYTES + 1)
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
    if len(body) > MAX_BYTES:
        raise FetchError(f"download of {label}from {url} is larger than {MAX_BYTES} bytes; refused")
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
) -> dict[str, dict[str, Any]]:
    """Download ``series`` (default: all of :data:`~regimecast.data.sources.SERIES`) into ``store``.

    All files are downloaded and validated into temporary siblings first; only when every one is
    good are they renamed into place and the manifest updated.  Raises :class:`FetchError` (store
    unchanged) otherwise.  Returns the manifest entries of the files written, keyed by store path.
    """
    root = resolve_store(store)
    try:
        names = [n for s in (series or ()) for n in str(s).split(",") if n.strip()]
        specs = [lookup(n) for n in names] if names else list(SERIES.values())
    except DataError as err:
        raise FetchError(str(err)) from None
    specs = list({s.key: s for s in specs}.values())
    now = int(time.time())
    staged: list[tuple[Path, Path, str, dict[str, Any]]] = []
    try:
        for spec in specs:
            url = (
                fred_url(spec.symbol, fred_base)
                if spec.source == "fred"
                else yahoo_url(spec.symbol, yahoo_base, now=now)
            )
            body = download(url, timeout=timeout, what=spec.key)
            if spec.source == "yahoo":
                body = yahoo_chart_to_csv(body, spec.symbol, url=url).encode("utf-8")
            target = spec.path(root)
            staged.append(_stage(target, body, spec, url))
        for target, tmp, _, _ in staged:
            os.replace(tmp, target)
        manifest = read_manifest(root) or {}
        files = dict(manifest.get("files", {}))
        written = {rel: entry for _, _, rel, entry in staged}
        files.update(written)
        doc = {"format": 1, "updated_utc": _now_utc(), "regimecast": __version__, "files": files}
        with atomic_path(root / MANIFEST) as tmp_manifest:
            tmp_manifest.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", "utf-8")
            os.chmod(tmp_manifest, 0o666 & ~_umask())
        return written
    finally:
        for _, tmp, _, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _stage(
    target: Path, body: bytes, spec: SeriesSpec, url: str
) -> tuple[Path, Path, str, dict[str, Any]]:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".fetch", dir=target.parent)
    except OSError as err:
        raise FetchError(f"cannot write into the data store {target.parent}: {err}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; downloads are ordinary files
        info = file_info(tmp, spec)
    except DataError as err:
        tmp.unlink(missing_ok=True)
        msg = str(err).replace(str(tmp), url)
        raise FetchError(
            f"the download of {spec.key} is not a valid {spec.relpath} ({msg}); the previous "
            f"{target} was kept"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    entry = {
        "series": spec.key,
        "source_url": url,
        "downloaded_utc": _now_utc(),
        "sha256": sha256_file(tmp),
        "rows": info["rows"],
        "first_observation": info["first_observation"],
        "last_observation": info["last_observation"],
    }
    return target, tmp, spec.relpath, entry


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def data_vintage(store: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The data vintage of a store, for run manifests.

    The manifest's entries for files whose SHA-256 still matches; for files without an entry (or
    changed since the fetch) the SHA-256, rows and last observation computed from the file itself.
    """
    root = resolve_store(store)
    manifest = read_manifest(root)
    recorded = (manifest or {}).get("files", {})
    files: dict[str, Any] = {}
    for spec in SERIES.values():
        path = spec.path(root)
        if not path.is_file():
            continue
        sha = sha256_file(path)
        rec = recorded.get(spec.relpath)
        if rec and rec.get("sha256") == sha:
            files[spec.relpath] = dict(rec)
            continue
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
        files[spec.relpath] = entry
    return {
        "store": str(root.resolve()),
        "source": "manifest" if manifest else "files",
        "updated_utc": (manifest or {}).get("updated_utc"),
        "files": files,
    }
