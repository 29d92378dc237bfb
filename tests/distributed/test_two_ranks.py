"""Two ranks under ``mpiexec -n 2`` (MPICH from the ``dist``/``test`` extras): the collectives, DDP and
SyncBatchNorm cases of mpi_cases.py, and the command line: two ranks train the weights one process trains, a
two-rank checkpoint resumes in one process, and a rank that fails ends the run instead of hanging it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import distributed as dist

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
HAVE_MPI = dist.is_available() and MPIEXEC is not None
if os.environ.get("CI") and not HAVE_MPI:       # CI installs the test extra, which has them: never skip there
    raise RuntimeError("the two-rank tests need mpi4py and mpiexec (the test extra); none found")
pytestmark = pytest.mark.skipif(not HAVE_MPI, reason="needs mpi4py and mpiexec: pip install -e '.[dist]'")
# `python -m minicnn` on one convolution algorithm: the one- and two-rank runs must round alike to end 1e-5 apart,
# and autotuning's timing-dependent choice (each process measures its own) differed under the parallel test run.
MINICNN = [sys.executable, "-c", "import runpy, minicnn; minicnn.backends.conv_algorithm = 'im2col'; "
                                 "runpy.run_module('minicnn', run_name='__main__', alter_sys=True)"]
# At a low lr: at lenet5's default (0.05) rounding apart by 1e-7 flips a ReLU or a max-pool's argmax within the
# epoch on some machines (Intel AVX-512: weights 1e-3 apart after 64 steps, 5e-7 after 56); at 0.005 they end 1e-8 apart
TRAIN = [*MINICNN, "train", "lenet5", "--epochs", "1", "--train-size", "4096",
         "--batch-size", "64", "--no-augment", "--seed", "0", "--lr", "0.005"]
TIMEOUT = 300                                   # a hang would be a failure, not a stuck test run


def run(cmd, timeout=TIMEOUT):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for var in [v for v in env if v.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCAL"))]:
        del env[var]                            # a launcher's variables would make mpiexec nest
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def mpiexec(n, *cmd):
    return [MPIEXEC, "-n", str(n), *cmd]


def weights(path):
    return {k: np.asarray(v) for k, v in mc.load(path)["model"].items()}


def assert_close(a, b, rel):
    assert a.keys() == b.keys()
    for k in a:                                 # per tensor: |a - b| / |a| (Frobenius norms)
        err = np.linalg.norm(a[k] - b[k]) / np.linalg.norm(a[k])
        assert err <= rel, f"{k}: relative difference {err:.2e} > {rel:g}"


def test_collectives_ddp_and_sync_batch_norm_in_two_ranks():
    r = run(mpiexec(2, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                    "tests/distributed/mpi_cases.py"))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert r.stdout.count(" passed") == 2       # one summary line per rank


def test_two_ranks_train_the_weights_of_one_process_and_resume_in_one(tmp_path):
    one = run(TRAIN + ["--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    two = run(mpiexec(2, *TRAIN, "--out", str(tmp_path / "two")))
    assert two.returncode == 0, two.stderr[-3000:]
    assert "x 2 ranks" in two.stdout and two.stdout.count("done: test accuracy") == 1   # rank 0 alone prints
    assert_close(weights(tmp_path / "two" / "checkpoint.npz"), weights(tmp_path / "one" / "checkpoint.npz"), 1e-5)
    h1, h2 = (mc.load(tmp_path / d / "checkpoint.npz")["history"] for d in ("one", "two"))
    assert abs(h1[0]["train_loss"] - h2[0]["train_loss"]) < 1e-4      # the whole batch's loss, not rank 0's
    # the two-rank checkpoint goes on in one process as it does in two
    shutil.copytree(tmp_path / "two", tmp_path / "two-again")
    resume = ["--resume", str(tmp_path / "two" / "checkpoint.npz"), "--epochs", "2", "--lr", "0.005"]
    r = run([*MINICNN, "train", "lenet5"] + resume)
    assert r.returncode == 0 and "resumed from" in r.stdout, r.stderr[-3000:]
    resume[1] = str(tmp_path / "two-again" / "checkpoint.npz")
    r = run(mpiexec(2, *MINICNN, "train", "lenet5", *resume, "--out", str(tmp_path / "two-again")))
    assert r.returncode == 0 and "resumed from" in r.stdout, r.stderr[-3000:]
    for d in ("two", "two-again"):
        assert [h["epoch"] for h in mc.load(tmp_path / d / "checkpoint.npz")["history"]] == [1, 2]
    assert_close(weights(tmp_path / "two" / "checkpoint.npz"), weights(tmp_path / "two-again" / "checkpoint.npz"),
                 1e-5)


@pytest.mark.parametrize("failure", [["nosuchmodel", "--dataset", "mnist"], ["lenet5", "--resume", "/nonexistent/checkpoint.npz"]])
def test_a_failing_rank_ends_every_rank(tmp_path, failure):
    """Rank 1 fails (an exception; an error return) while rank 0 waits for it in DDP's first broadcast."""
    good = TRAIN + ["--out", str(tmp_path)]
    bad = [*MINICNN, "train", *failure, "--out", str(tmp_path)]
    r = run([MPIEXEC, "-n", "1", *good, ":", "-n", "1", *bad], timeout=120)
    assert r.returncode != 0
    assert ("nosuchmodel" if failure[0] == "nosuchmodel" else "no checkpoint at") in r.stderr, r.stderr[-3000:]
    assert not (tmp_path / "checkpoint.npz").exists()


@pytest.mark.cuda
def test_ddp_and_sync_batch_norm_on_the_cuda_device_in_two_ranks():
    """tests/run.sh's simulated and strict-CuPy runs: the same cases with cuda tensors (the environment passes on)."""
    if not mc.cuda_available():
        pytest.skip("no cuda device (set NUMBA_ENABLE_CUDASIM=1)")
    r = run(mpiexec(2, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-m", "cuda",
                    "tests/distributed/mpi_cases.py"))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert r.stdout.count("2 passed") == 2
