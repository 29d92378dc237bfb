#!/usr/bin/env bash
# The whole test suite, as the README's set-up command runs it.
#  1. the plain run: every CPU test, plus PTX compilation of every CUDA kernel (no GPU needed);
#  2. the CUDA kernels in Numba's simulator: a separate process, since NUMBA_ENABLE_CUDASIM must be set
#     before numba is imported; `-m cuda` selects the tests parametrised with device="cuda";
#  3. the cuda cases of the device-agnostic layers (ops, functional, nn, optim, training loop) once more, on a
#     strict stand-in for CuPy (tests/strict_cupy.py: refuses implicit conversion to NumPy and NumPy operands,
#     as CuPy does), which catches code that would fail on a GPU although the simulator accepts it.
# On a machine with a GPU and CuPy the first run already includes the cuda cases, so steps 2 and 3 are skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
JOBS=${JOBS:-2}

"$PY" -m pytest -n "$JOBS" -q "$@" || exit $?
if "$PY" -c "import sys, minicnn.backend as b; sys.exit(0 if b.HAS_CUPY else 1)"; then
    exit 0
fi
NUMBA_ENABLE_CUDASIM=1 "$PY" -m pytest -n "$JOBS" -q -m cuda "$@"
rc=$?
[ $rc -eq 5 ] && { echo "no cuda tests selected"; exit 0; }   # pytest: no test collected
[ $rc -ne 0 ] && exit $rc
[ $# -gt 0 ] && exit 0                                          # a selection of tests was asked for: done
NUMBA_ENABLE_CUDASIM=1 MINICNN_STRICT_CUPY=1 "$PY" -m pytest -n "$JOBS" -q -m cuda \
    tests/test_cuda_paths.py tests/test_devices.py tests/test_ops.py tests/test_autograd.py tests/test_train.py \
    tests/functional tests/nn tests/optim tests/distributed
rc=$?
[ $rc -eq 5 ] && exit 0
exit $rc
