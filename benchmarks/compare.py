"""minicnn against PyTorch CPU on the same machine, side by side: prints medians, p25-p75 and ratios.

    python benchmarks/compare.py [--torch-python /path/to/venv/bin/python] [--rounds 5] [--threads 2]

Workloads (float32):

    W1  conv2d 3x3 pad 1, N=64, 64->64, 32x32, forward + backward (x, W, b)
    W2  LeNet-5 train step (conv, relu, pool x2, 3 linear, CE, SGD), batch 64
    W3  CIFAR ResNet-20 (option-A shortcuts, BN) train step (SGD, momentum), batch 128
    W4  max_pool2d 2x2/2 forward + backward, 64x64x32x32
    W5  CIFAR ResNet-20 forward only (eval, no graph), batch 128

Every measurement runs in a fresh process (``--worker``): it pins the thread count (``mc.set_num_threads`` /
``torch.set_num_threads``), warms up (JIT compilation, minicnn's per-shape conv autotuning, buffers), then times
``--steps`` steps.  Rounds are interleaved (round 1: every workload on every engine, round 2: the same in the
other engine order, ...), so both engines see the same machine load; the table gives the median over every step
of every round, the 25th-75th percentiles, and minicnn / PyTorch.  PyTorch is never a dependency: it runs from
the interpreter given by ``--torch-python`` (or this one, if ``import torch`` works here), e.g. a separate venv
made with ``python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.13.0 numpy``.

Some machines set ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) because old OpenBLAS builds misdetect their CPU;
a current NumPy then runs an older, slower kernel (Haswell's AVX2 instead of SkylakeX's AVX-512 on the
development machine).  The machine line names the kernel and any such setting; to measure NumPy as it would run
by itself, unset both for the benchmark alone: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python
benchmarks/compare.py ...``.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

WORKLOADS = {
    "W1": "conv2d 3x3 pad 1, N=64, 64->64, 32x32, fwd + bwd (x, W, b)",
    "W2": "LeNet-5 train step, batch 64",
    "W3": "CIFAR ResNet-20 train step, batch 128",
    "W4": "max_pool2d 2x2/2 fwd + bwd, 64x64x32x32",
    "W5": "CIFAR ResNet-20 forward (eval), batch 128",
}


# ---- minicnn workloads ------------------------------------------------------------------------------------------
def minicnn_step(name):
    import minicnn as mc
    import minicnn.functional as F
    from minicnn.models import get_model
    rng = np.random.default_rng(0)
    if name == "W1":
        x = mc.tensor(rng.standard_normal((64, 64, 32, 32)), requires_grad=True)
        w = mc.tensor(rng.standard_normal((64, 64, 3, 3)) * 0.05, requires_grad=True)
        b = mc.tensor(rng.standard_normal(64), requires_grad=True)
        gy = rng.standard_normal((64, 64, 32, 32)).astype(np.float32)

        def step():
            x.grad = w.grad = b.grad = None
            F.conv2d(x, w, b, padding=1).backward(gy)
        return step
    if name == "W4":
        x = mc.tensor(rng.standard_normal((64, 64, 32, 32)), requires_grad=True)
        gy = rng.standard_normal((64, 64, 16, 16)).astype(np.float32)

        def step():
            x.grad = None
            F.max_pool2d(x, 2, 2).backward(gy)
        return step
    model = get_model("lenet5" if name == "W2" else "resnet20", num_classes=10)
    n, shape = (64, (1, 28, 28)) if name == "W2" else (128, (3, 32, 32))
    x = mc.tensor(rng.standard_normal((n, *shape)))
    y = mc.tensor(rng.integers(0, 10, n))
    if name == "W5":
        model.eval()

        def step():
            with mc.no_grad():
                model(x)
        return step
    opt = mc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


# ---- the same workloads in PyTorch --------------------------------------------------------------------------------
def torch_step(name):
    import torch
    import torch.nn as nn
    import torch.nn.functional as TF
    g = torch.Generator().manual_seed(0)
    if name == "W1":
        x = torch.randn(64, 64, 32, 32, generator=g, requires_grad=True)
        w = (torch.randn(64, 64, 3, 3, generator=g) * 0.05).requires_grad_()
        b = torch.randn(64, generator=g, requires_grad=True)
        gy = torch.randn(64, 64, 32, 32, generator=g)

        def step():
            x.grad = w.grad = b.grad = None
            TF.conv2d(x, w, b, padding=1).backward(gy)
        return step
    if name == "W4":
        x = torch.randn(64, 64, 32, 32, generator=g, requires_grad=True)
        gy = torch.randn(64, 64, 16, 16, generator=g)

        def step():
            x.grad = None
            TF.max_pool2d(x, 2, 2).backward(gy)
        return step

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = TF.max_pool2d(TF.relu(self.conv1(x)), 2)
            x = TF.max_pool2d(TF.relu(self.conv2(x)), 2)
            x = TF.relu(self.fc1(x.flatten(1)))
            return self.fc3(TF.relu(self.fc2(x)))

    class Block(nn.Module):
        def __init__(self, cin, c, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            self.pad = (c - cin) // 2 if stride != 1 or cin != c else None

        def forward(self, x):
            y = TF.relu(self.bn1(self.conv1(x)))
            s = x if self.pad is None else TF.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
            return TF.relu(self.bn2(self.conv2(y)) + s)

    class ResNet20(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
            cfg = [(16, 16, 1), (16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 32, 1),
                   (32, 64, 2), (64, 64, 1), (64, 64, 1)]
            self.blocks = nn.Sequential(*[Block(*c) for c in cfg])
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.blocks(TF.relu(self.bn1(self.conv1(x))))
            return self.fc(TF.adaptive_avg_pool2d(x, 1).flatten(1))

    model = LeNet5() if name == "W2" else ResNet20()
    n, shape = (64, (1, 28, 28)) if name == "W2" else (128, (3, 32, 32))
    x = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    if name == "W5":
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
        return step
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        TF.cross_entropy(model(x), y).backward()
        opt.step()
    return step


# ---- one fresh process: warm up, time, print JSON -------------------------------------------------------------------
def worker(engine, name, steps, warmup, threads):
    if engine == "torch":
        import torch
        torch.set_num_threads(threads)
        step = torch_step(name)
    else:
        import minicnn as mc
        mc.set_num_threads(threads)
        step = minicnn_step(name)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - t0))
    print(json.dumps(times))


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        cpu = next(l.split(":", 1)[1].strip() for l in lines if l.startswith("model name"))
        flags = next(l.split(":", 1)[1].split() for l in lines if l.startswith("flags"))
        cpu += ", AVX-512" if "avx512f" in flags else ", AVX2" if "avx2" in flags else ""
    except (OSError, StopIteration):
        pass
    blas = ""
    try:
        from threadpoolctl import threadpool_info
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            blas = f"{info[0].get('internal_api')} {info[0].get('version')} ({info[0].get('architecture')} kernel)"
    except ImportError:
        pass
    forced = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ)
    line = f"{cpu}, {os.cpu_count()} logical CPUs, NumPy {np.__version__} with {blas}"
    return line + (f" [{forced}]" if forced else "")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--torch-python", help="an interpreter that imports torch (default: this one, if it does)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--worker", nargs=2, metavar=("ENGINE", "WORKLOAD"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(*args.worker, args.steps, args.warmup, args.threads)

    torch_python = args.torch_python
    if torch_python is None and subprocess.run([sys.executable, "-c", "import torch"],
                                               capture_output=True).returncode == 0:
        torch_python = sys.executable
    engines = {"minicnn": sys.executable}
    if torch_python:
        engines["torch"] = torch_python
    names = args.workloads.split(",")
    times = {(e, w): [] for e in engines for w in names}
    print(f"machine: {machine()}; {args.threads} threads; {args.rounds} rounds x {args.steps} steps")
    for r in range(args.rounds):
        order = list(engines) if r % 2 == 0 else list(engines)[::-1]
        for w in names:
            for e in order:
                cmd = [engines[e], os.path.abspath(__file__), "--worker", e, w, "--steps", str(args.steps),
                       "--warmup", str(args.warmup), "--threads", str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{e} {w} failed:\n{out.stderr}")
                times[e, w] += json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)

    def fmt(ts):
        q = np.percentile(ts, [50, 25, 75])
        return f"{q[0]:8.1f} ({q[1]:.1f}-{q[2]:.1f})"
    head = f"| {'workload':<58} | {'PyTorch ms (p25-p75)':>24} | {'minicnn ms (p25-p75)':>24} | ratio |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for w in names:
        mine = times["minicnn", w]
        theirs = times.get(("torch", w))
        ratio = f"{np.median(mine) / np.median(theirs):5.2f}x" if theirs else "   - "
        print(f"| {w + ' ' + WORKLOADS[w]:<58} | {fmt(theirs) if theirs else '-':>24} | {fmt(mine):>24} | {ratio} |")


if __name__ == "__main__":
    main()
