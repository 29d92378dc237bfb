"""``like(v, ref)``: the number ``v`` in the type of ``ref``, inside CPU and CUDA kernels alike.

Numba types a literal ``0.0`` or ``-math.inf`` as float64, and ``float32 / int64`` as float64 too, so a float32
kernel written with them does its arithmetic in float64: 1/32-1/64 of the float32 rate on consumer GPUs (the PTX
of the LRN forward held 168 float64 instructions).  ``acc = like(0, x[n, c, 0, 0])`` starts an accumulator in the
data's own dtype (float64 data still sums in float64), and ``acc / like(count, acc)`` divides without promotion.
``tests/kernels/test_kernel_ptx_float32.py`` checks every CUDA kernel's PTX for float64 instructions.
"""
from numba.extending import overload


def like(v, ref):
    """Plain Python (the CUDA simulator, NUMBA_DISABLE_JIT): ``type(ref)(v)``."""
    return type(ref)(v)


@overload(like, target="generic")
def _like(v, ref):
    t = ref                                       # the Numba type of ref, e.g. float32; calling it casts

    def impl(v, ref):
        return t(v)
    return impl
