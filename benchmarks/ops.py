"""Speed of the hot ops on this machine: prints figures and ratios, asserts nothing.

    python benchmarks/ops.py [--repeat 7]

1. conv2d forward+backward at N=64, 64->64 channels, 32x32, 3x3, padding 1 (float32): ms per call; the GFLOP/s
   of the whole op next to NumPy's own float32 matmul GFLOP/s at the op's three GEMM shapes (forward y = W @ cols,
   input gradient gcols = W^T @ gy, weight gradient gW = gy @ cols^T, each per image); the GFLOP/s of the GEMMs
   inside the conv; and the share of the conv's time spent outside them (im2col, col2im, bias, copies), found
   by timing every ``numpy.matmul`` call the conv makes.  Targets: whole op >= 60% of NumPy's GEMM GFLOP/s,
   non-GEMM share <= 30%.
2. The small convolutions of LeNet-5 (batch 128): ms per forward+backward, to show per-call overhead.
3. max pooling 2x2 (``F.max_pool2d``) at the conv's size: forward+backward bytes moved (input, output, indices,
   gradients, each once) per second against a large ``np.copyto``'s bandwidth measured in the same run.
   Target: >= 25%.

Other processes share the CPU: every figure is the best of ``--repeat`` runs, and the conv and NumPy's GEMMs run
interleaved so that both see the same load.

OpenBLAS's idle worker threads spin for 2^28 cycles (~0.1 s) after every GEMM and take a core from the Numba
kernels that follow (im2col, col2im); ``OPENBLAS_THREAD_TIMEOUT=20`` in the environment before NumPy is imported
lets them sleep after ~2^20 cycles.  Measured on the development machine, best of 12: conv2d forward+backward
223 ms by default (0.60 of NumPy's GEMM GFLOP/s, 38% outside GEMMs), 189 ms with it (0.70, 31%).
"""
import argparse
import os
import time

import minicnn as mc                                         # first: it may set up the environment before NumPy
import minicnn.functional as F
import numba
import numpy as np


def best_ms(fn, repeat):
    fn()                                                   # warm-up: JIT compilation, buffers
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


class GemmTimer:
    """Wraps ``numpy.matmul`` (which the conv calls as ``xp.matmul``) to add up the time spent in GEMMs."""
    def __init__(self):
        self.seconds, self.matmul = 0.0, np.matmul

    def __enter__(self):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = self.matmul(*args, **kwargs)
            self.seconds += time.perf_counter() - t0
            return out
        np.matmul = timed
        return self

    def __exit__(self, *exc):
        np.matmul = self.matmul


def conv_benchmark(repeat, N=64, C=64, OC=64, H=32, K=3):
    rng = np.random.default_rng(0)
    x = mc.tensor(rng.standard_normal((N, C, H, H)), requires_grad=True)
    w = mc.tensor(rng.standard_normal((OC, C, K, K)) * 0.05, requires_grad=True)
    b = mc.tensor(rng.standard_normal(OC), requires_grad=True)
    gy = rng.standard_normal((N, OC, H, H)).astype(np.float32)
    CK, L = C * K * K, H * H                                # NumPy alone on the conv's GEMM shapes
    Wm, cols = rng.random((OC, CK), np.float32), rng.random((N, CK, L), np.float32)
    gy3, WT = rng.random((N, OC, L), np.float32), np.ascontiguousarray(Wm.T)
    outs = [np.empty((N, OC, L), np.float32), np.empty((N, CK, L), np.float32), np.empty((N, OC, CK), np.float32)]

    def numpy_gemms():
        np.matmul(Wm, cols, out=outs[0])                    # forward
        np.matmul(WT, gy3, out=outs[1])                     # input gradient (columns)
        np.matmul(gy3, cols.transpose(0, 2, 1), out=outs[2])   # weight gradient, per image

    def conv_step():
        F.conv2d(x, w, b, padding=1).backward(gy)

    fwd_ms = best_ms(lambda: F.conv2d(x, w, b, padding=1), repeat)
    conv_step(), numpy_gemms()                              # warm-up
    runs, numpy_ms = [], []
    for _ in range(repeat):                                 # interleaved, so both see the same load
        with GemmTimer() as timer:
            t0 = time.perf_counter()
            conv_step()
            runs.append((time.perf_counter() - t0, timer.seconds))
        t0 = time.perf_counter()
        numpy_gemms()
        numpy_ms.append(1e3 * (time.perf_counter() - t0))
    (total, gemm), numpy_ms = min(runs), min(numpy_ms)
    total_ms, gflop = 1e3 * total, 3 * 2 * N * OC * CK * L / 1e9     # forward, input gradient, weight gradient
    print(f"conv2d N={N} {C}->{OC} {H}x{H} {K}x{K} pad 1, float32")
    print(f"  forward                  {fwd_ms:8.1f} ms")
    print(f"  forward+backward         {total_ms:8.1f} ms   {gflop / total_ms * 1e3:6.1f} GFLOP/s")
    print(f"  NumPy matmul, same GEMMs {numpy_ms:8.1f} ms   {gflop / numpy_ms * 1e3:6.1f} GFLOP/s")
    print(f"  GEMMs inside the conv    {gemm * 1e3:8.1f} ms   {gflop / gemm:6.1f} GFLOP/s")
    print(f"  conv / NumPy GFLOP/s     {numpy_ms / total_ms:8.2f}      (target >= 0.60)")
    print(f"  non-GEMM share           {1 - gemm / total:8.2f}      (target <= 0.30)")


def small_conv_benchmark(repeat):
    rng = np.random.default_rng(1)
    for name, (N, C, OC, H, K) in {"LeNet conv1": (128, 1, 6, 28, 5), "LeNet conv2": (128, 6, 16, 12, 5)}.items():
        x = mc.tensor(rng.standard_normal((N, C, H, H)), requires_grad=name != "LeNet conv1")
        w = mc.tensor(rng.standard_normal((OC, C, K, K)) * 0.1, requires_grad=True)
        b = mc.tensor(rng.standard_normal(OC), requires_grad=True)
        gy = rng.standard_normal((N, OC, H - K + 1, H - K + 1)).astype(np.float32)
        ms = best_ms(lambda: F.conv2d(x, w, b).backward(gy), repeat)
        print(f"{name}: N={N} {C}->{OC} {H}x{H} {K}x{K}: forward+backward {ms:.2f} ms"
              f"{' (no input gradient: first layer)' if name == 'LeNet conv1' else ''}")


def pool_benchmark(repeat, N=64, C=64, H=32):
    a = np.random.default_rng(2).random(64 * 2**20 // 4, dtype=np.float32)    # 64 MB, far beyond the caches
    dst = np.empty_like(a)
    copy_gbs = 2 * a.nbytes / best_ms(lambda: np.copyto(dst, a), repeat) / 1e6
    print(f"np.copyto bandwidth: {copy_gbs:.1f} GB/s (read + write)")
    if not hasattr(F, "max_pool2d"):
        print("max_pool2d: not in minicnn.functional yet, skipped")
        return
    x = mc.tensor(np.random.default_rng(3).standard_normal((N, C, H, H)), requires_grad=True)
    gy = np.ones((N, C, H // 2, H // 2), np.float32)
    ms = best_ms(lambda: F.max_pool2d(x, 2).backward(gy), repeat)
    nbytes = 4 * (2 * x.numel() + 3 * gy.size)              # x, gx; y, indices (int32), gy
    gbs = nbytes / ms / 1e6
    print(f"max_pool2d 2x2 N={N} C={C} {H}x{H}: forward+backward {ms:.2f} ms, {gbs:.1f} GB/s = "
          f"{gbs / copy_gbs:.2f} of copy bandwidth (target >= 0.25)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"Numba threads {numba.get_num_threads()}, OPENBLAS_THREAD_TIMEOUT="
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset (idle BLAS threads spin 2^28 cycles)')}")
    conv_benchmark(args.repeat)
    small_conv_benchmark(args.repeat)
    pool_benchmark(args.repeat)
