"""Closed-form fields and samplers of stochastic interpolants on a finite training set."""

from . import schedules
from .schedules import Schedule

__all__ = ["schedules", "Schedule"]
__version__ = "0.1.0"
