"""The API's routes, one router per concern; ``create_app`` includes them.

* ``forecast``: POST /predict (the fast path) and GET /forecast, the answers of the model;
* ``ops``: GET /health, GET /model and GET /metrics, for the operator and the scraper;
* ``admin``: POST /admin/reload, the model swap.

Routes read the app's shared state through ``demandcast.api.deps`` and answer with
``responses.json_response``.
"""
