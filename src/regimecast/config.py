"""Model, sampler, gate and forecast settings, loaded from a TOML file (see ``models/default.toml``).

``load_config(path)`` returns a frozen :class:`RunConfig`; ``RunConfig.to_dict()`` is the resolved config
stored with each run, and :func:`regimecast.io.digest` of it identifies the run.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from regimecast.errors import ConfigError
from regimecast.fit import GateSettings, SamplerSettings

POLICY_ROLES = ("QE", "cutting", "hold", "tightening")
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "models" / "default.toml"


@dataclass(frozen=True)
class Durations:
    macro: tuple[float, ...] = (8.0, 60.0, 36.0)
    QE: float = 8.0
    cutting: float = 8.0
    hold: float = 18.0
    tightening: float = 12.0

    def policy(self) -> tuple[float, float, float, float]:
        return (self.QE, self.cutting, self.hold, self.tightening)


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
    rate_scale: tuple[float, float, float, float] = (0.1, 0.15, 0.08, 0.12)
    rate_vol_level: float = 4.0
    bs_growth_mean: tuple[float, float, float] = (-0.6, 0.5, 4.0)
    bs_mid_sd: float = 0.3
    bs_scale: tuple[float, float, float, float] = (3.0, 0.6, 0.6, 0.6)
    gap_sd: float = 0.3
    scale_sd: float = 0.25
    student_nu: float = 4.0
    pooling_scale: float = 0.5
    tvtp_sd: float = 0.5


@dataclass(frozen=True)
class ModelConfig:
    macro_labels: tuple[str, ...] = ("deflationary", "moderate", "inflationary")
    policy_labels: tuple[str, ...] = POLICY_ROLES
    start: str = "1960-01"
    min_months: int = 120
    zlb: float = 0.25
    volume_trend_per: int = 120
    tvtp: bool = False
    rate_volatile_era: tuple[str, ...] = ("1979-10", "1982-10")
    durations: Durations = field(default_factory=Durations)
    priors: Priors = field(default_factory=Priors)

    def __post_init__(self) -> None:
        if len(self.policy_labels) != 4:
            raise ConfigError(
                "model.policy_labels needs exactly 4 labels, by role [QE, cutting, hold, tightening]; "
                f"got {list(self.policy_labels)}"
            )
        n = len(self.macro_labels)
        if n < 2:
            raise ConfigError("model.macro_labels needs at least 2 regimes")
        if len(set(self.macro_labels) | set(self.policy_labels)) != n + 4:
            raise ConfigError("model labels must be unique across macro_labels and policy_labels")
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
        if len(self.rate_volatile_era) not in (0, 2):
            raise ConfigError("model.rate_volatile_era must be [] or [\"YYYY-MM\", \"YYYY-MM\"]")

    @property
    def n_macro(self) -> int:
        return len(self.macro_labels)

    @property
    def n_policy(self) -> int:
        return len(self.policy_labels)


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
class UpdateSettings:
    """When ``regimecast update`` trusts importance weights instead of refitting."""

    khat_threshold: float = 0.7
    min_ess: float = 200.0

    def __post_init__(self) -> None:
        if not 0 < self.khat_threshold <= 1.0:
            raise ConfigError(f"update.khat_threshold must be in (0, 1], got {self.khat_threshold}")
        if self.min_ess < 1:
            raise ConfigError(f"update.min_ess must be >= 1, got {self.min_ess}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    update: UpdateSettings = field(default_factory=UpdateSettings)
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
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"invalid settings in [{where}]: {err}") from err


def config_from_dict(raw: dict[str, Any], *, source: str = "") -> RunConfig:
    """Validate a parsed TOML document into a :class:`RunConfig`."""
    allowed = {"model", "sampler", "gate", "forecast", "update", "events"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(
            f"{source or 'config'}: unknown section(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(allowed))}"
        )
    events = raw.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ConfigError(f"{source or 'config'}: [[events]] must be an array of tables")
    return RunConfig(
        model=_build(ModelConfig, raw.get("model", {}), "model"),
        sampler=_build(SamplerSettings, raw.get("sampler", {}), "sampler"),
        gate=_build(GateSettings, raw.get("gate", {}), "gate"),
        forecast=_build(ForecastConfig, raw.get("forecast", {}), "forecast"),
        update=_build(UpdateSettings, raw.get("update", {}), "update"),
        events=tuple(events),
        source=source,
    )


def load_config(path: str | Path | None = None) -> RunConfig:
    """Read a TOML model configuration (default: ``models/default.toml``)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass --config models/default.toml or a copy of it")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from err
    return config_from_dict(raw, source=str(path))
