"""Model specs: the generic Markov-switching regression (and, later, the macro-regime model)."""

from regimecast.models.switching import (
    MarkovSwitchingRegression,
    SwitchingPrior,
    build_switching_model,
    duration_concentrations,
)
from regimecast.models.switching_results import (
    MarkovSwitchingResults,
    predict_regime_probabilities,
    summarise_forecast,
)

__all__ = [
    "MarkovSwitchingRegression",
    "MarkovSwitchingResults",
    "SwitchingPrior",
    "build_switching_model",
    "duration_concentrations",
    "predict_regime_probabilities",
    "summarise_forecast",
]
