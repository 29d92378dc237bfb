"""Shared test set-up.  Tests parametrised with ``device="cuda"`` get the ``cuda`` marker, so the simulated run
(``NUMBA_ENABLE_CUDASIM=1 pytest -m cuda``, a separate process: the variable must be set before Numba is
imported) runs exactly the CUDA cases, and the plain run (no GPU) has none of them."""
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

if os.environ.get("MINICNN_STRICT_CUPY") == "1":     # the cuda device on a strict CuPy stand-in (tests/run.sh)
    import strict_cupy

    from minicnn import backend
    backend.use_cupy(strict_cupy.module, strict_cupy.kernel_arg)

# Hypothesis profiles.  "ci" (chosen when the environment variable CI is set, as CI services and .ci/run do):
# derandomised, so every CI run draws the same examples and a red run is reproducible.  "dev" (otherwise): a
# fresh random draw each run, so a developer's runs keep exploring new shapes; a failing example is printed,
# and saved in .hypothesis/ so the next run tries it first.  HYPOTHESIS_PROFILE=ci|dev (or pytest's
# --hypothesis-profile) picks one explicitly.
_HYPOTHESIS = dict(deadline=None, max_examples=25,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", derandomize=True, **_HYPOTHESIS)
settings.register_profile("dev", derandomize=False, print_blob=True, **_HYPOTHESIS)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(config, items):
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and spec.params.get("device") == "cuda":
            item.add_marker(pytest.mark.cuda)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from minicnn.manual_seed(0): weight inits, dropout masks and shuffles are the same in every
    run and whatever ran before, so a test that trains a few steps passes or fails the same way each time."""
    import minicnn
    minicnn.manual_seed(0)
