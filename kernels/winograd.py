"""Winograd convolution F(4x4, 3x3) for 3x3, stride-1 convolutions (Lavin & Gray 2016, "Fast Algorithms for
Convolutional Neural Networks", section 4.2).

A 3x3 correlation producing a 4 x 4 output tile from a 6 x 6 input tile is, in 1-d, ``y = A^T [(G g) * (B^T d)]``
(``*`` elementwise), nested for 2-d (eq. 8 of the paper):

    Y = A^T [ (G g G^T) * (B^T d B) ] A          g: 3x3 filter, d: 6x6 input tile, Y: 4x4 output tile

Summed over input channels, the elementwise products become, for each of the 36 transform positions xi, one GEMM
over channels (eq. 12):  ``M[xi] (OC, P) = U[xi] (OC, C) @ V[xi] (C, P)`` with ``U = G g G^T`` per filter,
``V = B^T d B`` per tile (P = N * tiles) and the output ``Y = A^T M A`` per tile.  That is 36 multiplies per 16
outputs and channel pair where im2col + GEMM needs 16 * 9 = 144: a quarter.

Both directions of the backward pass are Winograd convolutions too:
- input gradient: a 3x3 stride-1 correlation of gy with the filters flipped and transposed, padding 2 - p;
- weight gradient: the adjoint of U -> Y for fixed d:  ``gU[xi] (OC, C) = gM[xi] (OC, P) @ V[xi]^T (P, C)``
  with ``gM = A gY A^T`` per output tile, then ``gW = G^T gU G``.

Numerics: the transforms have entries up to 5 (B), 8 (A) and 1/24 (G), so F(4x4) loses some float32 accuracy.
On W1-shaped random data (N=64, 64 -> 64 channels, 32x32, float32 standard-normal x, W and gy) the largest
error, relative to the largest value of the float64 reference, measured 7.1e-6 (forward), 7.4e-6 (input
gradient) and 7.0e-6 (weight gradient); tests/kernels/test_kernel_winograd.py holds them under 1e-4.

Layout: ``V (36, C, P)`` and ``M (36, OC, P)`` with P = (n * TH + th) * TW + tw, so every GEMM reads contiguous
rows.  The CPU kernels own one (n, channel) plane per task and transform a strip of tiles at a time: first
along the strip's rows, contiguous in memory, then within each tile.  On the CPU the three steps run a chunk of
images at a time (``CACHE_BYTES``), so V and M are still in the cache when the next step reads them.  The CUDA
kernels take one tile per thread.
"""
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch_2d, scratch
from minicnn.kernels.im2col import pad_into

__all__ = ["BT", "G", "AT", "filter_transform", "input_transform", "output_transform", "grad_output_transform",
           "filter_grad_transform", "conv3x3", "conv3x3_weight_grad", "tiles",
           "input_transform_ref", "output_transform_ref", "grad_output_transform_ref"]

# ---- the transforms, as printed in section 4.2 --------------------------------------------------------------------
BT = np.array([[4, 0, -5, 0, 1, 0],
               [0, -4, -4, 1, 1, 0],
               [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0],
               [0, 4, 0, -5, 0, 1]], np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 0],
               [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], np.float64)
M_OUT, A_IN = 4, 6                                       # output tile m x m, input tile a x a


def tiles(out_size):
    """(TH, TW): 4 x 4 tiles covering an output of ``out_size`` (the last ones may stick out)."""
    return -(-out_size[0] // M_OUT), -(-out_size[1] // M_OUT)


# ---- NumPy references (obviously right, for tests): tiles as strided views, transforms with einsum ---------------
def _tile_view(xp_, a, m, TH, TW):
    """(N, C, TH, TW, a, a) view of a padded image: tile (th, tw) starts at row th * m, column tw * m."""
    N, C, H, W = xp_.shape
    s = xp_.strides
    return np.lib.stride_tricks.as_strided(xp_, (N, C, TH, TW, a, a), (s[0], s[1], m * s[2], m * s[3], s[2], s[3]))


def input_transform_ref(x, padding, out_size):
    """x (N, C, H, W) -> V (36, C, N*TH*TW) = B^T d B of every input tile, float64."""
    (TH, TW), (N, C, H, W) = tiles(out_size), x.shape
    xp_ = np.zeros((N, C, TH * 4 + 2, TW * 4 + 2))
    h, w = min(H, TH * 4 + 2 - padding[0]), min(W, TW * 4 + 2 - padding[1])
    xp_[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x[:, :, :h, :w]
    V = np.einsum("ik,nctukl,jl->ijcntu", BT, _tile_view(xp_, 6, 4, TH, TW), BT)
    return V.reshape(36, C, N * TH * TW)


def output_transform_ref(M, N, out_size):
    """M (36, OC, N*TH*TW) -> y (N, OC, OH, OW) = A^T M A of every tile, float64."""
    TH, TW = tiles(out_size)
    Y = np.einsum("ri,ijcntu,sj->nctrus", AT, M.reshape(6, 6, -1, N, TH, TW), AT).reshape(N, -1, TH * 4, TW * 4)
    return Y[:, :, :out_size[0], :out_size[1]]


def grad_output_transform_ref(gy):
    """gy (N, OC, OH, OW) -> gM (36, OC, N*TH*TW) = A gY A^T of every output tile (zeros past the edge)."""
    N, OC, OH, OW = gy.shape
    TH, TW = tiles((OH, OW))
    gp = np.zeros((N, OC, TH * 4, TW * 4))
    gp[:, :, :OH, :OW] = gy
    gM = np.einsum("ri,nctrus,sj->ijcntu", AT, gp.reshape(N, OC, TH, 4, TW, 4), AT)
    return gM.reshape(36, OC, N * TH * TW)


# ---- the 1-d transforms written out: one row of B^T, A^T or A per output (shared by the CPU and CUDA kernels) ----
# Coefficients are float32 constants: exact (small integers), and they keep float32 data in float32 arithmetic.
_2, _4, _5, _8 = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


def _bt(d0, d1, d2, d3, d4, d5):
    """B^T d for a 6-vector d."""
    return (_4 * d0 - _5 * d2 + d4,
            -_4 * d1 - _4 * d2 + d3 + d4,
            _4 * d1 - _4 * d2 - d3 + d4,
            -_2 * d1 - d2 + _2 * d3 + d4,
            _2 * d1 - d2 - _2 * d3 + d4,
            _4 * d1 - _5 * d3 + d5)


def _at(m0, m1, m2, m3, m4, m5):
    """A^T m for a 6-vector m (4 values)."""
    return (m0 + m1 + m2 + m3 + m4,
            m1 - m2 + _2 * m3 - _2 * m4,
            m1 + m2 + _4 * m3 + _4 * m4,
            m1 - m2 + _8 * m3 - _8 * m4 + m5)


def _a(g0, g1, g2, g3):
    """A g for a 4-vector g (6 values): the adjoint of ``_at``."""
    return (g0,
            g0 + g1 + g2 + g3,
            g0 - g1 + g2 - g3,
            g0 + _2 * g1 + _4 * g2 + _8 * g3,
            g0 - _2 * g1 + _4 * g2 - _8 * g3,
            g3)


_bt_cpu, _at_cpu, _a_cpu = (njit(inline="always", cache=True)(f) for f in (_bt, _at, _a))
_bt_gpu, _at_gpu, _a_gpu = (cuda.jit(device=True)(f) for f in (_bt, _at, _a))


# ---- CPU kernels: one (n, channel) plane per task, a strip of tiles (4 output rows) at a time --------------------
@njit(parallel=True, cache=True)
def _input_cpu(xpad, TH, TW, V):
    """V[6i + j, c, p] = (B^T d B)[i, j] for the 6x6 tile d of xpad at (4 th, 4 tw)."""
    N, C, WP = xpad.shape[0], xpad.shape[1], xpad.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        t = np.empty((6, WP), V.dtype)                       # t = B^T (the strip's 6 rows), column by column
        for th in range(TH):
            r = 4 * th
            x0, x1, x2, x3, x4, x5 = xpad[n, c, r], xpad[n, c, r + 1], xpad[n, c, r + 2], xpad[n, c, r + 3], \
                xpad[n, c, r + 4], xpad[n, c, r + 5]
            for col in range(WP):
                t[0, col], t[1, col], t[2, col], t[3, col], t[4, col], t[5, col] = _bt_cpu(
                    x0[col], x1[col], x2[col], x3[col], x4[col], x5[col])
            p0 = (n * TH + th) * TW
            for i in range(6):                               # then each tile's 6 columns of t times B
                ti = t[i]
                for tw in range(TW):
                    q = 4 * tw
                    v0, v1, v2, v3, v4, v5 = _bt_cpu(ti[q], ti[q + 1], ti[q + 2], ti[q + 3], ti[q + 4], ti[q + 5])
                    V[6 * i, c, p0 + tw], V[6 * i + 1, c, p0 + tw], V[6 * i + 2, c, p0 + tw] = v0, v1, v2
                    V[6 * i + 3, c, p0 + tw], V[6 * i + 4, c, p0 + tw], V[6 * i + 5, c, p0 + tw] = v3, v4, v5


@njit(parallel=True, cache=True)
def _output_cpu(M, TH, TW, yp):
    """yp[n, o, 4 th + r, 4 tw + s] = (A^T M A)[r, s] of tile (th, tw); yp covers whole tiles."""
    N, OC = yp.shape[0], yp.shape[1]
    for no in prange(N * OC):
        n, o = no // OC, no % OC
        t = np.empty((4, 6, TW), M.dtype)                    # t = A^T M per tile: t[r, j, tw]
        for th in range(TH):
            p0 = (n * TH + th) * TW
            for j in range(6):
                m0, m1, m2 = M[j, o, p0:p0 + TW], M[6 + j, o, p0:p0 + TW], M[12 + j, o, p0:p0 + TW]
                m3, m4, m5 = M[18 + j, o, p0:p0 + TW], M[24 + j, o, p0:p0 + TW], M[30 + j, o, p0:p0 + TW]
                s0, s1, s2, s3 = t[0, j], t[1, j], t[2, j], t[3, j]
                for tw in range(TW):
                    s0[tw], s1[tw], s2[tw], s3[tw] = _at_cpu(m0[tw], m1[tw], m2[tw], m3[tw], m4[tw], m5[tw])
            for r in range(4):                               # Y = t A, one output row at a time
                u0, u1, u2, u3, u4, u5 = t[r, 0], t[r, 1], t[r, 2], t[r, 3], t[r, 4], t[r, 5]
                yr = yp[n, o, 4 * th + r]
                for tw in range(TW):
                    yr[4 * tw], yr[4 * tw + 1], yr[4 * tw + 2], yr[4 * tw + 3] = _at_cpu(
                        u0[tw], u1[tw], u2[tw], u3[tw], u4[tw], u5[tw])


@njit(parallel=True, cache=True)
def _grad_output_cpu(gyp, TH, TW, gM):
    """gM[6i + j, o, p] = (A gY A^T)[i, j] for the 4x4 tile gY of gyp at (4 th, 4 tw); gyp covers whole tiles."""
    N, OC, WP = gyp.shape[0], gyp.shape[1], gyp.shape[3]
    for no in prange(N * OC):
        n, o = no // OC, no % OC
        t = np.empty((6, WP), gM.dtype)                      # t = A (the strip's 4 rows), column by column
        for th in range(TH):
            r = 4 * th
            g0, g1, g2, g3 = gyp[n, o, r], gyp[n, o, r + 1], gyp[n, o, r + 2], gyp[n, o, r + 3]
            for col in range(WP):
                t[0, col], t[1, col], t[2, col], t[3, col], t[4, col], t[5, col] = _a_cpu(
                    g0[col], g1[col], g2[col], g3[col])
            p0 = (n * TH + th) * TW
            for i in range(6):                               # then each tile's 4 columns of t times A^T
                ti = t[i]
                for tw in range(TW):
                    q = 4 * tw
                    e0, e1, e2, e3, e4, e5 = _a_cpu(ti[q], ti[q + 1], ti[q + 2], ti[q + 3])
                    gM[6 * i, o, p0 + tw], gM[6 * i + 1, o, p0 + tw], gM[6 * i + 2, o, p0 + tw] = e0, e1, e2
                    gM[6 * i + 3, o, p0 + tw], gM[6 * i + 4, o, p0 + tw], gM[6 * i + 5, o, p0 + tw] = e3, e4, e5


# ---- CUDA kernels: one tile per thread; the first 1-d pass goes to a scratch array T in global memory -------------
@cuda.jit(cache=True)
def _input_gpu(xpad, TH, TW, T, V):
    C, P = V.shape[1], V.shape[2]
    c, p = cuda.grid(2)                                      # one (channel, tile) per thread
    if c < C and p < P:
        n, th, tw = p // (TH * TW), p // TW % TH, p % TW
        y0, x0 = 4 * th, 4 * tw
        for l in range(6):                                   # T = B^T d, column l
            t0, t1, t2, t3, t4, t5 = _bt_gpu(xpad[n, c, y0, x0 + l], xpad[n, c, y0 + 1, x0 + l],
                                             xpad[n, c, y0 + 2, x0 + l], xpad[n, c, y0 + 3, x0 + l],
                                             xpad[n, c, y0 + 4, x0 + l], xpad[n, c, y0 + 5, x0 + l])
            T[l, c, p], T[6 + l, c, p], T[12 + l, c, p] = t0, t1, t2
            T[18 + l, c, p], T[24 + l, c, p], T[30 + l, c, p] = t3, t4, t5
        for i in range(6):                                   # V = T B, row i
            v0, v1, v2, v3, v4, v5 = _bt_gpu(T[6 * i, c, p], T[6 * i + 1, c, p], T[6 * i + 2, c, p],
                                             T[6 * i + 3, c, p], T[6 * i + 4, c, p], T[6 * i + 5, c, p])
            V[6 * i, c, p], V[6 * i + 1, c, p], V[6 * i + 2, c, p] = v0, v1, v2
            V[6 * i + 3, c, p], V[6 * i + 4, c, p], V[6 * i + 5, c, p] = v3, v4, v5


@cuda.jit(cache=True)
def _output_gpu(M, TH, TW, T, yp):
    OC, P = M.shape[1], M.shape[2]
    o, p = cuda.grid(2)                                      # one (output channel, tile) per thread
    if o < OC and p < P:
        n, th, tw = p // (TH * TW), p // TW % TH, p % TW
        for j in range(6):                                   # T = A^T M, column j
            t0, t1, t2, t3 = _at_gpu(M[j, o, p], M[6 + j, o, p], M[12 + j, o, p], M[18 + j, o, p],
                                     M[24 + j, o, p], M[30 + j, o, p])
            T[j, o, p], T[6 + j, o, p], T[12 + j, o, p], T[18 + j, o, p] = t0, t1, t2, t3
        for r in range(4):                                   # Y = T A, row r
            y0, y1, y2, y3 = _at_gpu(T[6 * r, o, p], T[6 * r + 1, o, p], T[6 * r + 2, o, p],
                                     T[6 * r + 3, o, p], T[6 * r + 4, o, p], T[6 * r + 5, o, p])
            yp[n, o, 4 * th + r, 4 * tw], yp[n, o, 4 * th + r, 4 * tw + 1] = y0, y1
            yp[n, o, 4 * th + r, 4 * tw + 2], yp[n, o, 4 * th + r, 4 * tw + 3] = y2, y3


@cuda.jit(cache=True)
def _grad_output_gpu(gyp, TH, TW, T, gM):
    OC, P = gM.shape[1], gM.shape[2]
    o, p = cuda.grid(2)
    if o < OC and p < P:
        n, th, tw = p // (TH * TW), p // TW % TH, p % TW
        y0, x0 = 4 * th, 4 * tw
        for s in range(4):                                   # T = A gY, column s
            t0, t1, t2, t3, t4, t5 = _a_gpu(gyp[n, o, y0, x0 + s], gyp[n, o, y0 + 1, x0 + s],
                                            gyp[n, o, y0 + 2, x0 + s], gyp[n, o, y0 + 3, x0 + s])
            T[s, o, p], T[4 + s, o, p], T[8 + s, o, p] = t0, t1, t2
            T[12 + s, o, p], T[16 + s, o, p], T[20 + s, o, p] = t3, t4, t5
        for i in range(6):                                   # gM = T A^T, row i
            e0, e1, e2, e3, e4, e5 = _a_gpu(T[4 * i, o, p], T[4 * i + 1, o, p], T[4 * i + 2, o, p],
                                            T[4 * i + 3, o, p])
            gM[6 * i, o, p], gM[6 * i + 1, o, p], gM[6 * i + 2, o, p] = e0, e1, e2
            gM[6 * i + 3, o, p], gM[6 * i + 4, o, p], gM[6 * i + 5, o, p] = e3, e4, e5


# ---- dispatchers ------------------------------------------------------------------------------------------------
CACHE_BYTES = 4 << 20
"""On the CPU the batch is transformed, multiplied and transformed back a chunk of images at a time, so that the
chunk's V and M (36 (C + OC) floats per tile) stay in the cache between the three steps instead of making a
round trip to memory (W1's whole-batch V and M are 38 MB each).  On the GPU the whole batch is one chunk."""


def _images_per_chunk(x, channels, tiles_per_image):
    if device_of(x) != "cpu":
        return x.shape[0]
    return max(1, min(x.shape[0], CACHE_BYTES // (36 * channels * tiles_per_image * x.itemsize)))


def _padded(x, top, left, HP, WP, name="winograd_pad"):
    """x (N, C, H, W) placed at (top, left) in a zero (N, C, HP, WP) reused buffer."""
    return pad_into(x, top, left, scratch(name, x.shape[:2] + (HP, WP), x.dtype, x))


def _whole_tiles(a, TH, TW, name):
    """a (N, C, H, W) as whole 4 x 4 tiles (N, C, 4 TH, 4 TW): itself if it is, else zero-padded at the end."""
    if (4 * TH, 4 * TW) == tuple(a.shape[2:]):
        return get_array_module(a).ascontiguousarray(a)
    return _padded(a, 0, 0, 4 * TH, 4 * TW, name)


def _input_into(xpad, TH, TW, V):
    if device_of(xpad) == "cpu":
        _input_cpu(xpad, TH, TW, V)
    else:
        launch_2d(_input_gpu, V.shape[1], V.shape[2])(xpad, TH, TW, scratch("winograd_T", V.shape, V.dtype, V), V)


def _output_into(M, TH, TW, yp):
    if device_of(M) == "cpu":
        _output_cpu(M, TH, TW, yp)
    else:
        T = scratch("winograd_T", (24,) + M.shape[1:], M.dtype, M)
        launch_2d(_output_gpu, M.shape[1], M.shape[2])(M, TH, TW, T, yp)


def _grad_output_into(gyp, TH, TW, gM):
    if device_of(gyp) == "cpu":
        _grad_output_cpu(gyp, TH, TW, gM)
    else:
        T = scratch("winograd_T", gM.shape, gM.dtype, gM)
        launch_2d(_grad_output_gpu, gM.shape[1], gM.shape[2])(gyp, TH, TW, T, gM)


def input_transform(x, padding, out_size):
    """x (N, C, H, W) -> V (36, C, N*TH*TW): B^T d B of every 6x6 input tile (tile (th, tw) starts at input row
    4 th - padding[0], column 4 tw - padding[1]; zeros outside the image)."""
    (TH, TW), (N, C) = tiles(out_size), x.shape[:2]
    xpad = _padded(x, padding[0], padding[1], 4 * TH + 2, 4 * TW + 2)
    V = scratch("winograd_V", (36, C, N * TH * TW), x.dtype, x)
    _input_into(xpad, TH, TW, V)
    return V


def _output_array(like, shape, out_size):
    """The (N, OC, 4 TH, 4 TW) array the output transform writes: the result itself when the tiles cover the
    output exactly, else a reused buffer to crop from."""
    xp = get_array_module(like)
    if tuple(shape[2:]) != tuple(out_size):
        return scratch("winograd_Y", shape, like.dtype, like)
    yp = xp.empty(shape, like.dtype)
    return yp.view(type(like)) if xp is np else yp                 # keeps a simulated-device array's type


def _cropped(yp, out_size):
    return yp if tuple(yp.shape[2:]) == tuple(out_size) else yp[:, :, :out_size[0], :out_size[1]].copy()


def output_transform(M, N, out_size):
    """M (36, OC, N*TH*TW) -> y (N, OC, OH, OW), a new array: A^T M A of every tile."""
    TH, TW = tiles(out_size)
    yp = _output_array(M, (N, M.shape[1], 4 * TH, 4 * TW), out_size)
    _output_into(M, TH, TW, yp)
    return _cropped(yp, out_size)                                  # a copy if yp is the reused buffer


def grad_output_transform(gy):
    """gy (N, OC, OH, OW) -> gM (36, OC, N*TH*TW): A gY A^T of every 4x4 output tile (zeros past the edge)."""
    N, OC = gy.shape[:2]
    TH, TW = tiles(gy.shape[2:])
    gM = scratch("winograd_gM", (36, OC, N * TH * TW), gy.dtype, gy)
    _grad_output_into(_whole_tiles(gy, TH, TW, "winograd_pad"), TH, TW, gM)
    return gM


def filter_transform(W):
    """W (OC, C, 3, 3) -> U (36, OC, C) = G g G^T per filter (small: done with the array library)."""
    xp = get_array_module(W)
    Gx = xp.asarray(G.astype(W.dtype))
    return xp.ascontiguousarray(xp.einsum("ik,ockl,jl->ijoc", Gx, W, Gx).reshape(36, *W.shape[:2]))


def filter_grad_transform(gU):
    """gU (36, OC, C) -> gW (OC, C, 3, 3) = G^T gU G, the adjoint of ``filter_transform``."""
    xp = get_array_module(gU)
    Gx = xp.asarray(G.astype(gU.dtype))
    return xp.ascontiguousarray(xp.einsum("ik,ijoc,jl->ockl", Gx, gU.reshape(6, 6, *gU.shape[1:]), Gx))


def _input_chunks(x, padding, TH, TW, other_channels):
    """(n0, n1, V) for each chunk of images n0:n1 of x (see ``CACHE_BYTES``): V (36, C, (n1 - n0) TH TW) =
    B^T d B of their tiles, in a reused buffer the caller must be done with before the next chunk."""
    N, C = x.shape[:2]
    xpad = _padded(x, padding[0], padding[1], 4 * TH + 2, 4 * TW + 2)
    step = _images_per_chunk(x, C + other_channels, TH * TW)
    for n0 in range(0, N, step):
        n1 = min(N, n0 + step)
        V = scratch("winograd_V", (36, C, (n1 - n0) * TH * TW), x.dtype, x)
        _input_into(xpad[n0:n1], TH, TW, V)
        yield n0, n1, V


def conv3x3(x, W, padding, out_size):
    """y (N, OC, OH, OW) = conv2d(x, W) for 3x3 filters, stride 1, top/left ``padding`` (the output size fixes the
    bottom/right one), groups 1.  Per chunk of images: V = B^T d B, then M[xi] = U[xi] @ V[xi], then A^T M A."""
    (TH, TW), N, OC = tiles(out_size), x.shape[0], W.shape[0]
    xp = get_array_module(x)
    U = filter_transform(W)
    yp = _output_array(x, (N, OC, 4 * TH, 4 * TW), out_size)
    for n0, n1, V in _input_chunks(x, padding, TH, TW, OC):
        M = scratch("winograd_M", (36, OC, V.shape[2]), x.dtype, x)
        xp.matmul(U, V, out=M)                               # 36 GEMMs: (OC, C) @ (C, tiles)
        _output_into(M, TH, TW, yp[n0:n1])
    return _cropped(yp, out_size)


def conv3x3_weight_grad(x, gy, padding):
    """gW (OC, C, 3, 3) of ``conv3x3`` for the upstream gradient gy: gU[xi] = sum over chunks of images of
    gM[xi] @ V[xi]^T, gW = G^T gU G."""
    C, OC = x.shape[1], gy.shape[1]
    TH, TW = tiles(gy.shape[2:])
    xp = get_array_module(x)
    gyp = _whole_tiles(gy, TH, TW, "winograd_pad_gy")
    gU = xp.zeros((36, OC, C), x.dtype)
    for n0, n1, V in _input_chunks(x, padding, TH, TW, OC):
        gM = scratch("winograd_gM", (36, OC, V.shape[2]), x.dtype, x)
        _grad_output_into(gyp[n0:n1], TH, TW, gM)
        gU += xp.matmul(gM, V.transpose(0, 2, 1))            # 36 GEMMs: (OC, tiles) @ (tiles, C)
    return filter_grad_transform(gU)
