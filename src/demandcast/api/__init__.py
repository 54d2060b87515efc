"""The forecast API: FastAPI routes over a model bundle (see ``demandcast.bundle``).

Imports nothing from training (no pandas, no params.yaml): the bundle holds everything serving
needs. ``python -m demandcast.api`` runs it; ``settings`` lists the environment variables.
"""
