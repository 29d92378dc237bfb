"""Data-parallel throughput: LeNet-5 training steps on MNIST at 1 and 2 MPI ranks (1 thread each) against one
process with 1 and 2 threads, the time DistributedDataParallel spends communicating per step, the CPU time of
a step (per process: a busy machine slows the wall clock, less the CPU time), and MPI
Allreduce latency and bandwidth on this machine (fitted t = alpha + bytes / beta) for the scaling model.

    python benchmarks/distributed.py                  # needs the dist extra (mpi4py + MPICH's mpiexec)
    python benchmarks/distributed.py --steps 200 --repeats 5 --batch-size 128

The global batch is the same in every configuration (--batch-size; each of 2 ranks takes half), so every
configuration does the same work per step and the throughputs compare directly.  Speed is never asserted.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args):
    """One configuration: warm up, then time ``args.steps`` training steps; rank 0 prints one JSON line."""
    import numpy as np
    import minicnn as mc
    import minicnn.functional as F
    from minicnn import distributed as dist
    from minicnn.data import MNIST, DataLoader, DistributedSampler, Subset
    from minicnn.data import transforms as T
    from minicnn.models import get_model
    mc.set_num_threads(args.threads)
    ddp = dist.launched_world_size() > 1 or args.ddp
    if ddp:
        dist.init_process_group()
    world, rank = (dist.get_world_size(), dist.get_rank()) if ddp else (1, 0)
    mc.manual_seed(0)
    data = Subset(MNIST(train=True, transform=T.Normalize((0.1307,), (0.3081,))),
                  range(args.batch_size * (args.steps + args.warmup)))
    sampler = DistributedSampler(data, world, rank, seed=0) if ddp else None
    loader = DataLoader(data, args.batch_size // world, shuffle=not ddp, seed=0, sampler=sampler)
    model = get_model("lenet5", num_classes=10)
    net = dist.DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb) if ddp else model
    opt = mc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times, cpu, comm = [], [], []
    for b, (x, y) in enumerate(loader):
        t0, p0, c0 = time.perf_counter(), time.process_time(), net.comm_seconds if ddp else 0.0
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        if b >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - p0)           # this process's CPU time (MPI's polling included)
            comm.append((net.comm_seconds if ddp else 0.0) - c0)
    result = dict(world=world, threads=args.threads, steps=len(times), step_ms=1e3 * float(np.median(times)),
                  img_s=args.batch_size * len(times) / sum(times), comm_ms=1e3 * float(np.median(comm)),
                  cpu_ms=1e3 * float(np.median(cpu)))
    if ddp:
        result.update(buckets=net.bucket_sizes, allreduce=allreduce_times(dist) if world > 1 else None)
        dist.barrier()
    if rank == 0:
        print(json.dumps(result), flush=True)


def allreduce_times(dist, sizes=(2 ** 10, 2 ** 14, 2 ** 16, 178 * 2 ** 10, 2 ** 20, 2 ** 22, 2 ** 24)):
    """Median seconds of one float32 Allreduce per message size in bytes (every rank runs it)."""
    import numpy as np
    out = {}
    for nbytes in sizes:
        a = np.ones(nbytes // 4, np.float32)
        reps = max(5, min(200, 2 ** 24 // nbytes))
        ts = []
        for _ in range(reps):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(a)
            ts.append(time.perf_counter() - t0)
        out[nbytes] = float(np.median(ts))
    return out


def fit_latency_bandwidth(times):
    """Least squares t = alpha + n / beta over the measured (bytes, seconds)."""
    import numpy as np
    n = np.array([float(k) for k in times])
    t = np.array(list(times.values()))
    A = np.stack([np.ones_like(n), n], 1)
    (alpha, inv_beta), *_ = np.linalg.lstsq(A, t, rcond=None)
    return alpha, 1 / inv_beta


def launch(args, world, threads, ddp):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               NUMBA_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
           "--bucket-cap-mb", str(args.bucket_cap_mb)] + (["--ddp"] if ddp else [])
    if ddp:
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
        cmd = [mpiexec, "-n", str(world)] + cmd
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64, help="the global batch")
    p.add_argument("--repeats", type=int, default=3, help="runs of each configuration, interleaved")
    p.add_argument("--bucket-cap-mb", type=float, default=25)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ddp", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    configs = [("1 process, 1 thread", 1, 1, False), ("1 process, 2 threads", 1, 2, False),
               ("DDP 1 rank, 1 thread", 1, 1, True), ("DDP 2 ranks, 1 thread each", 2, 1, True)]
    runs = {c[0]: [] for c in configs}
    for _ in range(args.repeats):                   # interleaved: a noisy neighbour hits every configuration
        for name, world, threads, ddp in configs:
            runs[name].append(launch(args, world, threads, ddp))
    base = statistics.median(r["img_s"] for r in runs[configs[0][0]])
    print(f"LeNet-5 on MNIST, global batch {args.batch_size}, {args.steps} timed steps, median of "
          f"{args.repeats} runs ({os.cpu_count()} CPUs)")
    print(f"{'configuration':<30}{'images/s':>10}{'vs 1 thread':>13}{'step ms':>10}{'CPU ms/step':>13}"
          f"{'comm ms/step':>14}")
    for name, *_ in configs:
        rs = runs[name]
        img_s = statistics.median(r["img_s"] for r in rs)
        print(f"{name:<30}{img_s:>10.0f}{img_s / base:>12.2f}x{statistics.median(r['step_ms'] for r in rs):>10.2f}"
              f"{statistics.median(r['cpu_ms'] for r in rs):>13.2f}{statistics.median(r['comm_ms'] for r in rs):>14.3f}")
    two = runs[configs[3][0]][-1]
    print(f"gradient bytes reduced per step: {sum(two['buckets']):,} in {len(two['buckets'])} bucket(s) "
          f"of {', '.join(f'{b:,}' for b in two['buckets'])} bytes (bucket cap {args.bucket_cap_mb} MB)")
    print("MPI Allreduce, 2 ranks (float32, median):")
    for nbytes, t in two["allreduce"].items():
        print(f"  {int(nbytes):>10,} bytes  {1e6 * t:>9.1f} us  {int(nbytes) / t / 1e9:>6.2f} GB/s")
    alpha, beta = fit_latency_bandwidth(two["allreduce"])
    print(f"fit t = alpha + bytes / beta: alpha = {1e6 * alpha:.1f} us, beta = {beta / 1e9:.2f} GB/s")


if __name__ == "__main__":
    sys.exit(main())
