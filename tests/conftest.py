"""Shared test set-up.  Tests parametrised with ``device="cuda"`` get the ``cuda`` marker, so the simulated run
(``NUMBA_ENABLE_CUDASIM=1 pytest -m cuda``, a separate process: the variable must be set before Numba is
imported) runs exactly the CUDA cases, and the plain run (no GPU) has none of them."""
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("minicnn", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("minicnn")


def pytest_collection_modifyitems(config, items):
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and spec.params.get("device") == "cuda":
            item.add_marker(pytest.mark.cuda)
