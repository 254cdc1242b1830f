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
import signal
import socket
import subprocess
import sys
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
from regimecast.data import data_vintage, fetch, load_panel, read_series, read_yahoo
from regimecast.data.fetch import yahoo_chart_to_csv
from regimecast.data.sources import SERIES, read_store
from regimecast.errors import DataError, FetchError
from regimecast.io import folder_lock

GMT_OFFSET = -18000  # New York, winter


def _chart_json(path: Path, symbol: str, cut: int = 0) -> bytes:
    """A Yahoo v8 chart response for the daily bars in ``path`` (timestamps at 09:30 local).

    ``cut`` drops that many of the last bars (an older vintage of the same series).
    """
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = rows[: len(rows) - cut]

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
            lines = path.read_bytes().splitlines(keepends=True)
            return self._send(200, b"".join(lines[: len(lines) - srv.cut]), "text/csv")
        path = srv.store / "yahoo" / f"{name.lstrip('^')}.csv"
        if not path.is_file():
            body = json.dumps({"chart": {"result": None, "error": {"code": "Not Found"}}})
            return self._send(404, body.encode(), "application/json")
        if (name, srv.cut) not in srv.json_cache:
            srv.json_cache[name, srv.cut] = _chart_json(path, name, srv.cut)
        self._send(200, srv.json_cache[name, srv.cut], "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store = store
        self.faults: dict[str, str] = {}
        self.requests: list[str] = []
        self.user_agents: list[str] = []
        self.json_cache: dict[tuple[str, int], bytes] = {}
        self.cut = 0  # serve every series without its last `cut` rows: an older vintage

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet when a client hangs up early (the size limit stops reading mid-body)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

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
    server.cut = 0
    yield server.faults
    server.faults.clear()
    server.cut = 0


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


# --------------------------------------------------------------------------------------------------
# issue 12: the size limit, a corrupt manifest, merging manifests, a series requested twice
# --------------------------------------------------------------------------------------------------
def _copy_store(src: Path, dst: Path) -> Path:
    for rel in _snapshot(src):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes((src / rel).read_bytes())
    return dst


def _requests_for(server: _Server, name: str, since: int) -> int:
    return sum(
        1
        for r in server.requests[since:]
        if r.endswith(f"id={name}") or f"/chart/{urllib.parse.quote(name, safe='')}?" in r
    )


def test_size_limit_is_exact(
    fetched: Path, server: _Server, faults: dict[str, str], tmp_path: Path
) -> None:
    """A body of exactly ``max_bytes`` is accepted; one byte more is refused, store unchanged."""
    size = len((fetched / "fred" / "GS10.csv").read_bytes())
    store = _copy_store(fetched, tmp_path / "store")
    server.cut = 2  # a different vintage, so a wrongly accepted download would show
    new_size = size - sum(
        len(x) for x in (fetched / "fred" / "GS10.csv").read_bytes().splitlines(True)[-2:]
    )
    before = _snapshot(store)
    with pytest.raises(FetchError, match=f"larger than {new_size - 1} bytes; refused"):
        fetch(store, ["GS10"], fred_base=server.fred, max_bytes=new_size - 1)
    assert _snapshot(store) == before
    written = fetch(store, ["GS10"], fred_base=server.fred, max_bytes=new_size)
    assert written["fred/GS10.csv"]["sha256"] != before["fred/GS10.csv"]
    assert len((store / "fred" / "GS10.csv").read_bytes()) == new_size


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "is not valid JSON"), ('{"files": []}', "has no 'files' table")],
    ids=["not-json", "files-not-a-table"],
)
def test_corrupt_manifest_stops_fetch_before_anything_changes(
    fetched: Path,
    server: _Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    message: str,
) -> None:
    store = _copy_store(fetched, tmp_path / "store")
    (store / "manifest.json").write_text(text)
    server.cut = 3  # the download would change GS10 if it were committed
    before, n = _snapshot(store), len(server.requests)
    with pytest.raises(DataError, match=message):
        fetch(store, ["GS10"], fred_base=server.fred)
    assert _snapshot(store) == before
    assert len(server.requests) == n  # refused before downloading
    monkeypatch.setenv("REGIMECAST_FRED_URL", server.fred)
    code = main(["fetch", "--data", str(store), "--series", "GS10"])
    err = capsys.readouterr().err.strip()
    assert code == DataError.exit_code == 2
    assert len(err.splitlines()) == 1 and "manifest.json" in err and "delete it" in err
    assert _snapshot(store) == before
    server.cut = 0


def test_second_fetch_merges_into_manifest(
    server: _Server, faults: dict[str, str], tmp_path: Path
) -> None:
    fetch(tmp_path, ["GS10"], fred_base=server.fred)
    first = json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert set(first) == {"fred/GS10.csv"}
    fetch(tmp_path, ["USREC", "^RUT"], fred_base=server.fred, yahoo_base=server.yahoo)
    second = json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert set(second) == {"fred/GS10.csv", "fred/USREC.csv", "yahoo/RUT.csv"}
    assert second["fred/GS10.csv"] == first["fred/GS10.csv"]  # kept as it was, not re-stamped
    server.cut = 5  # GS10 again, an older vintage: only its entry changes
    fetch(tmp_path, ["GS10"], fred_base=server.fred)
    third = json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert set(third) == set(second)
    assert third["fred/USREC.csv"] == second["fred/USREC.csv"]
    assert third["yahoo/RUT.csv"] == second["yahoo/RUT.csv"]
    gs10 = (tmp_path / "fred" / "GS10.csv").read_bytes()
    assert third["fred/GS10.csv"]["sha256"] == hashlib.sha256(gs10).hexdigest()
    assert third["fred/GS10.csv"]["rows"] == first["fred/GS10.csv"]["rows"] - 5
    assert data_vintage(tmp_path)["files"] == third


def test_series_requested_twice_is_fetched_once(server: _Server, tmp_path: Path) -> None:
    n = len(server.requests)
    written = fetch(
        tmp_path,
        ["GS10", "gs10,^RUT", "RUT"],
        fred_base=server.fred,
        yahoo_base=server.yahoo,
    )
    assert list(written) == ["fred/GS10.csv", "yahoo/RUT.csv"]
    assert _requests_for(server, "GS10", n) == 1
    assert _requests_for(server, "^RUT", n) == 1
    assert len(server.requests) == n + 2
    assert sorted(_snapshot(tmp_path)) == ["fred/GS10.csv", "manifest.json", "yahoo/RUT.csv"]


# --------------------------------------------------------------------------------------------------
# issue 8: the store switches vintage as a whole, even when a fetch is killed between files
# --------------------------------------------------------------------------------------------------
KILLER = """
import os, signal, sys
from regimecast.data import fetch

store, fred, yahoo, kill_at, series = sys.argv[1:6]
kill_at = int(kill_at)
real_replace, moved = os.replace, [0]


def replace(src, dst):
    if kill_at == 0 and str(dst).endswith(".commit-journal.json"):
        os.kill(os.getpid(), signal.SIGKILL)  # just before the commit point
    real_replace(src, dst)
    if ".commit-stage-" in str(src):  # one file committed into the store
        moved[0] += 1
        if moved[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


os.replace = replace
fetch(store, series.split(","), fred_base=fred, yahoo_base=yahoo, timeout=10)
print("not killed")
"""

KILL_SERIES = ("CPIAUCSL", "GS10", "IWM")  # committed in this order, then manifest.json
KILL_FILES = ("fred/CPIAUCSL.csv", "fred/GS10.csv", "yahoo/IWM.csv")


def _visible(store: Path) -> dict[str, str]:
    """The store as a reader sees it: files outside the hidden commit machinery."""
    return {k: v for k, v in _snapshot(store).items() if not k.startswith(".commit-")}


def _vintage(store: Path, old: dict[str, str], new: dict[str, str]) -> str:
    """'old' or 'new' when every data file and the manifest belong to one vintage, else 'mixed'."""
    now = _visible(store)
    if now == old:
        return "old"
    if now == new:
        return "new"
    return "mixed"


@pytest.mark.parametrize(
    ("kill_at", "recover_by"),
    [(0, "fetch"), (1, "load_panel"), (2, "failed-fetch"), (3, "read_store"), (4, "load_panel")],
    ids=["before-commit", "after-1-file", "after-2-files", "after-3-files", "after-manifest"],
)
def test_fetch_killed_between_files_never_mixes_vintages(
    fetched: Path,
    server: _Server,
    faults: dict[str, str],
    tmp_path: Path,
    kill_at: int,
    recover_by: str,
) -> None:
    """Kill a real fetch process at each step of its commit; readers see one vintage only."""
    # the old vintage: the full store, then the three series 40 rows shorter
    store = _copy_store(fetched, tmp_path / "store")
    server.cut = 40
    fetch(store, KILL_SERIES, fred_base=server.fred, yahoo_base=server.yahoo)
    old = _visible(store)
    # the new vintage is the full series again, as in `fetched` (manifest entries re-stamped)
    server.cut = 0
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    args = [str(store), server.fred, server.yahoo, str(kill_at), ",".join(KILL_SERIES)]
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    on_disk = {
        rel: (store / rel).read_bytes() == (fetched / rel).read_bytes() for rel in KILL_FILES
    }
    assert on_disk == {rel: i < kill_at for i, rel in enumerate(KILL_FILES)}
    assert (store / ".commit-journal.json").exists() == (kill_at > 0)
    if 0 < kill_at < 4:
        assert _vintage(store, old, {}) == "mixed"  # the raw files do mix: the journal must act
    if recover_by == "fetch":
        written = fetch(store, ["TB3MS"], fred_base=server.fred)
        assert list(written) == ["fred/TB3MS.csv"]
    elif recover_by == "failed-fetch":  # even a fetch that fails finishes the earlier commit
        faults["TB3MS"] = "404"
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch(store, ["TB3MS"], fred_base=server.fred)
    elif recover_by == "read_store":
        got = read_store(store, KILL_SERIES)
        pd.testing.assert_series_equal(got["GS10"], read_series(fetched, "GS10"))
    else:
        pd.testing.assert_frame_equal(load_panel(store), load_panel(fetched), check_freq=False)
    files = {rel: (store / rel).read_bytes() for rel in KILL_FILES}
    want_new = kill_at > 0  # before the commit point the old vintage stays
    for rel in KILL_FILES:
        assert (files[rel] == (fetched / rel).read_bytes()) == want_new, rel
        assert (hashlib.sha256(files[rel]).hexdigest() == old[rel]) == (not want_new), rel
    manifest = json.loads((store / "manifest.json").read_text())["files"]
    for rel in KILL_FILES:  # the manifest describes exactly the files in place
        assert manifest[rel]["sha256"] == hashlib.sha256(files[rel]).hexdigest(), rel
    assert [p.name for p in store.iterdir() if p.name.startswith(".commit")] == []


def test_reader_waits_for_a_commit_in_progress(fetched: Path, tmp_path: Path) -> None:
    """While a commit holds the store's lock, read_series blocks instead of reading a half-switch."""
    store = _copy_store(fetched, tmp_path / "store")
    done: list[pd.Series] = []
    with folder_lock(store, exclusive=True):
        reader = threading.Thread(target=lambda: done.append(read_series(store, "GS10")))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive() and not done
    reader.join(10)
    assert len(done) == 1 and done[0].notna().sum() > 100


def test_commit_failing_on_a_file_is_finished_by_the_next_read(
    fetched: Path, server: _Server, faults: dict[str, str], tmp_path: Path
) -> None:
    """A real OSError on the third file's rename: readers refuse the half-switch until it is done."""
    store = tmp_path / "store"
    server.cut = 40
    fetch(store, KILL_SERIES[:2], fred_base=server.fred)
    old = _visible(store)
    obstacle = store / "yahoo" / "IWM.csv"  # a non-empty folder: renaming a file onto it fails
    (obstacle / "x").mkdir(parents=True)
    server.cut = 0
    with pytest.raises(FetchError, match="next fetch or read of the store completes"):
        fetch(store, KILL_SERIES, fred_base=server.fred, yahoo_base=server.yahoo)
    assert (store / "fred" / "CPIAUCSL.csv").read_bytes() == (
        fetched / "fred/CPIAUCSL.csv"
    ).read_bytes()
    assert (
        hashlib.sha256((store / "manifest.json").read_bytes()).hexdigest() == old["manifest.json"]
    )
    with pytest.raises(DataError, match=r"interrupted commit .*`regimecast fetch --data "):
        read_store(store, KILL_SERIES[:2])
    with pytest.raises(DataError, match="interrupted commit"):
        load_panel(store)
    obstacle.joinpath("x").rmdir()
    obstacle.rmdir()
    got = read_store(store, KILL_SERIES)
    pd.testing.assert_series_equal(got["IWM"], read_series(fetched, "IWM"))
    manifest = json.loads((store / "manifest.json").read_text())["files"]
    assert set(manifest) == set(KILL_FILES)
    for rel in KILL_FILES:
        assert (store / rel).read_bytes() == (fetched / rel).read_bytes(), rel
        assert manifest[rel]["sha256"] == hashlib.sha256((store / rel).read_bytes()).hexdigest()
    assert [p.name for p in store.iterdir() if p.name.startswith(".commit")] == []
