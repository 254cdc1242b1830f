"""regimecast.io: atomic writes with ordinary permissions, and the journaled multi-file commit."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from regimecast.data import write_panel_csv
from regimecast.errors import DataError
from regimecast.io import (
    JOURNAL,
    STAGE_PREFIX,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    commit_files,
    folder_lock,
    reading,
    recover,
    staged_files,
    staged_run_dir,
)


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=["umask022", "umask077", "umask002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_mode_open_would_give(umask: int, tmp_path: Path) -> None:
    """Not mkstemp's 0600: the mode a plain ``open(path, "w")`` gives under the same umask."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    want = _mode(plain)
    assert want == 0o666 & ~umask  # the oracle: the kernel's own rule
    assert _mode(atomic_write_text(tmp_path / "a.txt", "hello")) == want
    assert _mode(atomic_write_json(tmp_path / "a.json", {"a": 1})) == want
    df = pd.DataFrame({"x": [1.5, 2.0]}, index=pd.DatetimeIndex(["2020-01-01", "2020-02-01"]))
    assert _mode(write_panel_csv(df, tmp_path / "panel.csv")) == want
    with atomic_path(tmp_path / "b.nc") as tmp:  # writers that take a path (to_netcdf, savefig)
        tmp.write_bytes(b"data")
    assert _mode(tmp_path / "b.nc") == want


def test_run_directory_gets_the_mode_mkdir_would_give(umask: int, tmp_path: Path) -> None:
    """Not mkdtemp's 0700: other users can read a run when the umask lets them."""
    plain = tmp_path / "plain"
    plain.mkdir()
    with staged_run_dir(tmp_path / "run") as stage:
        (stage / "f.txt").write_text("x")
    assert _mode(tmp_path / "run") == _mode(plain) == 0o777 & ~umask


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def _stage_files(stage: Path, files: dict[str, str]) -> list[str]:
    for rel, text in files.items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_text(text)
    return list(files)


def test_commit_moves_every_file_and_cleans_up(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.txt").write_text("old1")
    (tmp_path / "keep.txt").write_text("untouched")
    with staged_files(tmp_path) as stage:
        rels = _stage_files(stage, {"a/1.txt": "new1", "b/2.txt": "new2", "m.json": "{}"})
        with folder_lock(tmp_path, exclusive=True):
            commit_files(tmp_path, stage, rels)
    got = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert got == {"a/1.txt": "new1", "b/2.txt": "new2", "m.json": "{}", "keep.txt": "untouched"}
    assert not any(p.name.startswith(".commit") for p in tmp_path.iterdir())


def test_recover_finishes_a_journal_and_spares_a_live_stage(tmp_path: Path) -> None:
    """A journal left by a dead writer is rolled forward; a stage still held is left alone."""
    (tmp_path / "1.txt").write_text("old1")
    (tmp_path / "2.txt").write_text("old2")
    dead = tmp_path / f"{STAGE_PREFIX}dead"  # a stage whose writer died after the commit point
    dead.mkdir()
    (dead / "2.txt").write_text("new2")  # 1.txt was already moved when it died
    (tmp_path / "1.txt").write_text("new1")
    journal = {"format": 1, "stage": dead.name, "files": ["1.txt", "2.txt"]}
    (tmp_path / JOURNAL).write_text(json.dumps(journal))
    abandoned = tmp_path / f"{STAGE_PREFIX}gone"  # died before its commit point
    abandoned.mkdir()
    (abandoned / "1.txt").write_text("never")
    with staged_files(tmp_path) as live:
        with folder_lock(tmp_path, exclusive=True):
            assert recover(tmp_path) is True
        assert live.is_dir()  # held by this (live) writer: not taken for abandoned
    assert (tmp_path / "1.txt").read_text() == "new1"
    assert (tmp_path / "2.txt").read_text() == "new2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.txt", "2.txt"]


def test_reading_rolls_forward_then_reads(tmp_path: Path) -> None:
    stage = tmp_path / f"{STAGE_PREFIX}x"
    stage.mkdir()
    (stage / "f.txt").write_text("new")
    (tmp_path / "f.txt").write_text("old")
    (tmp_path / JOURNAL).write_text(json.dumps({"stage": stage.name, "files": ["f.txt"]}))
    with reading(tmp_path) as root:
        assert (root / "f.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_reading_a_clean_folder_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    before = {p: p.stat().st_mtime_ns for p in [tmp_path, *tmp_path.iterdir()]}
    with reading(tmp_path):
        pass
    assert {p: p.stat().st_mtime_ns for p in [tmp_path, *tmp_path.iterdir()]} == before


@pytest.mark.parametrize(
    "journal",
    [
        "{half",
        json.dumps({"stage": "../elsewhere", "files": ["f.txt"]}),
        json.dumps({"stage": f"{STAGE_PREFIX}x", "files": ["../../etc/passwd"]}),
        json.dumps({"stage": f"{STAGE_PREFIX}x", "files": "f.txt"}),
    ],
    ids=["not-json", "stage-outside", "file-outside", "files-not-a-list"],
)
def test_an_untrustworthy_journal_is_refused(tmp_path: Path, journal: str) -> None:
    (tmp_path / JOURNAL).write_text(journal)
    with pytest.raises(DataError, match=f"commit journal {tmp_path / JOURNAL}"):
        with reading(tmp_path):
            pass
