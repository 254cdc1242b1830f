"""A regular install works outside a source checkout.

Builds the wheel from a copy of the source tree, installs it (non-editable, with its dependencies from
the package index) into a fresh virtual environment that cannot see this interpreter's packages or the
checkout, and runs ``regimecast forecast --demo`` from an empty temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# top-level entries of the checkout that are not needed to build the wheel (and may be large)
_SKIP_TOP = {
    ".git",
    ".venv",
    ".cache",
    "build",
    "dist",
    "runs",
    "data",
    ".pytest_cache",
    ".ruff_cache",
}


def _copy_source(dst: Path) -> None:
    """Copy the checkout without build artefacts, so building never writes into the checkout."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        if Path(directory) == REPO:
            skip |= _SKIP_TOP & set(names)
        return skip

    shutil.copytree(REPO, dst, ignore=ignore)


def _clean_env(tmp: Path) -> dict[str, str]:
    """This process's environment without anything that points Python at the checkout.

    The compile caches (``PYTENSOR_FLAGS``' compiledir, ``NUMBA_CACHE_DIR``) are kept when set: compiled
    code is not what this test checks, and cold they cost minutes (20 min wall on a loaded 2-core box).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.pop("REGIMECAST_DATA", None)
    env.setdefault("NUMBA_CACHE_DIR", str(tmp / "numba-cache"))
    env.setdefault("PYTENSOR_FLAGS", f"base_compiledir={tmp / 'pytensor-cache'}")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _run(
    cmd: list, *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(venv python, a work directory outside the checkout, environment) with the wheel installed."""
    root = tmp_path_factory.mktemp("install")
    work = root / "work"
    work.mkdir()
    env = _clean_env(root)
    source = root / "source"
    _copy_source(source)
    wheels = root / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, source],
        cwd=work,
        env=env,
        timeout=600,
    )
    (wheel,) = wheels.glob("regimecast-*.whl")
    assert "regimecast/default.toml" in zipfile.ZipFile(wheel).namelist()
    venv = root / "venv"
    # run from a venv, `-m venv` builds on the base interpreter; no --system-site-packages
    _run([sys.executable, "-m", "venv", venv], cwd=work, env=env, timeout=300)
    python = venv / "bin" / "python"
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([python, "-m", "pip", "install", "--quiet", wheel], cwd=work, env=env, timeout=1200)
    return python, work, env


def test_the_wheel_is_imported_from_the_venv_not_the_checkout(installed):
    python, work, env = installed
    code = (
        "import sysconfig, regimecast, regimecast.config as c; "
        "print(regimecast.__file__); print(sysconfig.get_paths()['purelib']); "
        "print(c.load_config().source); print(c.load_config().sampler.sampler)"
    )
    module, purelib, source, sampler = _run(
        [python, "-c", code], cwd=work, env=env, timeout=300
    ).stdout.split()
    assert Path(module).is_relative_to(purelib), (module, purelib)
    assert not Path(module).resolve().is_relative_to(REPO)
    assert Path(source) == Path(purelib) / "regimecast" / "default.toml"
    assert sampler == "nutpie"


def test_demo_forecast_runs_from_an_installed_wheel(installed):
    python, work, env = installed
    out = work / "fc"
    regimecast = python.parent / "regimecast"
    args = ["forecast", "--demo", "--draws", "100", "--tune", "100", "--chains", "2", "--out", out]
    # a 100-draw fit may miss the convergence gate; that is not what this test is about
    proc = _run([regimecast, *args, "--allow-unconverged"], cwd=work, env=env, timeout=3000)
    assert "SYNTHETIC DEMO DATA" in proc.stdout
    for name in ("report.html", "report.md", "events.csv", "forecast.nc", "manifest.json"):
        assert (out / name).is_file(), name
    assert list(out.glob("fan_*.png"))
    assert not (work / "runs").exists()  # everything went to --out
