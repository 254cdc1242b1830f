"""regimecast: Bayesian regime-switching forecasts of the macro liquidity cycle.

Data flows one way: raw files -> monthly panel -> model spec -> fit -> posterior -> forecast ->
events / charts / report.  The CLI (``regimecast``) is a thin shell over these functions.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("regimecast")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from regimecast.errors import (
    ConfigError,
    ConvergenceError,
    DataError,
    FetchError,
    RegimecastError,
    RunExistsError,
    RunMismatchError,
)

__all__ = [
    "__version__",
    "ConfigError",
    "ConvergenceError",
    "DataError",
    "FetchError",
    "RegimecastError",
    "RunExistsError",
    "RunMismatchError",
]
