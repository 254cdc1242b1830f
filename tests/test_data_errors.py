"""Bad input gets a named DataError naming the file, the line or date, and the fix.

Each case is a small hand-written file in ``tests/data_corpus/``.  The Python reader is checked
directly; the CLI is checked by dropping the bad file into a copy of the real store (symlinks) and
running ``regimecast panel`` through :func:`regimecast.cli.main`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from regimecast.cli import main
from regimecast.data import load_panel, read_fred, read_yahoo, require_history
from regimecast.data.sources import SERIES
from regimecast.errors import DataError

CORPUS = Path(__file__).parent / "data_corpus"

# corpus file, series it stands in for, fragments the message must contain
CASES = [
    ("cpi_bad_date.csv", "CPIAUCSL", ["line 4", "'2020-13-01'", "YYYY-MM-DD"]),
    (
        "cpi_duplicate_date.csv",
        "CPIAUCSL",
        ["line 4", "2020-02-01", "duplicated", "one row per date"],
    ),
    ("cpi_unsorted.csv", "CPIAUCSL", ["line 4", "2020-02-01", "sort the file"]),
    ("cpi_non_numeric.csv", "CPIAUCSL", ["line 4", "'n/a'", "non-numeric", "leave the cell empty"]),
    ("cpi_negative.csv", "CPIAUCSL", ["line 4", "2020-03-01", "-258.1", "positive"]),
    ("cpi_zero.csv", "CPIAUCSL", ["line 3", "2020-02-01", "is 0", "positive"]),
    ("cpi_daily.csv", "CPIAUCSL", ["should be monthly", "looks daily", "regimecast fetch"]),
    ("cpi_wrong_column.csv", "CPIAUCSL", ["line 1", "observation_date,CPIAUCSL", "VALUE"]),
    ("cpi_missing_column.csv", "CPIAUCSL", ["line 1", "observation_date,CPIAUCSL"]),
    ("cpi_html.csv", "CPIAUCSL", ["line 1", "expected the header"]),
    ("usrec_not_binary.csv", "USREC", ["line 4", "2020-03-01", "0 or 1"]),
    ("walcl_monthly.csv", "WALCL", ["should be weekly", "looks monthly"]),
    ("iwm_missing_volume.csv", "IWM", ["line 1", "no column Volume"]),
    ("iwm_negative_volume.csv", "IWM", ["line 3", "2024-01-03", "cannot be negative"]),
    ("iwm_bad_date.csv", "IWM", ["line 3", "'01/03/2024'", "YYYY-MM-DD"]),
    ("iwm_monthly.csv", "IWM", ["should be daily", "looks monthly"]),
]


def _read(path: Path, key: str):
    spec = SERIES[key]
    return read_fred(path, spec) if spec.source == "fred" else read_yahoo(path, spec)


@pytest.mark.parametrize(("name", "key", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_reader_names_file_line_and_fix(name: str, key: str, fragments: list[str]) -> None:
    path = CORPUS / name
    with pytest.raises(DataError) as info:
        _read(path, key)
    msg = str(info.value)
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


def test_old_header_crlf_and_missing_markers_are_accepted() -> None:
    s = read_fred(CORPUS / "cpi_old_header_ok.csv", "CPIAUCSL")
    assert list(s.index.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03", "2020-04"]
    assert s.iloc[0] == 258.7 and s.iloc[3] == 256.2
    assert math.isnan(s.iloc[1]) and math.isnan(s.iloc[2])  # "." and empty cell are missing


def _store_with(tmp_path: Path, data_store: Path, replace: dict[str, Path | None]) -> Path:
    """A store of symlinks to the real files, with some files replaced (or removed, for None)."""
    store = tmp_path / "store"
    for spec in SERIES.values():
        target = store / spec.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if spec.key in replace:
            src = replace[spec.key]
            if src is not None:
                target.write_bytes(src.read_bytes())
        else:
            os.symlink(spec.path(data_store), target)
    return store


def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(("name", "key", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_cli_panel_one_line_error(
    tmp_path: Path,
    data_store: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    key: str,
    fragments: list[str],
) -> None:
    store = _store_with(tmp_path, data_store, {key: CORPUS / name})
    out = tmp_path / "panel.csv"
    code, err = _cli_error(capsys, ["panel", "--data", str(store), "--out", str(out)])
    assert code == DataError.exit_code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert SERIES[key].relpath in err
    for frag in fragments:
        assert frag in err
    assert not out.exists()
    assert not list(tmp_path.glob(".panel.csv*"))  # no half-written temp file either


def test_missing_file(tmp_path: Path, data_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store_with(tmp_path, data_store, {"FEDFUNDS": None})
    with pytest.raises(
        DataError, match=r"FEDFUNDS\.csv not found.*regimecast fetch --series FEDFUNDS"
    ):
        load_panel(store)
    code, err = _cli_error(capsys, ["panel", "--data", str(store)])
    assert code == 2 and len(err.splitlines()) == 1 and "fred/FEDFUNDS.csv not found" in err


def test_as_of_before_data_starts(data_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match=r"as-of 1958-12 is before the data starts \(1959-01"):
        load_panel(data_store, as_of="1958-12")
    code, err = _cli_error(capsys, ["panel", "--data", str(data_store), "--as-of", "1950-06"])
    assert code == 2 and len(err.splitlines()) == 1
    assert "as-of 1950-06 is before the data starts" in err and "later --as-of" in err


def test_unparseable_as_of(data_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _cli_error(capsys, ["panel", "--data", str(data_store), "--as-of", "Dec 2023"])
    assert code == 2 and len(err.splitlines()) == 1 and "YYYY-MM" in err


def test_too_short_history(data_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = load_panel(data_store, as_of="1965-12")
    assert require_history(df, 60, what="the macro model", columns=["cpi_yoy", "policy_rate"]) == 84
    with pytest.raises(
        DataError, match=r"too short a history for the macro model: 84 complete months"
    ):
        require_history(df, 120, what="the macro model", columns=["cpi_yoy", "policy_rate"])
    # all columns: volume only starts in 1987, so no complete month at all
    with pytest.raises(DataError, match="0 complete months"):
        require_history(df, 1)
    code, err = _cli_error(
        capsys, ["panel", "--data", str(data_store), "--as-of", "1965-12", "--min-months", "120"]
    )
    assert code == 2 and len(err.splitlines()) == 1 and "too short a history" in err


def test_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _cli_error(capsys, ["panel", "--data", str(tmp_path / "nowhere")])
    assert code == 2 and len(err.splitlines()) == 1
    assert "nowhere does not exist" in err and "regimecast fetch" in err
