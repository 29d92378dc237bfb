"""Process-wide choices of how ops run, like ``torch.backends``: ``mc.backends.conv_algorithm``, and the switches
PyTorch scripts set or query (``torch.backends.cudnn.benchmark = True``, ``torch.backends.mps.is_available()``).

    import minicnn as mc
    mc.backends.conv_algorithm = "auto"       # default: time the candidates on a shape's first call, keep the winner
    mc.backends.conv_algorithm = "winograd"   # force one (where it cannot run a shape, "im2col" runs instead)

Convolution algorithms (``minicnn/functional/conv.py`` runs them; each has its kernel file and NumPy reference):

    im2col        im2col + one GEMM per image (kernels/im2col.py, per-image layout); any geometry, groups
    im2col_split  the same, the batch's chunks split between the CPU threads, each on one thread
    im2col_gemm   im2col + one GEMM over the whole batch (kernels/im2col.py, batch layout); any geometry, groups
    gemm_1x1      1x1 filters, no padding: the image itself is the column matrix, no im2col at all
    winograd      Winograd F(4x4, 3x3) for 3x3 stride-1 filters (kernels/winograd.py)
    winograd_split  the same, the batch's chunks split between the CPU threads, each on one thread (many channels)
    direct        direct loops for few channels, where GEMMs are too skinny for BLAS (kernels/direct_conv.py)

``"auto"`` mirrors ``torch.backends.cudnn.benchmark``: the first call of each (pass, device, dtype, shapes,
geometry) runs every applicable candidate once to warm up (JIT compilation, buffers), then times them in three
interleaved rounds, and caches the one with the best time for the process; the machine decides, not a rule of
thumb.  ``conv_choices`` holds what was chosen (and ``conv_timings`` the candidates' times), so a profile can
show it.
"""
import types

__all__ = ["conv_algorithm", "conv_choices", "conv_timings", "reset", "CONV_ALGORITHMS", "cudnn", "mps"]

CONV_ALGORITHMS = ("im2col", "im2col_split", "im2col_gemm", "gemm_1x1", "winograd", "winograd_split", "direct")

conv_algorithm = "auto"
conv_choices = {}           # (pass, device, dtype, x shape, W shape, geometry) -> algorithm name
conv_timings = {}           # the same key -> {algorithm: seconds} measured by "auto"


def reset():
    """Forget every autotuned choice (the next call of each shape measures again)."""
    conv_choices.clear()
    conv_timings.clear()


# minicnn has no cuDNN and no Apple GPU backend: the cuDNN flags are accepted and change nothing (minicnn always
# autotunes its own convolutions unless conv_algorithm names one), and MPS is never available.
cudnn = types.SimpleNamespace(benchmark=False, deterministic=False, enabled=True, allow_tf32=True,
                              is_available=lambda: False)
mps = types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
