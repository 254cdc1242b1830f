"""The fit / forecast commands: one-line errors, exit codes, reports, the demo and offline fallback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from pinned import pinned_fit, qe_prone_point, save_pinned_run

from regimecast.cli import main


def _one_line_error(capsys) -> str:
    """Exactly one line on stderr (nothing else: no warnings, no progress), starting with ``error:``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def pinned_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "pinned"
    save_pinned_run(pinned_fit(qe_prone_point()), run)
    return run


def test_fit_with_missing_store_fails_in_one_line(tmp_path, capsys):
    code = main(["fit", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert code == 2  # DataError
    assert "nowhere" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_fit_with_bad_config_fails_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sampler]\ndraws = -5\n")
    assert main(["fit", "--config", str(bad), "--out", str(tmp_path / "run")]) == 2
    assert "draws" in _one_line_error(capsys)


def test_fit_refuses_to_overwrite_a_run(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["fit", "--demo", "--out", str(tmp_path / "run")]) == 5
    assert "--force" in _one_line_error(capsys)


def test_forecast_from_missing_run(tmp_path, capsys):
    assert main(["forecast", "--from-run", str(tmp_path / "nope")]) == 6
    assert "not a regimecast run" in _one_line_error(capsys)


def test_forecast_with_bad_scenario_leaves_nothing(pinned_run, tmp_path, capsys):
    out = tmp_path / "fc"
    code = main(["forecast", "--from-run", str(pinned_run), "--out", str(out), "--scenario", "cpi:2024-01=1"])
    assert code == 2
    assert "not modelled" in _one_line_error(capsys)
    assert not out.exists()


def test_forecast_from_run_prints_headlines_and_writes_report(pinned_run, tmp_path, capsys):
    out = tmp_path / "fc"
    assert main(["forecast", "--from-run", str(pinned_run), "--out", str(out), "--horizon", "12"]) == 0
    text = capsys.readouterr().out
    assert "qe_start" in text or "QE" in text
    assert str(out / "report.html") in text
    html = (out / "report.html").read_text()
    assert "<table" in html and "QE" in html


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.slow
def test_offline_make_forecast_falls_back_to_the_stamped_demo(tmp_path, capsys, monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("REGIMECAST_FRED_URL", f"http://127.0.0.1:{port}/fred")
    monkeypatch.setenv("REGIMECAST_YAHOO_URL", f"http://127.0.0.1:{port}/yahoo")
    store = tmp_path / "empty-store"
    out = tmp_path / "demo-run"
    code = main(["forecast", "--auto-data", "--data", str(store), "--out", str(out), "--draws", "150",
                 "--tune", "150", "--chains", "2", "--horizon", "12", "--allow-unconverged"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "no data reachable" in cap.err and "regimecast fetch" in cap.err
    assert "SYNTHETIC DEMO DATA" in cap.out
    assert "SYNTHETIC DEMO DATA" in (out / "report.html").read_text()
    assert "SYNTHETIC DEMO DATA" in (out / "report.md").read_text()
    assert (out / "posterior.nc").stat().st_size > 0


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["fit", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "--bogus" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["fit", "--bogus"], "No such option: --bogus"), (["backtest", "--start", "2007-01"], "--end"),
     (["nosuch"], "No such command")],
)
def test_usage_errors_are_one_line_with_exit_code_2(argv, needle):
    proc = subprocess.run([sys.executable, "-m", "regimecast.cli", *argv], capture_output=True, text=True,
                          timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
