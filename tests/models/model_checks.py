"""Checks shared by the model-family tests: gradients of sampled weights against finite differences, no graph
under no_grad, overfitting one batch, torchvision's BatchNorm keys."""
import contextlib

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import optim


@contextlib.contextmanager
def one_conv_algorithm(name="im2col"):
    """Run with one convolution algorithm, not the one autotuning finds fastest today: the same rounding in every
    run, so finite differences and few-step trainings of deep nets do not change from run to run (every
    algorithm is tested on its own in tests/functional/test_conv_algorithms.py)."""
    from minicnn import backends
    before, backends.conv_algorithm = backends.conv_algorithm, name
    try:
        yield
    finally:
        backends.conv_algorithm = before


def bn_keys(prefix):
    """The five state-dict entries of a torchvision BatchNorm."""
    return [f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def _outputs(out):
    return list(out) if isinstance(out, tuple) else [out]


MAX_KINKS = 5
"""Entries whose central difference misses the analytic gradient while the one-sided differences disagree by as
much (a kink of the piecewise-linear net within +-eps) are drawn again, at most this many times per parameter."""


def check_weight_grads(model, x, names=None, per_param=2, eps=1e-7, atol=1e-6, rtol=1e-4, seed=0):
    """Backward of ``sum(out * gy)`` (a fixed random gy per output) against central differences, for
    ``per_param`` random entries of each parameter in ``names`` (default: the first, middle and last parameter
    tensors).  The model is run in float64 and in its current mode; dropout masks are re-seeded before every
    forward, so each evaluation sees the same masks.  eps is small (float64 leaves ~1e-9 of rounding error) so
    that a step rarely carries one of the many ReLU inputs across 0.  Returns the number of entries compared."""
    with one_conv_algorithm():
        return _check_weight_grads(model, x, names, per_param, eps, atol, rtol, seed)


def _check_weight_grads(model, x, names, per_param, eps, atol, rtol, seed):
    model.double()
    x = mc.tensor(x, dtype=np.float64)
    params = dict(model.named_parameters())
    if names is None:
        keys = list(params)
        names = [keys[0], keys[len(keys) // 2], keys[-1]]
    rng = np.random.default_rng(seed)

    def forward():
        mc.manual_seed(seed)
        return _outputs(model(x))

    gys = [rng.standard_normal(o.shape) for o in forward()]

    def objective():
        with mc.no_grad():
            return sum(float(np.sum(o.numpy() * g)) for o, g in zip(forward(), gys))

    model.zero_grad()
    loss = None
    for o, g in zip(forward(), gys):
        term = (o * mc.tensor(g, dtype=np.float64)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    compared, biggest, f0 = 0, 0.0, objective()
    for name in names:
        p = params[name]
        analytic = p.grad.numpy()
        wanted, checked = min(per_param, p.numel()), 0
        for flat in rng.permutation(p.numel())[:wanted + MAX_KINKS]:
            if checked == wanted:
                break
            idx = np.unravel_index(flat, p.shape)
            old = p.data[idx]
            p.data[idx] = old + eps
            plus = objective()
            p.data[idx] = old - eps
            minus = objective()
            p.data[idx] = old
            numeric = (plus - minus) / (2 * eps)
            tol = atol + rtol * abs(numeric)
            if abs(analytic[idx] - numeric) > tol and abs((plus - f0) - (f0 - minus)) / eps > tol:
                continue                   # a kink (a ReLU or max-pool switch) within +-eps: draw another entry
            assert abs(analytic[idx] - numeric) <= tol, (
                f"{name}{tuple(int(i) for i in idx)}: analytic {analytic[idx]:.10g}, numeric {numeric:.10g}")
            biggest = max(biggest, abs(numeric))
            checked += 1
        assert checked == wanted, f"{name}: {MAX_KINKS} entries drawn in a row sat on kinks"
        compared += checked
    assert biggest > 1e-6, "every sampled gradient is zero: the check would pass for any backward"
    return compared


def assert_no_graph(model, x):
    """Under no_grad a forward records nothing: the output has no creator and needs no gradient, although the
    parameters require gradients (so outside no_grad the same forward would record the graph)."""
    assert any(p.requires_grad for p in model.parameters())
    with mc.no_grad():
        outs = _outputs(model(mc.tensor(x)))
    for o in outs:
        assert o._ctx is None and not o.requires_grad


def overfit_one_batch(model, x, y, steps=40, lr=1e-2):
    """Adam on one fixed batch; returns (first loss, last loss, accuracy of the last step on the batch)."""
    with one_conv_algorithm():
        return _overfit_one_batch(model, x, y, steps, lr)


def _overfit_one_batch(model, x, y, steps, lr):
    opt = optim.Adam(model.parameters(), lr=lr)
    x, y = mc.tensor(x), mc.tensor(y)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    acc = float((logits.numpy().argmax(1) == y.numpy()).mean())      # of the last step, in training mode
    return losses[0], losses[-1], acc


def calibrate_bn(model, x):
    """Set every BatchNorm's running statistics to those of one training-mode pass over ``x`` (momentum 1 for
    that pass), then switch to eval mode.  Deep nets straight from their init blow activations up to ~1e7 with
    running statistics 0 / 1, too big for finite differences; with calibrated statistics they stay O(1), and the
    check then runs in eval mode, where each sample's output does not depend on the others.  The pass runs on one
    convolution algorithm: with autotuning's (timing-dependent) choice, Inception's check failed in one run of
    three under the parallel test runner (its first convolution's gradients reach 1e8)."""
    from minicnn import nn
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 1.0
    model.train()
    with mc.no_grad(), one_conv_algorithm():       # autotuning's choice would change the statistics' rounding
        model(mc.tensor(x))
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    return model.eval()
