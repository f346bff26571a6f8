"""pkpd: a vectorised simulator of baclofen and GABA-B receptor pharmacodynamics.

For teaching and research only; never for dosing decisions.
"""

from .errors import (
    ParameterError,
    PkpdError,
    RegimenError,
    ResourceError,
    ScenarioError,
    SolverError,
)
from .model import READOUT_INFO, individual_parameters
from .parameters import PARAMETER_INFO, Parameters, default_parameters
from .population import Covariate, Omega, Population, ResidualError, population_from_estimates, sample_population
from .regimen import Dose, Infusion, Regimen, stepped, taper, taper_over, titration
from .simulate import READOUTS, Grid, SaveAt, SimulationResult, iter_chunks, output_times, simulate, simulate_arms

__version__ = "0.1.0"

__all__ = [
    "PkpdError", "ParameterError", "RegimenError", "ResourceError", "ScenarioError", "SolverError",
    "READOUTS", "READOUT_INFO", "individual_parameters",
    "PARAMETER_INFO", "Parameters", "default_parameters",
    "Covariate", "Omega", "Population", "ResidualError", "population_from_estimates", "sample_population",
    "Dose", "Infusion", "Regimen", "stepped", "taper", "taper_over", "titration",
    "Grid", "SaveAt", "SimulationResult", "iter_chunks", "output_times", "simulate", "simulate_arms",
]
