"""Model, sampler, gate, update and forecast settings, loaded from a TOML file.

The default configuration ships inside the package (``regimecast/default.toml``, read through
:mod:`importlib.resources`); ``models/default.toml`` in a source checkout is the user-facing copy of it
(a test keeps the two identical).  The dataclass defaults below equal that file (a test checks this too),
so ``RunConfig()`` and ``load_config()`` agree on every setting; only the ``[[events]]`` list differs
(``RunConfig()`` has none: events are user content, not settings with defaults).

``load_config(path)`` returns a frozen :class:`RunConfig`; ``RunConfig.to_dict()`` is the resolved config
stored with each run, and :func:`regimecast.io.digest` of it identifies the run.  This module imports no
sampler (PyMC, ArviZ, nutpie): :mod:`regimecast.fit` imports its settings from here.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from regimecast.errors import ConfigError

#: The two policy instruments' states by role (the labels a config gives them keep this order).
RATE_ROLES = ("cutting", "hold", "hiking")
BS_ROLES = ("QT", "steady", "QE")
#: The hidden chains of the model, in the order of the joint state index
#: ``k = (s * n_rate + r) * n_bs + b`` (macro regime s, rate stance r, balance-sheet stance b).
CHAINS = ("macro", "rate", "bs")
#: What a run's manifest records as the model's structure; a run with another one is refused.
MODEL_STRUCTURE = "macro x rate x bs (3 chains)"
DEFAULT_CONFIG_RESOURCE = "default.toml"
# PyMC's ``pm.sample(init=...)`` choices; nutpie honours only the default (a jittered start and a
# diagonal mass matrix adapted in warm-up).
PYMC_INITS = (
    "auto",
    "adapt_diag",
    "jitter+adapt_diag",
    "jitter+adapt_diag_grad",
    "advi+adapt_diag",
    "advi",
    "advi_map",
    "map",
    "adapt_full",
    "jitter+adapt_full",
)
DEFAULT_INIT = "jitter+adapt_diag"


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings.  ``sampler`` is "nutpie" (default) or "pymc".

    Every setting is honoured by both samplers or rejected: ``max_treedepth`` is nutpie's ``maxdepth``;
    ``init`` other than the default is PyMC-only; nutpie needs ``tune >= 1``.  ``retries`` and
    ``retry_tune_factor``: a fit that fails is retried this many times, each with ``tune`` multiplied
    by the factor and another seed.
    """

    draws: int = 1500
    tune: int = 700
    chains: int = 4
    cores: int | None = None  # parallel chains; None = min(chains, CPU count)
    target_accept: float = 0.9
    sampler: str = "nutpie"
    init: str = DEFAULT_INIT
    max_treedepth: int = 10
    start: str = "map"  # "map": chains start at the posterior mode; "prior": the sampler's default
    retries: int = 1
    retry_tune_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.start not in {"prior", "map"}:
            raise ConfigError(f"sampler.start must be 'prior' or 'map', got {self.start!r}")
        if self.sampler not in {"pymc", "nutpie"}:
            raise ConfigError(f"sampler must be 'pymc' or 'nutpie', got {self.sampler!r}")
        if self.draws < 1 or self.tune < 0 or self.chains < 1:
            raise ConfigError("sampler draws and chains must be >= 1 and tune >= 0")
        if self.cores is not None and self.cores < 1:
            raise ConfigError(f"sampler.cores must be >= 1 (or left out), got {self.cores}")
        if not 0.5 <= self.target_accept < 1:
            raise ConfigError(f"target_accept must be in [0.5, 1), got {self.target_accept}")
        if self.init not in PYMC_INITS:
            raise ConfigError(
                f"sampler.init must be one of {', '.join(PYMC_INITS)}; got {self.init!r}"
            )
        if self.max_treedepth < 1:
            raise ConfigError(f"sampler.max_treedepth must be >= 1, got {self.max_treedepth}")
        if self.retries < 0:
            raise ConfigError(f"sampler.retries must be >= 0, got {self.retries}")
        if not self.retry_tune_factor >= 1:
            raise ConfigError(
                f"sampler.retry_tune_factor must be >= 1 (retries tune longer), got {self.retry_tune_factor}"
            )
        if self.sampler == "nutpie":
            self._check_nutpie()

    def _check_nutpie(self) -> None:
        if self.tune < 1:
            raise ConfigError(
                f"sampler.tune = {self.tune}: nutpie needs at least 1 tuning step; "
                'set tune >= 1 (--tune), or sampler = "pymc" to sample without tuning'
            )
        if self.init != DEFAULT_INIT:
            raise ConfigError(
                f"sampler.init = {self.init!r} is a PyMC setting nutpie cannot honour (nutpie always "
                f'uses {DEFAULT_INIT!r}); remove init from [sampler], or set sampler = "pymc"'
            )


@dataclass(frozen=True)
class GateSettings:
    """Convergence gate thresholds."""

    max_rhat: float = 1.01
    min_ess_bulk: float = 200.0
    min_ess_tail: float = 100.0
    max_divergences: int = 0

    def __post_init__(self) -> None:
        if not self.max_rhat >= 1:
            raise ConfigError(f"gate.max_rhat must be >= 1, got {self.max_rhat}")
        if self.min_ess_bulk < 0 or self.min_ess_tail < 0 or self.max_divergences < 0:
            raise ConfigError("gate.min_ess_bulk, min_ess_tail and max_divergences must be >= 0")


@dataclass(frozen=True)
class UpdateSettings:
    """When a new month may update a fitted run by importance reweighting instead of a refit.

    ``khat_threshold``: the largest Pareto-smoothed importance-sampling k-hat accepted (above it the
    weights are unreliable: refit).  ``min_ess``: the fewest independent draws the reweighted posterior
    may keep (the weights' ESS x the parent's bulk ESS / draws; the gate's floor for a fit).
    ``backtest_min_ess``: the same floor for the backtest's reweighted origins, lower because a track
    record averages the Monte-Carlo error of a hundred-plus origins (README "Track record": cost).
    """

    khat_threshold: float = 0.7
    min_ess: float = 200.0
    backtest_min_ess: float = 100.0

    def __post_init__(self) -> None:
        if not 0 < self.khat_threshold <= 1:
            raise ConfigError(f"update.khat_threshold must be in (0, 1], got {self.khat_threshold}")
        if not self.min_ess >= 1:
            raise ConfigError(f"update.min_ess must be >= 1, got {self.min_ess}")
        if not self.backtest_min_ess >= 1:
            raise ConfigError(f"update.backtest_min_ess must be >= 1, got {self.backtest_min_ess}")


def _is_month(text: str) -> bool:
    parts = str(text).split("-")
    return len(parts) == 2 and len(parts[0]) == 4 and parts[0].isdigit() and parts[1] in {
        f"{m:02d}" for m in range(1, 13)
    }


@dataclass(frozen=True)
class Durations:
    """Prior expected durations (months) per state of each chain, in role order."""

    macro: tuple[float, ...] = (8.0, 60.0, 36.0)
    rate: tuple[float, float, float] = (8.0, 18.0, 12.0)  # cutting, hold, hiking
    bs: tuple[float, float, float] = (18.0, 48.0, 12.0)  # QT, steady, QE


@dataclass(frozen=True)
class Priors:
    """Prior centres.  Means are pinned by positive gaps from a reference state (log-normal with sd
    ``gap_sd``), so each state keeps its meaning: see README "Priors"."""

    cpi_mean: tuple[float, ...] = (-0.5, 2.8, 7.5)
    cpi_ref_sd: float = 0.2
    cpi_gap_sd: float = 0.15
    cpi_sigma: tuple[float, ...] = (3.0, 1.8, 3.0)
    rate_change_mean: tuple[float, float, float] = (-0.3, 0.0, 0.25)
    rate_hold_sd: float = 0.03
    rate_scale: tuple[float, float, float] = (0.15, 0.08, 0.12)
    rate_vol_level: float = 4.0
    zlb_move_logit: float = -4.0
    bs_growth_mean: tuple[float, float, float] = (-0.6, 0.3, 4.0)
    bs_mid_sd: float = 0.15
    bs_scale: tuple[float, float, float] = (0.6, 0.6, 3.0)
    rate_jump_logit: float = -2.0
    bs_jump_logit: float = -3.0
    gap_sd: float = 0.3
    scale_sd: float = 0.25
    student_nu: float = 4.0
    pooling_scale: float = 0.5
    tvtp_sd: float = 0.5


@dataclass(frozen=True)
class ModelConfig:
    macro_labels: tuple[str, ...] = ("deflationary", "moderate", "inflationary")
    rate_labels: tuple[str, ...] = RATE_ROLES
    bs_labels: tuple[str, ...] = BS_ROLES
    start: str = "1960-01"
    min_months: int = 120
    zlb: float = 0.25
    volume_trend_per: int = 120
    volume_start: str = "2005-01"
    tvtp: bool = False
    rate_volatile_era: tuple[str, ...] = ("1979-10", "1982-10")
    durations: Durations = field(default_factory=Durations)
    priors: Priors = field(default_factory=Priors)

    def __post_init__(self) -> None:
        for name, roles in (("rate_labels", RATE_ROLES), ("bs_labels", BS_ROLES)):
            labels = getattr(self, name)
            if len(labels) != 3 or len(set(labels)) != 3:
                raise ConfigError(
                    f"model.{name} needs exactly 3 distinct labels, by role [{', '.join(roles)}]; "
                    f"got {list(labels)}"
                )
        n = len(self.macro_labels)
        if n < 2 or len(set(self.macro_labels)) != n:
            raise ConfigError("model.macro_labels needs at least 2 distinct regimes")
        if len(set(self.macro_labels) | set(self.rate_labels) | set(self.bs_labels)) != n + 6:
            raise ConfigError(
                "model labels must be unique across macro_labels, rate_labels and bs_labels (outputs "
                "name a state by its label alone)"
            )
        for name in ("rate", "bs"):
            if len(getattr(self.durations, name)) != 3:
                raise ConfigError(f"model.durations.{name} needs 3 values (one per {name} state)")
        for name in ("rate_scale", "bs_scale"):
            if len(getattr(self.priors, name)) != 3:
                raise ConfigError(f"model.priors.{name} needs 3 values (one per state, role order)")
        if len(self.durations.macro) != n:
            raise ConfigError(
                f"model.durations.macro needs {n} values (one per macro regime), "
                f"got {len(self.durations.macro)}"
            )
        for name in ("cpi_mean", "cpi_sigma"):
            if len(getattr(self.priors, name)) != n:
                raise ConfigError(
                    f"model.priors.{name} needs {n} values (one per macro regime), "
                    f"got {len(getattr(self.priors, name))}"
                )
        for name in ("cpi_mean", "rate_change_mean", "bs_growth_mean"):
            v = list(getattr(self.priors, name))
            if any(b <= a for a, b in zip(v, v[1:], strict=False)):
                raise ConfigError(f"model.priors.{name} must strictly increase, got {v}")
        if not _is_month(self.volume_start):
            raise ConfigError(f"model.volume_start must be \"YYYY-MM\", got {self.volume_start!r}")
        if len(self.rate_volatile_era) not in (0, 2):
            raise ConfigError("model.rate_volatile_era must be [] or [\"YYYY-MM\", \"YYYY-MM\"]")

    @property
    def n_macro(self) -> int:
        return len(self.macro_labels)

    @property
    def n_rate(self) -> int:
        return len(self.rate_labels)

    @property
    def n_bs(self) -> int:
        return len(self.bs_labels)

    @property
    def n_policy(self) -> int:
        """Joint policy states (rate stance x balance-sheet stance), index ``z = r * n_bs + b``."""
        return self.n_rate * self.n_bs

    @property
    def n_states(self) -> int:
        """Joint states of the model: macro x rate x bs."""
        return self.n_macro * self.n_policy

    @property
    def chains(self) -> tuple[str, ...]:
        return CHAINS

    def chain_labels(self) -> dict[str, tuple[str, ...]]:
        """``{chain: labels}`` in :data:`CHAINS` order."""
        return {c: getattr(self, f"{c}_labels") for c in CHAINS}

    def state_components(self) -> dict[str, tuple[int, ...]]:
        """``{chain: (K,) state index of that chain}`` for every joint state ``k``."""
        nR, nB = self.n_rate, self.n_bs
        ks = range(self.n_states)
        return {
            "macro": tuple(k // (nR * nB) for k in ks),
            "rate": tuple((k // nB) % nR for k in ks),
            "bs": tuple(k % nB for k in ks),
        }

    def joint_labels(self) -> list[str]:
        """``"<macro>|<rate>|<bs>"`` for every joint state, in joint index order."""
        return [f"{s}|{r}|{b}" for s in self.macro_labels for r in self.rate_labels
                for b in self.bs_labels]


@dataclass(frozen=True)
class ForecastConfig:
    horizon: int = 24
    paths_per_draw: int = 1
    max_draws: int = 1000

    def __post_init__(self) -> None:
        if not 1 <= self.horizon <= 120:
            raise ConfigError(f"forecast.horizon must be 1..120 months, got {self.horizon}")
        if self.paths_per_draw < 1 or self.max_draws < 1:
            raise ConfigError("forecast.paths_per_draw and forecast.max_draws must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    update: UpdateSettings = field(default_factory=UpdateSettings)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    events: tuple[dict[str, Any], ...] = ()
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        d["events"] = [dict(e) for e in self.events]
        return d

    def replace(self, **sections: Any) -> RunConfig:
        """A copy with whole sections or fields replaced, e.g. ``replace(sampler={'draws': 200})``."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in sections.items():
            current = d[key]
            if isinstance(value, dict) and hasattr(current, "__dataclass_fields__"):
                d[key] = _build(type(current), {**asdict(current), **value}, key)
            else:
                d[key] = value
        return RunConfig(**d)


def _build(cls, values: dict[str, Any], where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in [{where}]: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name) if name not in {"durations", "priors"} else None
        if name == "durations":
            value = _build(Durations, value if isinstance(value, dict) else asdict(value), f"{where}.durations")
        elif name == "priors":
            value = _build(Priors, value if isinstance(value, dict) else asdict(value), f"{where}.priors")
        elif isinstance(value, list):
            first = default[0] if isinstance(default, tuple) and default else None
            value = tuple(_like(first, v) for v in value)
        else:
            value = _like(default, value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"invalid settings in [{where}]: {err}") from err


def _like(default: Any, value: Any) -> Any:
    """``value`` as a float where the default is a float (TOML ``8`` for ``8.0``), so a config read
    from TOML and the dataclass defaults resolve to the same JSON (and the same digest)."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_dict(raw: dict[str, Any], *, source: str = "") -> RunConfig:
    """Validate a parsed TOML document into a :class:`RunConfig`."""
    allowed = {"model", "sampler", "gate", "update", "forecast", "events"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(
            f"{source or 'config'}: unknown section(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(allowed))}"
        )
    if isinstance(raw.get("model"), dict) and "policy_labels" in raw["model"]:
        raise ConfigError(
            f"{source or 'config'}: model.policy_labels belongs to the old 4-state policy chain; the "
            "model now has two instruments: set model.rate_labels (cutting, hold, hiking) and "
            "model.bs_labels (QT, steady, QE), durations per instrument (start from the packaged "
            "default: regimecast.config.default_config_text())"
        )
    events = raw.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ConfigError(f"{source or 'config'}: [[events]] must be an array of tables")
    return RunConfig(
        model=_build(ModelConfig, raw.get("model", {}), "model"),
        sampler=_build(SamplerSettings, raw.get("sampler", {}), "sampler"),
        gate=_build(GateSettings, raw.get("gate", {}), "gate"),
        update=_build(UpdateSettings, raw.get("update", {}), "update"),
        forecast=_build(ForecastConfig, raw.get("forecast", {}), "forecast"),
        events=tuple(events),
        source=source,
    )


def default_config_text() -> str:
    """The packaged default configuration (a copy of ``models/default.toml``), as TOML text.

    Write it out to start your own: ``python -c "import regimecast.config as c;
    print(c.default_config_text(), end='')" > my.toml``.
    """
    return _packaged_default().read_text(encoding="utf-8")


def _packaged_default() -> resources.abc.Traversable:
    return resources.files("regimecast").joinpath(DEFAULT_CONFIG_RESOURCE)


def load_config(path: str | Path | None = None) -> RunConfig:
    """Read a TOML model configuration (default: the packaged copy of ``models/default.toml``)."""
    if path is None:
        source = str(_packaged_default())
        text = default_config_text()
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"config file {path} not found; pass --config with a TOML file, or leave it out "
                "for the packaged default"
            )
        source, text = str(path), path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML ({err})") from err
    return config_from_dict(raw, source=source)
