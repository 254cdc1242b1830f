"""Model specs: the generic Markov-switching regression and the macro-regime x policy-state model."""

from regimecast.models.hmm_results import HMMResults
from regimecast.models.macro import MacroData, build_macro_model, prepare_data
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
    "HMMResults",
    "MacroData",
    "build_macro_model",
    "prepare_data",
    "MarkovSwitchingRegression",
    "MarkovSwitchingResults",
    "SwitchingPrior",
    "build_switching_model",
    "duration_concentrations",
    "predict_regime_probabilities",
    "summarise_forecast",
]
