"""``python -m minicnn profile MODEL``: where the time of one training step goes, layer by layer.

    python -m minicnn profile resnet20 [--batch-size 128] [--input-size 3 32 32] [--device cpu] [--threads 2]

It runs warm-up steps first (JIT compilation, buffers, and the convolution autotuner's first-call timings), then
``--steps`` profiled steps of forward, cross-entropy loss, backward and an SGD update.  Each leaf module's forward
is timed, and so is the backward of every Function its forward created; a block's own ops (the ReLUs and the
residual addition of a ResNet block, say) get a row of the block's name, its children's time taken out; the rest
of the step (loss, optimizer, the graph walk) is one "other" row.  For each convolution it prints GFLOP/s forward and backward next to the
GFLOP/s of this machine's own float32 GEMM (NumPy's BLAS, or cuBLAS on cuda) measured in the same run, and the
algorithm ``mc.backends`` chose for each pass (forward / input gradient / weight gradient).  Figures are medians
over the profiled steps.
"""
import argparse
import time
import weakref
from collections import defaultdict

import numpy as np

__all__ = ["profile", "main"]


def _conv_flops(module, x_shape, y_shape):
    """Multiply-adds x 2 of one pass of a convolution (each of forward, input gradient, weight gradient)."""
    KH, KW = module.weight.shape[2:]
    return 2 * int(np.prod(y_shape)) * (module.in_channels // module.groups) * KH * KW


def gemm_gflops(device="cpu", n=1024, repeat=5):
    """This machine's float32 GEMM speed: best of ``repeat`` n x n x n products (BLAS or cuBLAS)."""
    from minicnn import backend
    xp = backend.array_module_for(device)
    a, b = (xp.asarray(np.random.default_rng(i).random((n, n), np.float32)) for i in range(2))
    xp.matmul(a, b)
    best = np.inf
    for _ in range(repeat):
        backend.synchronize()
        t0 = time.perf_counter()
        xp.matmul(a, b)
        backend.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def profile(model, input_size, batch_size, device="cpu", steps=3, warmup=2, num_classes=None):
    """Profile ``steps`` training steps of ``model`` on random data; returns (rows, step_ms, gemm GFLOP/s) with
    rows ``dict(name, type, fwd_ms, bwd_ms, gflops_fwd, gflops_bwd, algorithms)`` in execution order."""
    import minicnn as mc
    import minicnn.functional as F
    from minicnn import backend, nn
    from minicnn.autograd import Function
    rng = np.random.default_rng(0)
    model.to(device).train()
    x = mc.tensor(rng.standard_normal((batch_size, *input_size)), device=device)
    opt = mc.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    leaves = [(name or "(model)", m) for name, m in model.named_modules()]       # every module, in order
    fwd, bwd, meta, current = defaultdict(list), defaultdict(float), {}, []       # current: [name, child seconds]

    def timed_forward(name, module, forward):
        def run(*args, **kwargs):
            current.append([name, 0.0])
            backend.synchronize()
            t0 = time.perf_counter()
            try:
                out = forward(*args, **kwargs)
            finally:
                backend.synchronize()
                elapsed = time.perf_counter() - t0
                _, children = current.pop()
                if current:
                    current[-1][1] += elapsed
            fwd[name].append(elapsed - children)                               # the module's own ops
            if isinstance(module, nn.Conv2d) and args:
                meta[name] = (args[0].shape, out.shape)
            return out
        return run

    call = Function.__call__
    made = defaultdict(list)

    def record(fn, *inputs):                            # tag each Function with the leaf module that made it
        out = call(fn, *inputs)
        if current:
            made[current[-1][0]].append(fn)
            inner, me = type(fn).backward, weakref.ref(fn)   # not fn.backward: fn would hold itself alive

            def timed_backward(gy, _name=current[-1][0], _inner=inner, _me=me):
                backend.synchronize()
                t0 = time.perf_counter()
                g = _inner(_me(), gy)
                backend.synchronize()
                bwd[_name] += time.perf_counter() - t0
                return g
            fn.backward = timed_backward
        return out

    def step():
        opt.zero_grad()
        logits = model(x)
        logits = logits[0] if isinstance(logits, tuple) else logits
        y = mc.tensor(rng.integers(0, logits.shape[1], batch_size), device=device)
        F.cross_entropy(logits, y).backward()
        opt.step()
        backend.synchronize()

    for _ in range(warmup):
        step()
    originals = {name: m.forward for name, m in leaves}
    steps_ms, per_step = [], []
    try:
        for name, m in leaves:
            m.forward = timed_forward(name, m, originals[name])
        Function.__call__ = record
        for _ in range(steps):
            fwd.clear(), bwd.clear(), made.clear()
            t0 = time.perf_counter()
            step()
            steps_ms.append(1e3 * (time.perf_counter() - t0))
            per_step.append(({k: sum(v) for k, v in fwd.items()}, dict(bwd),
                             {k: [getattr(fn, "algorithms", {}) for fn in v] for k, v in made.items()}))
    finally:
        Function.__call__ = call
        for name, m in leaves:
            m.__dict__.pop("forward", None)
    rows = []
    for name, m in leaves:
        if name not in per_step[0][0] or (list(m.children()) and name not in per_step[0][1]):
            continue                                    # never called, or a container without ops of its own
        f = float(np.median([s[0].get(name, 0.0) for s in per_step])) * 1e3
        b = float(np.median([s[1].get(name, 0.0) for s in per_step])) * 1e3
        algos = next((a for a in per_step[-1][2].get(name, []) if a), {})
        gf = gb = None
        if name in meta and isinstance(m, nn.Conv2d):
            flops = _conv_flops(m, *meta[name])
            gf = flops / (f / 1e3) / 1e9 if f else None
            passes = sum(p in algos for p in ("input_grad", "weight_grad"))
            gb = passes * flops / (b / 1e3) / 1e9 if b and passes else None
        kind = type(m).__name__ + (", own ops" if list(m.children()) else "")
        rows.append(dict(name=name, type=kind, fwd_ms=f, bwd_ms=b, gflops_fwd=gf, gflops_bwd=gb, algorithms=algos))
    return rows, float(np.median(steps_ms)), gemm_gflops(device)


def _format(rows, step_ms, gemm, header):
    width = max([len(r["name"]) + len(r["type"]) + 3 for r in rows] + [24])
    lines = [header, f"{'layer (type)':<{width}} {'fwd ms':>8} {'bwd ms':>8} {'share':>6} {'GFLOP/s f/b':>13}  "
                     f"algorithm (forward / input grad / weight grad)"]
    for r in rows:
        share = (r["fwd_ms"] + r["bwd_ms"]) / step_ms
        g = "" if r["gflops_fwd"] is None else f"{r['gflops_fwd']:.0f}/" + \
            ("-" if r["gflops_bwd"] is None else f"{r['gflops_bwd']:.0f}")
        a = r["algorithms"]
        algo = " / ".join(a.get(p, "-") for p in ("forward", "input_grad", "weight_grad")) if a else ""
        lines.append(f"{r['name'] + ' (' + r['type'] + ')':<{width}} {r['fwd_ms']:8.2f} {r['bwd_ms']:8.2f} "
                     f"{share:6.1%} {g:>13}  {algo}")
    other = step_ms - sum(r["fwd_ms"] + r["bwd_ms"] for r in rows)
    lines.append(f"{'(other: loss, optimizer, graph walk)':<{width}} {other:8.2f} {'':>8} {other / step_ms:6.1%}")
    conv = [r for r in rows if r["gflops_fwd"] is not None]
    conv_ms = sum(r["fwd_ms"] + r["bwd_ms"] for r in conv)
    lines.append(f"step {step_ms:.1f} ms; convolutions {conv_ms:.1f} ms ({conv_ms / step_ms:.0%}); this machine's "
                 f"float32 GEMM (1024^3) {gemm:.0f} GFLOP/s")
    return "\n".join(lines)


def main(argv=None):
    from minicnn import backend
    from minicnn.models import get_model
    from minicnn.summary import NATIVE_INPUT
    p = argparse.ArgumentParser(prog="python -m minicnn profile", description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--batch-size", type=int, default=None, help="default 128 (64 for lenet5)")
    p.add_argument("--input-size", type=int, nargs=3, metavar=("C", "H", "W"))
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, help="CPU threads (default: leave them be)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--num-classes", type=int, default=10)
    args = p.parse_args(argv)
    if args.threads:
        backend.set_num_threads(args.threads)
    name = args.model.lower()
    input_size = tuple(args.input_size) if args.input_size else NATIVE_INPUT.get(name, (3, 224, 224))
    batch = args.batch_size or (64 if name == "lenet5" else 128)
    model = get_model(name, num_classes=args.num_classes)
    rows, step_ms, gemm = profile(model, input_size, batch, args.device, steps=args.steps)
    print(_format(rows, step_ms, gemm, f"{name}: one training step, batch {batch}, input {input_size}, "
                                       f"{args.device}; median of {args.steps} steps"))
    return 0
