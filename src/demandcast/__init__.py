"""demandcast: retail demand forecasting as a reproducible DVC pipeline."""

__version__ = "0.1.0"
