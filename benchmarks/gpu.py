"""Speed on the GPU (``device="cuda"``: CuPy arrays, Numba CUDA kernels, cuBLAS GEMMs), next to the CPU.

    python benchmarks/gpu.py [--repeat 20] [--small]

Prints ms per call on each device and the ratio, for
1. conv2d forward+backward at N=64, 64->64, 32x32, 3x3, padding 1 (float32), with its GFLOP/s;
2. max_pool2d 2x2 forward+backward at the same size, with the bytes it moves per second;
3. one LeNet-5 training step (batch 128: forward, cross-entropy, backward, SGD step), with images/s;
4. the launch overhead: one Numba CUDA kernel on a 1-element CuPy array (max pooling of 1x1x2x2), per call,
   with and without the wait for the GPU (the host-side cost of a launch is the difference to an empty wait).
GPU times are taken after ``backend.synchronize()``, so queued kernels are counted.  Asserts nothing.
``--small`` shrinks every shape (a smoke test: with NUMBA_ENABLE_CUDASIM=1 it runs in the simulator, whose
timings mean nothing).
"""
import argparse
import time

import minicnn as mc                                       # first: it may set up the environment before NumPy
import minicnn.functional as F
import numpy as np
from minicnn import backend, optim
from minicnn.models import lenet5


def best_ms(fn, repeat):
    fn()                                                   # warm-up: compilation, memory pools
    backend.synchronize()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        backend.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def conv_case(device, N, C, H):
    rng = np.random.default_rng(0)
    x = mc.tensor(rng.standard_normal((N, C, H, H)), device=device, requires_grad=True)
    w = mc.tensor(rng.standard_normal((C, C, 3, 3)) * 0.05, device=device, requires_grad=True)
    gy = mc.tensor(rng.standard_normal((N, C, H, H)), device=device)
    return lambda: F.conv2d(x, w, padding=1).backward(gy)


def pool_case(device, N, C, H):
    rng = np.random.default_rng(1)
    x = mc.tensor(rng.standard_normal((N, C, H, H)), device=device, requires_grad=True)
    gy = mc.tensor(rng.standard_normal((N, C, H // 2, H // 2)), device=device)
    return lambda: F.max_pool2d(x, 2).backward(gy)


def lenet_case(device, N):
    mc.manual_seed(0)
    model = lenet5().to(device)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(2)
    x = mc.tensor(rng.standard_normal((N, 1, 28, 28)), device=device)
    t = mc.tensor(rng.integers(0, 10, N), device=device)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), t).backward()
        opt.step()
    return step


def launch_case(device):
    from minicnn.kernels import pool
    x = backend.to_device(np.zeros((1, 1, 2, 2), np.float32), device)
    return lambda: pool.max_pool_forward(x, 2, 2)


def launch_overhead_us(repeat=2000):
    """Host microseconds per launch of a 1-element kernel, without waiting for the GPU (numba-cuda's argument
    handling, CuPy allocation of the output), and the same including one wait."""
    fn = launch_case("cuda")
    fn()
    backend.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    queued = (time.perf_counter() - t0) / repeat
    backend.synchronize()
    return 1e6 * queued, 1e6 * best_ms(fn, 50) / 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--small", action="store_true", help="tiny shapes: a smoke test (e.g. in the simulator)")
    args = parser.parse_args()
    if not mc.cuda_available():
        raise SystemExit("benchmarks/gpu.py: no cuda device (install the cuda extra on a machine with a GPU, "
                         "or set NUMBA_ENABLE_CUDASIM=1 with --small for a smoke test)")
    N, C, H, B = (2, 4, 8, 4) if args.small else (64, 64, 32, 128)
    flop = 3 * 2 * N * C * C * 9 * H * H                   # forward, input gradient, weight gradient GEMMs
    pool_bytes = 4 * (2 * N * C * H * H + 3 * N * C * H * H // 4)
    kind = "simulated" if backend.SIMULATED else "GPU"
    print(f"cuda device: {kind}; shapes N={N} C={C} {H}x{H}, LeNet batch {B}")
    rows = [("conv2d 3x3 fwd+bwd", lambda d: conv_case(d, N, C, H), lambda ms: f"{flop / ms / 1e6:.0f} GFLOP/s"),
            ("max_pool2d 2x2 fwd+bwd", lambda d: pool_case(d, N, C, H), lambda ms: f"{pool_bytes / ms / 1e6:.1f} GB/s"),
            ("LeNet-5 train step", lambda d: lenet_case(d, B), lambda ms: f"{B / ms * 1e3:.0f} img/s")]
    print(f"{'':26}{'cpu ms':>10}{'cuda ms':>10}{'speed-up':>10}   cuda rate")
    for name, make, rate in rows:
        cpu = best_ms(make("cpu"), args.repeat)
        gpu = best_ms(make("cuda"), args.repeat)
        print(f"{name:26}{cpu:10.2f}{gpu:10.2f}{cpu / gpu:10.1f}   {rate(gpu)}")
    queued, waited = launch_overhead_us(20 if args.small else 2000)
    print(f"launch of a 1-element kernel: {queued:.1f} us queued, {waited:.1f} us with the wait")


if __name__ == "__main__":
    main()
