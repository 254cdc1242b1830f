"""Named errors.  Each message says what is wrong, where, and how to fix it.

The CLI turns any :class:`RegimecastError` into one line on stderr and a non-zero exit code.
"""


class RegimecastError(Exception):
    """Base class of every error regimecast raises on purpose."""

    exit_code = 1


class DataError(RegimecastError):
    """A data file or series is missing, malformed, or unusable (names the file, line or date)."""

    exit_code = 2


class FetchError(RegimecastError):
    """A download failed; the data store was left as it was."""

    exit_code = 3


class ConfigError(RegimecastError):
    """A TOML model configuration (or a command-line option) is invalid."""

    exit_code = 2


class ConvergenceError(RegimecastError):
    """The sampler did not pass the convergence gate (r-hat, ESS, divergences)."""

    exit_code = 4


class RunExistsError(RegimecastError):
    """The run directory already exists; pass ``--force`` to overwrite it."""

    exit_code = 5


class RunMismatchError(RegimecastError):
    """A saved run does not match the current code or config (names what differs)."""

    exit_code = 6


class SchemaError(DataError):
    """A forecast or history Dataset does not follow :mod:`regimecast.schema` (names what is missing)."""


class UpdateError(RegimecastError):
    """``regimecast update`` cannot take the store's data into a run (names the run, month or series)."""

    exit_code = 7


class WeightsError(UpdateError):
    """The importance weights of an update cannot be trusted and ``--refit never`` forbids a refit.

    ``khat``, ``ess`` and ``effective_draws`` (independent draws) say how far from trusted they were."""

    exit_code = 8
    khat: float = float("nan")
    ess: float = float("nan")
    effective_draws: float = float("nan")
