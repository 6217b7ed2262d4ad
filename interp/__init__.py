"""Closed-form fields and samplers of stochastic interpolants on a finite training set."""

from . import basins, data, discretization, metrics, parsing, samplers, schedules
from .fields import EmpiricalField
from .samplers import sample_ode, sample_sde
from .schedules import Schedule

__all__ = ["schedules", "Schedule", "EmpiricalField", "samplers", "sample_ode", "sample_sde", "metrics", "data", "basins", "discretization", "parsing"]
__version__ = "0.1.0"
