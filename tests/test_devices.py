"""The cuda device (real, or simulated with NUMBA_ENABLE_CUDASIM=1): tensors, moves and gradients across them."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from minicnn import backend
from helpers import DEVICES, randn


@pytest.mark.parametrize("device", DEVICES)
def test_small_model_matches_cpu(device):
    mc.manual_seed(0)
    cpu = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    mc.manual_seed(0)
    dev = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).to(device)
    x, t = randn(4, 3), np.array([0, 1, 1, 0])
    losses = []
    for model, d in ((cpu, "cpu"), (dev, device)):
        loss = F.cross_entropy(model(mc.tensor(x, device=d)), mc.tensor(t, device=d))
        loss.backward()
        assert loss.device == d and backend.device_of(loss.data) == d
        losses.append(loss.item())
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
    np.testing.assert_allclose(cpu[0].weight.grad.numpy(), dev[0].weight.grad.numpy(), rtol=1e-5)
    assert dev[0].weight.grad.device == device


@pytest.mark.parametrize("device", DEVICES)
def test_moves_are_differentiable(device):
    x = mc.tensor(randn(3), requires_grad=True)
    y = x.to(device)
    assert y.device == device and backend.device_of(y.data) == device
    z = (y * 2).cpu()
    assert z.device == "cpu" and type(z.data) is np.ndarray
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2)
    assert x.grad.device == "cpu"


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2, reason="needs two CPU threads")
def test_split_across_threads_deals_the_chunks_out_and_runs_each_share_on_one_thread():
    """Thread i of T gets chunks i, i + T, ...; the shares run at once (both wait at a barrier), each with Numba and
    BLAS on one thread; afterwards the caller's settings are back.  An error in one share reaches the caller."""
    import threading
    import numba
    from threadpoolctl import threadpool_info
    seen, barrier = [], threading.Barrier(2, timeout=10)

    def run(share):
        barrier.wait()
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        seen.append((threading.get_ident(), numba.get_num_threads(), blas))
        return share

    restore = mc.set_num_threads(2)
    try:
        assert backend.split_across_threads(list(range(5)), run) == [[0, 2, 4], [1, 3]]
        assert len({ident for ident, _, _ in seen}) == 2 and threading.get_ident() not in {s[0] for s in seen}
        assert all(n == 1 and all(b == 1 for b in blas) for _, n, blas in seen)
        assert numba.get_num_threads() == 2
        assert all(i["num_threads"] == 2 for i in threadpool_info() if i["user_api"] == "blas")
        assert backend.split_across_threads([7], lambda share: share) == [[7]]     # one chunk: no threads
        with pytest.raises(ZeroDivisionError):
            backend.split_across_threads([0, 1], lambda share: 1 / share[0])
    finally:
        restore()


def _split_in_child(queue):
    queue.put(backend.split_across_threads([0, 1, 2], lambda share: sum(share)))


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2 or sys.platform == "win32",
                    reason="needs two CPU threads and fork")
def test_split_across_threads_works_in_a_forked_child():
    """A forked child has none of its parent's worker threads: it starts its own pool instead of waiting on the
    parent's (a DataLoader worker, say)."""
    import multiprocessing
    restore = mc.set_num_threads(2)
    try:
        assert backend.split_across_threads([0, 1, 2], lambda share: sum(share)) == [2, 1]
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_split_in_child, args=(queue,))
        child.start()
        assert queue.get(timeout=60) == [2, 1]
        child.join(60)
        assert child.exitcode == 0
    finally:
        restore()


def test_chunk_ranges_are_equal_in_size_and_a_multiple_of_the_threads():
    x = np.zeros((128, 1))
    chunks = backend.chunk_ranges(x, 1, 7)                        # at most 7 images: 19 chunks of 6 or 7
    assert len(chunks) == 19 and {n1 - n0 for n0, n1 in chunks} == {6, 7}
    assert chunks[0][0] == 0 and chunks[-1][1] == 128 and all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    chunks = backend.chunk_ranges(x, 1, 7, multiple=2)            # 20 chunks: 10 for each of two threads
    assert len(chunks) == 20 and {n1 - n0 for n0, n1 in chunks} == {6, 7}
    assert sum(n1 - n0 for n0, n1 in chunks[0::2]) == sum(n1 - n0 for n0, n1 in chunks[1::2]) == 64
    assert backend.chunk_ranges(np.zeros((3, 1)), 1, 1, multiple=4) == [(0, 1), (1, 2), (2, 3)]   # few images


def test_split_runs_on_the_calling_thread_under_numbas_workqueue_layer(monkeypatch):
    """Numba's workqueue threading layer aborts the process when two Python threads run parallel kernels at once:
    under it the shares run one after the other on the caller's thread, as one share."""
    import threading
    import numba
    monkeypatch.setattr(numba, "threading_layer", lambda: "workqueue")
    seen = []
    restore = mc.set_num_threads(2)
    try:
        assert backend.split_across_threads([0, 1, 2], lambda share: seen.append(threading.get_ident()) or share) \
            == [[0, 1, 2]]
    finally:
        restore()
    assert seen == [threading.get_ident()]


@pytest.mark.parametrize("given, expected", [(None, {"OMP_WAIT_POLICY": "passive", "GOMP_SPINCOUNT": "10000"}),
                                             ({"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": "7"},
                                              {"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": "7"})])
def test_openmp_wait_settings_made_at_import_unless_the_user_set_them(given, expected):
    env = {k: v for k, v in os.environ.items() if k not in expected}
    env.update(given or {})
    code = "import os, minicnn; print(os.environ['OMP_WAIT_POLICY'], os.environ['GOMP_SPINCOUNT'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected["OMP_WAIT_POLICY"], expected["GOMP_SPINCOUNT"]]
