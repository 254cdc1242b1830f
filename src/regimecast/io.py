"""Atomic file writes, run directories, config digests.

Nothing half-written is ever left behind: every file is written to a temporary sibling and renamed into
place; a run directory is staged under a temporary name and renamed when complete; a set of files
(the data store after a fetch) is staged and committed together through a journal (see
:func:`commit_files`), so a reader sees all of the old files or all of the new ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from regimecast.errors import DataError, RunExistsError

try:  # POSIX advisory locks; elsewhere commits still go through the journal, unlocked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file is created with mode ``0o666`` filtered by the umask (an ordinary file, not
    ``mkstemp``'s 0600), so whatever is renamed into place has the permissions ``open`` would give.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_file(path.parent, f".{path.name}.", ".tmp")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _new_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file with a fresh random name in ``folder`` (mode 0o666 & ~umask)."""
    for _ in range(100):
        candidate = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"could not create a temporary file in {folder}")


def _new_dir(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty folder with a fresh random name in ``folder`` (mode 0o777 & ~umask)."""
    for _ in range(100):
        candidate = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a temporary folder in {folder}")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def canonical_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace) used for digests."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(obj: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def staged_run_dir(out: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Stage a run directory and move it into place when the block succeeds.

    Raises :class:`RunExistsError` if ``out`` exists and ``force`` is false.  On failure the staging
    directory is removed and any earlier run at ``out`` is untouched.
    """
    out = Path(out)
    if out.exists() and not force:
        raise RunExistsError(
            f"run directory {out} already exists; choose another --out or pass --force to overwrite it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = _new_dir(out.parent, f".{out.name}.", ".staging")
    try:
        yield stage
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out, old)
            os.replace(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# committing several files into a folder as one unit
# --------------------------------------------------------------------------------------------------
JOURNAL = ".commit-journal.json"
STAGE_PREFIX = ".commit-stage-"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory ``flock`` on ``folder`` itself (no lock file; works on a read-only folder).

    Commits hold it exclusively from the journal's creation to its removal; readers hold it shared,
    so a reader never overlaps a commit.  A no-op where ``fcntl`` is unavailable.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except PermissionError:
        if exclusive:
            raise
        yield  # a folder we may read files in but not list: read unlocked, as before
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _held(folder: Path) -> bool:
    """Whether another open descriptor holds an exclusive lock on ``folder``."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def staged_files(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh staging folder inside ``root`` to build files in, for :func:`commit_files`.

    The folder is locked by this process while the block runs (so :func:`recover` never takes it
    for stale) and removed afterwards, unless a journal still names it (an interrupted commit that
    the next :func:`recover` completes).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with folder_lock(root, exclusive=False):  # no recover() between mkdir and the stage's lock
        stage = _new_dir(root, STAGE_PREFIX, "")
        fd = os.open(stage, os.O_RDONLY) if fcntl is not None else -1
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield stage
    finally:
        if fd >= 0:
            os.close(fd)
        try:
            named = _read_journal(root).get("stage") == stage.name
        except DataError:  # an unreadable journal might name this stage: keep it
            named = True
        if not named:
            shutil.rmtree(stage, ignore_errors=True)


def commit_files(root: str | os.PathLike[str], stage: Path, relpaths: list[str]) -> None:
    """Move ``stage/<rel>`` onto ``root/<rel>`` for every ``rel``, all or nothing.

    Hold :func:`folder_lock` (exclusive) on ``root`` around the call.  The staged files are synced,
    then a journal naming them is written atomically into ``root``: that write is the commit point.
    Before it, an interruption leaves ``root`` untouched; after it, :func:`recover` (run by the next
    writer or reader) finishes the renames.  The journal is removed only once every file is in
    place, so put the file that marks a complete set (a manifest) last.
    """
    root = Path(root)
    for rel in relpaths:
        _check_rel(rel)
        _fsync(stage / rel)
    journal = {"format": 1, "stage": stage.name, "files": list(relpaths)}
    with atomic_path(root / JOURNAL) as tmp:
        tmp.write_text(json.dumps(journal, indent=2) + "\n", encoding="utf-8")
        _fsync(tmp)
    _fsync(root)
    _apply(root, journal)


def _apply(root: Path, journal: dict[str, Any]) -> None:
    stage = root / journal["stage"]
    folders = {root}
    for rel in journal["files"]:
        src, dst = stage / rel, root / rel
        if src.exists():  # absent: already moved before an interruption
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            folders.add(dst.parent)
    for folder in folders:
        _fsync(folder)
    (root / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(stage, ignore_errors=True)


def _read_journal(root: Path) -> dict[str, Any]:
    """The pending commit's journal, or ``{}``; a journal that cannot be trusted is a DataError."""
    path = root / JOURNAL
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"commit journal {path} is not valid JSON ({err})") from None
    stage = journal.get("stage") if isinstance(journal, dict) else None
    files = journal.get("files") if isinstance(journal, dict) else None
    ok = isinstance(stage, str) and stage.startswith(STAGE_PREFIX) and "/" not in stage
    if not ok or not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise DataError(f"commit journal {path} has no valid 'stage' and 'files'")
    try:
        for rel in files:
            _check_rel(rel)
    except ValueError as err:
        raise DataError(f"commit journal {path} names a file outside the folder: {err}") from None
    return journal


def _check_rel(rel: str) -> None:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"{rel!r} is not a relative path inside the folder")


def pending_commit(root: str | os.PathLike[str]) -> bool:
    """Whether an interrupted commit's journal is waiting in ``root``."""
    return (Path(root) / JOURNAL).is_file()


def recover(root: str | os.PathLike[str], *, clean: bool = True) -> bool:
    """Finish a commit into ``root`` that was interrupted; with ``clean``, drop abandoned stages.

    Hold :func:`folder_lock` (exclusive) on ``root`` around the call.  Returns whether a commit was
    completed.  A stage is abandoned when no process holds its lock (its writer died before the
    commit point); its files never reached ``root``.
    """
    root = Path(root)
    journal = _read_journal(root)
    if journal:
        _apply(root, journal)
    if clean and fcntl is not None:
        for stage in root.glob(f"{STAGE_PREFIX}*"):
            if stage.is_dir() and not _held(stage):
                shutil.rmtree(stage, ignore_errors=True)
    return bool(journal)


@contextlib.contextmanager
def reading(root: str | os.PathLike[str], *, hint: str = "") -> Iterator[Path]:
    """Read the files of ``root`` as one consistent set: never across a commit.

    Completes an interrupted commit first (this writes into ``root``, as a hot journal is rolled on
    by the next SQLite reader), then holds a shared :func:`folder_lock` while the block reads.
    Nothing is written when no journal is pending.  If the pending commit cannot be completed (a
    read-only store) a :class:`DataError` says so; ``hint`` is appended to its message.
    """
    root = Path(root)
    if not root.is_dir():
        yield root
        return
    for _ in range(5):
        if pending_commit(root):
            try:
                with folder_lock(root, exclusive=True):
                    recover(root, clean=False)
            except OSError as err:
                raise DataError(
                    f"{root} holds an interrupted commit ({root / JOURNAL}) that could not be "
                    f"completed ({err}); {hint or 'complete it with write access to the folder'}"
                ) from None
        with folder_lock(root, exclusive=False):
            if pending_commit(root):  # a writer died between our recovery and our lock
                continue
            yield root
            return
    raise DataError(f"{root} keeps showing interrupted commits; {hint}")


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's contents to disk (best effort for folders)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():  # some file systems cannot sync a folder; a file must sync
            raise
    finally:
        os.close(fd)
