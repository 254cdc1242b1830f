"""``regimecast fetch`` against a real HTTP server on 127.0.0.1 (no mocked HTTP client).

The server serves the real store's files: FRED's CSV download at FRED's path and query shape
(``/fred/graph/fredgraph.csv?id=<ID>``) and a Yahoo v8-chart-shaped JSON endpoint
(``/yahoo/v8/finance/chart/<TICKER>``) built on the fly from the store's Yahoo CSVs.  Failure cases
(404, 500, garbage or HTML body, bad JSON, timeout, connection refused) must leave the store as it was.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from regimecast.cli import main
from regimecast.data import data_vintage, fetch, load_panel, read_yahoo
from regimecast.data.fetch import yahoo_chart_to_csv
from regimecast.data.sources import SERIES
from regimecast.errors import FetchError

GMT_OFFSET = -18000  # New York, winter


def _chart_json(path: Path, symbol: str) -> bytes:
    """A Yahoo v8 chart response for the daily bars in ``path`` (timestamps at 09:30 local)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))

    def num(x: str) -> float | None:
        return None if x in ("", "null") else float(x)

    stamps = []
    for r in rows:
        d = date.fromisoformat(r["Date"][:10])
        stamps.append(calendar.timegm((d.year, d.month, d.day, 9, 30, 0)) - GMT_OFFSET)
    close = [num(r["Close"]) for r in rows]
    quote = {k.lower(): [num(r[k]) for r in rows] for k in ("Open", "High", "Low", "Close")}
    quote["volume"] = [None if num(r["Volume"]) is None else int(float(r["Volume"])) for r in rows]
    obj = {
        "chart": {
            "result": [
                {
                    "meta": {"symbol": symbol, "gmtoffset": GMT_OFFSET, "currency": "USD"},
                    "timestamp": stamps,
                    "indicators": {"quote": [quote], "adjclose": [{"adjclose": close}]},
                }
            ],
            "error": None,
        }
    }
    return json.dumps(obj).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep pytest output quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        srv = self.server
        url = urllib.parse.urlsplit(self.path)
        srv.requests.append(self.path)
        srv.user_agents.append(self.headers.get("User-Agent", ""))
        if url.path == "/fred/graph/fredgraph.csv":
            name = urllib.parse.parse_qs(url.query).get("id", [""])[0]
        elif url.path.startswith("/yahoo/v8/finance/chart/"):
            name = urllib.parse.unquote(url.path.rsplit("/", 1)[1])
            q = urllib.parse.parse_qs(url.query)
            assert q["interval"] == ["1d"] and q["period1"] == ["0"] and int(q["period2"][0]) > 0
        else:
            name = ""
        fault = srv.faults.get(name) or srv.faults.get("*")
        if fault == "404" or not name:
            return self._send(404, b"Not Found", "text/plain")
        if fault == "500":
            return self._send(500, b"Internal Server Error", "text/plain")
        if fault == "html":
            return self._send(
                200, b"<!DOCTYPE html><html><body>Service unavailable</body></html>", "text/html"
            )
        if fault == "garbage":
            return self._send(200, bytes(range(256)) * 4, "application/octet-stream")
        if fault == "slow":
            time.sleep(1.5)
        if url.path.startswith("/fred/"):
            path = srv.store / "fred" / f"{name}.csv"
            if not path.is_file():
                return self._send(404, b"Not Found", "text/plain")
            return self._send(200, path.read_bytes(), "text/csv")
        path = srv.store / "yahoo" / f"{name.lstrip('^')}.csv"
        if not path.is_file():
            body = json.dumps({"chart": {"result": None, "error": {"code": "Not Found"}}})
            return self._send(404, body.encode(), "application/json")
        if name not in srv.json_cache:
            srv.json_cache[name] = _chart_json(path, name)
        self._send(200, srv.json_cache[name], "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store = store
        self.faults: dict[str, str] = {}
        self.requests: list[str] = []
        self.user_agents: list[str] = []
        self.json_cache: dict[str, bytes] = {}

    @property
    def fred(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/fred/graph/fredgraph.csv"

    @property
    def yahoo(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/yahoo/v8/finance/chart"


@pytest.fixture(scope="module")
def server(data_store: Path) -> Iterator[_Server]:
    srv = _Server(data_store)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def faults(server: _Server) -> Iterator[dict[str, str]]:
    server.faults.clear()
    yield server.faults
    server.faults.clear()


@pytest.fixture(scope="module")
def fetched(server: _Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store filled by one successful fetch of every series."""
    store = tmp_path_factory.mktemp("fetched")
    fetch(store, fred_base=server.fred, yahoo_base=server.yahoo, timeout=10)
    return store


def _snapshot(store: Path) -> dict[str, str]:
    """Every file (including hidden temp files) with its sha256."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }


def test_fetch_fred_files_are_byte_identical(fetched: Path, data_store: Path) -> None:
    for key in ("CPIAUCSL", "CPILFESL", "FEDFUNDS", "TB3MS", "GS10", "WALCL", "BOGMBASE", "USREC"):
        rel = f"fred/{key}.csv"
        assert (fetched / rel).read_bytes() == (data_store / rel).read_bytes(), rel


def test_fetch_yahoo_json_converted_to_csv(fetched: Path, data_store: Path) -> None:
    assert (fetched / "yahoo" / "RUT.csv").is_file()  # ^RUT is stored as RUT.csv
    for key in ("IWM", "RUT"):
        got = read_yahoo(fetched / "yahoo" / f"{key}.csv", key)
        want = read_yahoo(data_store / "yahoo" / f"{key}.csv", key)
        pd.testing.assert_frame_equal(got, want)
        # prices and volumes survive the JSON round trip exactly (repr floats, integer volume)
        raw = (data_store / "yahoo" / f"{key}.csv").read_bytes().replace(b"\r\n", b"\n")
        assert (fetched / "yahoo" / f"{key}.csv").read_bytes() == raw
    header = (fetched / "yahoo" / "IWM.csv").read_text().splitlines()[0]
    assert header == "Date,Open,High,Low,Close,Volume"


def test_manifest_records_vintage(fetched: Path, server: _Server) -> None:
    manifest = json.loads((fetched / "manifest.json").read_text())
    files = manifest["files"]
    assert set(files) == {s.relpath for s in SERIES.values()}
    cpi = files["fred/CPIAUCSL.csv"]
    assert cpi["source_url"] == f"{server.fred}?id=CPIAUCSL"
    assert cpi["sha256"] == hashlib.sha256((fetched / "fred/CPIAUCSL.csv").read_bytes()).hexdigest()
    assert cpi["rows"] == 947 and cpi["last_observation"] == "2025-11-01"
    assert cpi["downloaded_utc"].endswith("Z")
    rut = files["yahoo/RUT.csv"]
    assert rut["source_url"].startswith(f"{server.yahoo}/%5ERUT?period1=0&period2=")
    assert rut["last_observation"] == "2026-02-20"
    vintage = data_vintage(fetched)
    assert vintage["source"] == "manifest" and vintage["files"] == files
    assert all(ua.startswith("Mozilla/5.0 (compatible; regimecast/") for ua in server.user_agents)


def test_fetched_store_builds_the_same_panel(fetched: Path, data_store: Path) -> None:
    a = load_panel(fetched, as_of="2025-06")
    b = load_panel(data_store, as_of="2025-06")
    pd.testing.assert_frame_equal(a, b, check_freq=False)


def test_vintage_notices_a_changed_file(fetched: Path, tmp_path: Path) -> None:
    store = tmp_path / "s"
    for rel in ("manifest.json", "fred/USREC.csv", "fred/GS10.csv"):
        (store / rel).parent.mkdir(parents=True, exist_ok=True)
        (store / rel).write_bytes((fetched / rel).read_bytes())
    with open(store / "fred/GS10.csv", "a") as fh:
        fh.write("2025-04-01,4.28\n")
    v = data_vintage(store)
    assert v["files"]["fred/USREC.csv"]["source_url"].endswith("id=USREC")
    gs10 = v["files"]["fred/GS10.csv"]
    assert gs10["modified_since_fetch"] is True and gs10["last_observation"] == "2025-04-01"


FAULTS = [
    ("404", "HTTP 404"),
    ("500", "HTTP 500"),
    ("html", "not a valid|did not return Yahoo chart JSON"),
    ("garbage", "not a valid|did not return Yahoo chart JSON"),
]


@pytest.mark.parametrize(("fault", "message"), FAULTS, ids=[f[0] for f in FAULTS])
@pytest.mark.parametrize("target", ["USREC", "^RUT"])
def test_failed_fetch_leaves_store_unchanged(
    fetched: Path,
    server: _Server,
    faults: dict[str, str],
    tmp_path: Path,
    fault: str,
    message: str,
    target: str,
) -> None:
    store = tmp_path / "store"
    for rel, _ in _snapshot(fetched).items():
        (store / rel).parent.mkdir(parents=True, exist_ok=True)
        (store / rel).write_bytes((fetched / rel).read_bytes())
    before = _snapshot(store)
    faults[target] = fault
    # CPIAUCSL downloads fine first; the failure of a later series must not commit it either.
    with pytest.raises(FetchError, match=message) as info:
        fetch(
            store, ["CPIAUCSL", target], fred_base=server.fred, yahoo_base=server.yahoo, timeout=10
        )
    assert "127.0.0.1" in str(info.value)
    assert _snapshot(store) == before


def test_garbage_json_from_yahoo(server: _Server, faults: dict[str, str], tmp_path: Path) -> None:
    faults["IWM"] = "html"
    with pytest.raises(FetchError, match="did not return Yahoo chart JSON for IWM"):
        fetch(tmp_path, ["IWM"], fred_base=server.fred, yahoo_base=server.yahoo)
    assert _snapshot(tmp_path) == {}


def test_unknown_series_404(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="unknown series"):
        fetch(tmp_path, ["NOPE"], fred_base=server.fred)


def test_timeout(server: _Server, faults: dict[str, str], tmp_path: Path) -> None:
    faults["FEDFUNDS"] = "slow"
    with pytest.raises(FetchError, match="timed out|failed"):
        fetch(tmp_path, ["FEDFUNDS"], fred_base=server.fred, timeout=0.3)
    assert _snapshot(tmp_path) == {}


def test_connection_refused(fetched: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = tmp_path / "store"
    (store / "fred").mkdir(parents=True)
    (store / "fred" / "TB3MS.csv").write_bytes((fetched / "fred" / "TB3MS.csv").read_bytes())
    before = _snapshot(store)
    base = f"http://127.0.0.1:{port}/fred/graph/fredgraph.csv"
    with pytest.raises(FetchError, match="refused|failed"):
        fetch(store, ["TB3MS"], fred_base=base, timeout=5)
    assert _snapshot(store) == before


def test_cli_fetch_env_urls(
    server: _Server,
    faults: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REGIMECAST_FRED_URL", server.fred)
    monkeypatch.setenv("REGIMECAST_YAHOO_URL", server.yahoo)
    store = tmp_path / "store"
    assert main(["fetch", "--data", str(store), "--series", "GS10,USREC", "--series", "^RUT"]) == 0
    out = capsys.readouterr().out
    assert "fred/GS10.csv" in out and "yahoo/RUT.csv" in out
    assert sorted(_snapshot(store)) == [
        "fred/GS10.csv",
        "fred/USREC.csv",
        "manifest.json",
        "yahoo/RUT.csv",
    ]
    before = _snapshot(store)
    faults["GS10"] = "500"
    code = main(["fetch", "--data", str(store), "--series", "GS10"])
    err = capsys.readouterr().err.strip()
    assert code == FetchError.exit_code == 3
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "HTTP 500" in err
    assert _snapshot(store) == before


def test_yahoo_chart_conversion_rules() -> None:
    """Exchange-local dates, dividend adjustment, null bars dropped, a repeated date keeps its last bar."""
    t0 = calendar.timegm((2024, 1, 2, 14, 30, 0))  # 09:30 in New York
    late = calendar.timegm((2024, 1, 4, 2, 0, 0))  # 21:00 on the 3rd in New York
    obj = {
        "chart": {
            "result": [
                {
                    "meta": {"gmtoffset": GMT_OFFSET},
                    "timestamp": [
                        t0,
                        t0 + 86400,
                        late,
                        t0 + 2 * 86400 + 3600,
                        t0 + 3 * 86400,
                        t0 + 6 * 86400,
                    ],
                    "indicators": {
                        "quote": [
                            {
                                "open": [10.0, 99.0, 11.0, 12.0, 13.0, None],
                                "high": [10.5, 99.0, 11.5, 12.5, 13.5, None],
                                "low": [9.5, 99.0, 10.5, 11.5, 12.5, None],
                                "close": [10.0, 99.0, 11.0, 12.0, 13.0, None],
                                "volume": [100, 9, 200, 300, None, None],
                            }
                        ],
                        "adjclose": [{"adjclose": [5.0, 99.0, 11.0, 12.0, 13.0, None]}],
                    },
                }
            ],
            "error": None,
        }
    }
    text = yahoo_chart_to_csv(json.dumps(obj).encode(), "TEST")
    assert (
        text.splitlines()
        == [
            "Date,Open,High,Low,Close,Volume",
            "2024-01-02,5.0,5.25,4.75,5.0,100",  # prices scaled by adjclose/close = 0.5
            "2024-01-03,11.0,11.5,10.5,11.0,200",  # late-evening bar, local date, replaces the first
            "2024-01-04,12.0,12.5,11.5,12.0,300",
            "2024-01-05,13.0,13.5,12.5,13.0,",  # volume null -> empty cell; the null 01-08 bar is dropped
        ]
    )
    with pytest.raises(FetchError, match="Yahoo reports an error"):
        yahoo_chart_to_csv(b'{"chart": {"result": null, "error": {"code": "Not Found"}}}', "X")
    with pytest.raises(FetchError, match="without timestamps"):
        yahoo_chart_to_csv(b'{"chart": {"result": [{"indicators": {}}], "error": null}}', "X")
