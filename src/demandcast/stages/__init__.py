"""One thin entry module per DVC stage: ``python -m demandcast.stages.<name>``.

Each imports only what its stage needs, and its code deps in ``dvc.yaml`` are exactly the files
it imports (``tests/test_stage_deps.py`` checks this), so ``dvc repro`` re-runs exactly the
stages a code change affects. ``common`` is the shared edge: every stage depends on it.
"""
