"""Winograd convolution F(4x4, 3x3) for 3x3, stride-1 convolutions (Lavin & Gray 2016, "Fast Algorithms for
Convolutional Neural Networks", section 4.2).

A 3x3 correlation producing a 4 x 4 output tile from a 6 x 6 input tile is, in 1-d, ``y = A^T [(G g) * (B^T d)]``
(``*`` elementwise), nested for 2-d (eq. 8 of the paper):

    Y = A^T [ (G g G^T) * (B^T d B) ] A          g: 3x3 filter, d: 6x6 input tile, Y: 4x4 output tile

Summed over input channels, the elementwise products become, for each of the 36 transform positions xi, one GEMM
over channels (eq. 12):  ``M[xi] (P, OC) = V[xi] (P, C) @ U[xi] (C, OC)`` with ``U = G g G^T`` per filter,
``V = B^T d B`` per tile (P = N * tiles) and the output ``Y = A^T M A`` per tile.  That is 36 multiplies per 16
outputs and channel pair where im2col + GEMM needs 16 * 9 = 144: a quarter.

Both directions of the backward pass are Winograd convolutions too:
- input gradient: a 3x3 stride-1 correlation of gy with the filters flipped and transposed, padding 2 - p;
- weight gradient: the adjoint of U -> Y for fixed d:  ``gU[xi] (C, OC) = V[xi]^T (C, P) @ gM[xi] (P, OC)``
  with ``gM = A gY A^T`` per output tile, then ``gW = G^T gU G``.

Numerics: the transforms have entries up to 5 (B), 8 (A) and 1/24 (G), so F(4x4) loses some float32 accuracy.
On W1-shaped random data (N=64, 64 -> 64 channels, 32x32, float32 standard-normal x, W and gy) the largest
error, relative to the largest value of the float64 reference, measured 7.1e-6 (forward), 7.4e-6 (input
gradient) and 7.0e-6 (weight gradient); tests/kernels/test_kernel_winograd.py holds them under 1e-4.

Layout: channels last, ``V (36, P, C)``, ``M (36, P, OC)``, ``U (36, C, OC)``, with P = (n * TH + th) * TW + tw.
Every GEMM reads contiguous rows, and every transform works on whole rows of channels: tile by tile, each line
of the transform is one loop over the channels, which the CPU runs as vector instructions (AVX2 / AVX-512).
Along a row of pixels the tiles overlap and start every 4th pixel, a stride that does not vectorise; along the
channels there is nothing in the way.  So on the CPU the image is first copied channels-last and zero-padded
(``_channels_last_cpu``, (N, HP, WP, C)), the input transform reads that copy, and the output transform turns
its channels-last rows back into NCHW as it writes them.  The batch goes through V and M a chunk of images at
a time (``CACHE_BYTES``), so V and M are still in the cache when the next step reads them.  Against the earlier
layout (V (36, C, P), one (n, channel) plane per task), measured on the 2-core AMD EPYC (AVX-512) development
machine, float32, 2 threads: W1 (N=64, 64 -> 64 channels, 32x32) forward 28.6 -> 18.4 ms, weight gradient
57.3 -> 23.3 ms; ResNet-20's 16-channel stage (N=128, 32x32) forward 11.0 -> 8.5 ms; its 64-channel stage (8x8)
forward 8.8 -> 2.7 ms.  The CUDA kernels take one (channel, tile) per thread, so a warp's neighbouring threads
write neighbouring channels of V and M.

Threads: by default every kernel and GEMM of every chunk runs on all CPU threads, each splitting its own small
piece of work and handing over between Numba's and OpenBLAS's thread pools.  ``split=True`` (the algorithm
``winograd_split``) turns it round: each thread takes its share of the chunks and runs their transforms and GEMMs
on one thread (``backend.split_across_threads``).  Measured on the 2-core Intel Xeon (Rocket Lake, AVX-512)
machine, float32, 12 interleaved rounds: W1's forward + backward (N=64, 64 -> 64 channels, 32x32) 105.4 -> 77.8
ms (faster in 12 of 12); ResNet-20's step the same (688.9 against 686.4 ms), where its 8x8 64-channel forward is
slower split (5.7 against 7.7 ms: few tiles, small single-threaded GEMMs).  ``"auto"`` chooses per shape.
"""
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, empty, get_array_module, launch_2d, run_in_chunks, scratch
from minicnn.kernels.im2col import pad_into

__all__ = ["BT", "G", "AT", "filter_transform", "input_transform", "output_transform", "grad_output_transform",
           "filter_grad_transform", "conv3x3", "conv3x3_weight_grad", "prepare", "tiles",
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
    """x (N, C, H, W) -> V (36, N*TH*TW, C) = B^T d B of every input tile, float64."""
    (TH, TW), (N, C, H, W) = tiles(out_size), x.shape
    xp_ = np.zeros((N, C, TH * 4 + 2, TW * 4 + 2))
    h, w = min(H, TH * 4 + 2 - padding[0]), min(W, TW * 4 + 2 - padding[1])
    xp_[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x[:, :, :h, :w]
    V = np.einsum("ik,nctukl,jl->ijntuc", BT, _tile_view(xp_, 6, 4, TH, TW), BT)
    return V.reshape(36, N * TH * TW, C)


def output_transform_ref(M, N, out_size):
    """M (36, N*TH*TW, OC) -> y (N, OC, OH, OW) = A^T M A of every tile, float64."""
    TH, TW = tiles(out_size)
    Y = np.einsum("ri,ijntuc,sj->nctrus", AT, M.reshape(6, 6, N, TH, TW, -1), AT).reshape(N, -1, TH * 4, TW * 4)
    return Y[:, :, :out_size[0], :out_size[1]]


def grad_output_transform_ref(gy):
    """gy (N, OC, OH, OW) -> gM (36, N*TH*TW, OC) = A gY A^T of every output tile (zeros past the edge)."""
    N, OC, OH, OW = gy.shape
    TH, TW = tiles((OH, OW))
    gp = np.zeros((N, OC, TH * 4, TW * 4))
    gp[:, :, :OH, :OW] = gy
    gM = np.einsum("ri,nctrus,sj->ijntuc", AT, gp.reshape(N, OC, TH, 4, TW, 4), AT)
    return gM.reshape(36, N * TH * TW, OC)


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


# ---- CPU kernels: channels last, one strip of tiles (4 output rows of one image) per task -----------------------
# Arrays are indexed in full (``t[i, l, c]``), never through views of rows (``t_i = t[i]``): with no views in a
# prange body Numba finds the arrays unaliased and compiles the body with ``noalias``, which lets LLVM vectorise
# the channel loops.  With views, the same input transform took 5.6 ms against 2.7 ms (W1's size, 2 threads).
# Tried and slower: dealing the channels-last columns into 4 phases by column mod 4, so that each line of a
# transform runs over a whole strip's tiles at once (TW * C floats, longer loops for 16 or 32 channels): 1.4-2x
# slower on every ResNet-20 and W1 shape; and two Python threads each running whole chunks (single-threaded
# kernels and BLAS, no wake-ups between them): faster on W1's forward (11 against 14 ms), slower below 64
# channels.
@njit(parallel=True, cache=True)
def _channels_last_cpu(x, top, left, xt):
    """xt[n, r, col, c] = x[n, c, r - top, col - left], zero outside x: a padded channels-last copy (N, HP, WP, C).
    One task per row: zero it, then copy x's pixels into it one pixel (C channels) at a time: contiguous writes,
    and no test in the copy loop.  Against one channel at a time with the bounds tested per element, measured on
    the 2-core Intel Xeon (AVX-512) machine, float32: W1's x (64 x 64 x 32 x 32) 5.9 -> 4.7 ms, ResNet-20's
    16-channel x (128 x 16 x 32 x 32) 2.6 -> 2.0 ms, its 64-channel x (128 x 64 x 8 x 8) 1.06 -> 0.49 ms."""
    N, C, H, W = x.shape
    HP, WP = xt.shape[1], xt.shape[2]
    for nr in prange(N * HP):
        n, r = nr // HP, nr % HP
        iy = r - top
        for col in range(WP):
            for c in range(C):
                xt[n, r, col, c] = 0
        if 0 <= iy < H:
            for ix in range(max(0, -left), min(W, WP - left)):
                for c in range(C):
                    xt[n, r, left + ix, c] = x[n, c, iy, ix]


@njit(parallel=True, cache=True)
def _input_cpu(xt, TH, TW, V):
    """V[6i + j, p] = (B^T d B)[i, j] for the 6x6 tile d of the channels-last xt at (4 th, 4 tw), every channel."""
    C = xt.shape[3]
    for s in prange(xt.shape[0] * TH):                      # strip s = (n, th)
        n, r = s // TH, 4 * (s % TH)                         # the tiles' first row
        t = np.empty((6, 6, C), V.dtype)                     # t = B^T d: t[i, l] is row i, column l
        for tw in range(TW):
            p = s * TW + tw
            for l in range(6):                               # B^T d, one column of the tile at a time
                col = 4 * tw + l
                for c in range(C):
                    t[0, l, c], t[1, l, c], t[2, l, c], t[3, l, c], t[4, l, c], t[5, l, c] = _bt_cpu(
                        xt[n, r, col, c], xt[n, r + 1, col, c], xt[n, r + 2, col, c], xt[n, r + 3, col, c],
                        xt[n, r + 4, col, c], xt[n, r + 5, col, c])
            for i in range(6):                               # then (B^T d) B, one row at a time
                for c in range(C):
                    V[6 * i, p, c], V[6 * i + 1, p, c], V[6 * i + 2, p, c], V[6 * i + 3, p, c], \
                        V[6 * i + 4, p, c], V[6 * i + 5, p, c] = _bt_cpu(
                            t[i, 0, c], t[i, 1, c], t[i, 2, c], t[i, 3, c], t[i, 4, c], t[i, 5, c])


@njit(parallel=True, cache=True)
def _output_cpu(M, bias, TH, TW, y):
    """y[n, o, 4 th + r, 4 tw + s] = (A^T M A)[r, s] of tile (th, tw) + bias[o], NCHW, cropped to y's (OH, OW)."""
    N, OC, OH, OW = y.shape
    for s in prange(N * TH):                                 # strip s = (n, th)
        n, th = s // TH, s % TH
        t = np.empty((4, 6, OC), M.dtype)                    # t = A^T M: t[r, j] is row r, column j
        strip = np.empty((4, 4 * TW, OC), M.dtype)           # the strip's 4 output rows, channels last
        for tw in range(TW):
            p = s * TW + tw
            for j in range(6):                               # A^T M, one column at a time
                for o in range(OC):
                    t[0, j, o], t[1, j, o], t[2, j, o], t[3, j, o] = _at_cpu(
                        M[j, p, o], M[6 + j, p, o], M[12 + j, p, o], M[18 + j, p, o], M[24 + j, p, o],
                        M[30 + j, p, o])
            for r in range(4):                               # then (A^T M) A, one row at a time
                q = 4 * tw
                for o in range(OC):
                    strip[r, q, o], strip[r, q + 1, o], strip[r, q + 2, o], strip[r, q + 3, o] = _at_cpu(
                        t[r, 0, o], t[r, 1, o], t[r, 2, o], t[r, 3, o], t[r, 4, o], t[r, 5, o])
        for r in range(min(4, OH - 4 * th)):                 # the strip back to NCHW, rows past OH or OW cut off
            for o in range(OC):
                for col in range(OW):
                    y[n, o, 4 * th + r, col] = strip[r, col, o] + bias[o]


@njit(parallel=True, cache=True)
def _grad_output_cpu(gyt, top, left, TH, TW, gM):
    """gM[6i + j, p] = (A gY A^T)[i, j] for the 4x4 tile gY of gy at (4 th, 4 tw); gy lies in the channels-last
    gyt at (top, left)."""
    OC = gyt.shape[3]
    for s in prange(gyt.shape[0] * TH):                     # strip s = (n, th)
        n, r = s // TH, top + 4 * (s % TH)
        t = np.empty((6, 4, OC), gM.dtype)                   # t = A gY: t[i, l] is row i, column l
        for tw in range(TW):
            p = s * TW + tw
            for l in range(4):                               # A gY, one column at a time
                col = left + 4 * tw + l
                for o in range(OC):
                    t[0, l, o], t[1, l, o], t[2, l, o], t[3, l, o], t[4, l, o], t[5, l, o] = _a_cpu(
                        gyt[n, r, col, o], gyt[n, r + 1, col, o], gyt[n, r + 2, col, o], gyt[n, r + 3, col, o])
            for i in range(6):                               # then (A gY) A^T, one row at a time
                for o in range(OC):
                    gM[6 * i, p, o], gM[6 * i + 1, p, o], gM[6 * i + 2, p, o], gM[6 * i + 3, p, o], \
                        gM[6 * i + 4, p, o], gM[6 * i + 5, p, o] = _a_cpu(t[i, 0, o], t[i, 1, o], t[i, 2, o],
                                                                          t[i, 3, o])


# ---- CUDA kernels: one (channel, tile) per thread; the first 1-d pass goes to a scratch array T in global memory --
@cuda.jit(cache=True)
def _input_gpu(xpad, TH, TW, T, V):
    P, C = V.shape[1], V.shape[2]
    c, p = cuda.grid(2)                                      # neighbouring threads: neighbouring channels
    if c < C and p < P:
        n, th, tw = p // (TH * TW), p // TW % TH, p % TW
        y0, x0 = 4 * th, 4 * tw
        for l in range(6):                                   # T = B^T d, column l
            t0, t1, t2, t3, t4, t5 = _bt_gpu(xpad[n, c, y0, x0 + l], xpad[n, c, y0 + 1, x0 + l],
                                             xpad[n, c, y0 + 2, x0 + l], xpad[n, c, y0 + 3, x0 + l],
                                             xpad[n, c, y0 + 4, x0 + l], xpad[n, c, y0 + 5, x0 + l])
            T[l, p, c], T[6 + l, p, c], T[12 + l, p, c] = t0, t1, t2
            T[18 + l, p, c], T[24 + l, p, c], T[30 + l, p, c] = t3, t4, t5
        for i in range(6):                                   # V = T B, row i
            v0, v1, v2, v3, v4, v5 = _bt_gpu(T[6 * i, p, c], T[6 * i + 1, p, c], T[6 * i + 2, p, c],
                                             T[6 * i + 3, p, c], T[6 * i + 4, p, c], T[6 * i + 5, p, c])
            V[6 * i, p, c], V[6 * i + 1, p, c], V[6 * i + 2, p, c] = v0, v1, v2
            V[6 * i + 3, p, c], V[6 * i + 4, p, c], V[6 * i + 5, p, c] = v3, v4, v5


@cuda.jit(cache=True)
def _output_gpu(M, bias, TH, TW, T, yp):
    P, OC = M.shape[1], M.shape[2]
    o, p = cuda.grid(2)                                      # one (output channel, tile) per thread
    if o < OC and p < P:
        n, th, tw = p // (TH * TW), p // TW % TH, p % TW
        for j in range(6):                                   # T = A^T M, column j
            t0, t1, t2, t3 = _at_gpu(M[j, p, o], M[6 + j, p, o], M[12 + j, p, o], M[18 + j, p, o],
                                     M[24 + j, p, o], M[30 + j, p, o])
            T[j, p, o], T[6 + j, p, o], T[12 + j, p, o], T[18 + j, p, o] = t0, t1, t2, t3
        for r in range(4):                                   # Y = T A, row r
            y0, y1, y2, y3 = _at_gpu(T[6 * r, p, o], T[6 * r + 1, p, o], T[6 * r + 2, p, o],
                                     T[6 * r + 3, p, o], T[6 * r + 4, p, o], T[6 * r + 5, p, o])
            b = bias[o]
            yp[n, o, 4 * th + r, 4 * tw], yp[n, o, 4 * th + r, 4 * tw + 1] = y0 + b, y1 + b
            yp[n, o, 4 * th + r, 4 * tw + 2], yp[n, o, 4 * th + r, 4 * tw + 3] = y2 + b, y3 + b


@cuda.jit(cache=True)
def _grad_output_gpu(gyp, top, left, TH, TW, T, gM):
    P, OC = gM.shape[1], gM.shape[2]
    o, p = cuda.grid(2)
    if o < OC and p < P:
        n, th, tw = p // (TH * TW), p // TW % TH, p % TW
        y0, x0 = top + 4 * th, left + 4 * tw
        for s in range(4):                                   # T = A gY, column s
            t0, t1, t2, t3, t4, t5 = _a_gpu(gyp[n, o, y0, x0 + s], gyp[n, o, y0 + 1, x0 + s],
                                            gyp[n, o, y0 + 2, x0 + s], gyp[n, o, y0 + 3, x0 + s])
            T[s, p, o], T[4 + s, p, o], T[8 + s, p, o] = t0, t1, t2
            T[12 + s, p, o], T[16 + s, p, o], T[20 + s, p, o] = t3, t4, t5
        for i in range(6):                                   # gM = T A^T, row i
            e0, e1, e2, e3, e4, e5 = _a_gpu(T[4 * i, p, o], T[4 * i + 1, p, o], T[4 * i + 2, p, o],
                                            T[4 * i + 3, p, o])
            gM[6 * i, p, o], gM[6 * i + 1, p, o], gM[6 * i + 2, p, o] = e0, e1, e2
            gM[6 * i + 3, p, o], gM[6 * i + 4, p, o], gM[6 * i + 5, p, o] = e3, e4, e5


# ---- dispatchers ------------------------------------------------------------------------------------------------
CACHE_BYTES = 4 << 20
"""On the CPU the batch is transformed, multiplied and transformed back a chunk of images at a time, so that the
chunk's V and M (36 (C + OC) floats per tile) stay in the cache between the three steps instead of making a
round trip to memory (W1's whole-batch V and M are 38 MB each).  Smaller chunks cost more hand-overs between
Numba's threads and OpenBLAS's (tens of microseconds each here).  Bigger chunks were not a clear win on the
2-core development machine: W1's three passes took 42.1 ms with 4 MB, 36.2 with 8, 36.3 with 12 and 39.6 with
16 in one run (rounds interleaved), but whole steps on a busier machine, switching between 4 and 8 MB round by
round, gave ResNet-20 397 against 414 ms and W1 56.5 against 55.9 ms.  On an AMD EPYC Zen 3 (AVX2) machine,
all three passes, 12 rounds switching between 4 MB, 16 MB and the whole batch, medians: ResNet-20's 16-channel
stage 58.0 / 68.5 / 68.3 ms, 32-channel stage 44.7 / 44.0 / 41.8, 64-channel stage 24.5 / 22.8 / 23.2, W1
136.5 / 152.1 / 151.1.  On the GPU the whole batch is one chunk."""


def _prepared(x, top, left, HP, WP, name):
    """x (N, C, H, W) at (top, left) in a zero-padded buffer of HP x WP pixels, laid out as the transform kernels
    read it: channels last (N, HP, WP, C) on the CPU, NCHW (N, C, HP, WP) on the GPU.  Done once for the whole
    batch: each launch of a parallel CPU kernel costs tens of microseconds here.  The buffer is the reused
    scratch ``name`` (None: a kept buffer, ``_kept``)."""
    cpu = device_of(x) == "cpu"
    shape = (x.shape[0], HP, WP, x.shape[1]) if cpu else x.shape[:2] + (HP, WP)
    xt = scratch(name, shape, x.dtype, x) if name is not None else _kept(shape, x.dtype, x)
    if not cpu:
        return pad_into(x, top, left, xt)
    _channels_last_cpu(np.ascontiguousarray(x), top, left, xt)
    return xt


def prepare(x, padding, out_size, name="winograd_x", keep=False):
    """x as ``conv3x3`` reads it for an output of ``out_size`` with top/left ``padding``: (array, padding), the
    array zero-padded to whole input tiles (``_prepared``, in scratch ``name``).  An input gradient's copy of gy
    can be handed on to the weight gradient (``conv3x3_weight_grad``), which reads the same image.  ``keep``: in
    a buffer of its own (``_kept``) rather than the scratch, for a later pass; hand it back with ``release``."""
    TH, TW = tiles(out_size)
    return _prepared(x, padding[0], padding[1], 4 * TH + 2, 4 * TW + 2, None if keep else name), tuple(padding)


_free = {}
"""Buffers of kept copies handed back (``release``), by (array type, shape, dtype), for the next ``prepare(...,
keep=True)`` of that shape: a convolution's forward keeps its copy of x until its backward, so a training step
holds one per convolution at its peak, and the next step reuses them instead of allocating them again."""


def _kept(shape, dtype, like):
    free = _free.get((type(like), shape, np.dtype(dtype)))
    return free.pop() if free else empty(shape, like, dtype)


def release(prepared):
    """Hand a kept copy (``prepare(..., keep=True)``) back for reuse; the caller must be done with it."""
    a = prepared[0]
    _free.setdefault((type(a), a.shape, a.dtype), []).append(a)


def _prepared_grad(gy, TH, TW):
    """gy for ``_grad_output_into``: (array, (0, 0)), zero-padded to whole tiles, plus two columns the kernels
    never read.  They keep the channels-last rows from being a power of two floats long (32 x 32 pixels of 64
    channels: 8 KB), which made the copy 2.5x slower here (7 ms against 2.8 ms at W1's size: cache-set
    conflicts)."""
    return _prepared(gy, 0, 0, 4 * TH, 4 * TW + 2, "winograd_gy"), (0, 0)


def _covers(prepared, TH, TW):
    """Whether a prepared copy of gy (from ``prepare``) holds all of gy's TH x TW whole tiles past its offset."""
    a, (top, left) = prepared
    HP, WP = (a.shape[1], a.shape[2]) if device_of(a) == "cpu" else (a.shape[2], a.shape[3])
    return HP >= top + 4 * TH and WP >= left + 4 * TW


def _input_into(xs, TH, TW, V):
    """V = B^T d B of the tiles of ``xs`` (from ``_prepared``)."""
    if device_of(xs) == "cpu":
        _input_cpu(xs, TH, TW, V)
    else:
        launch_2d(_input_gpu, V.shape[2], V.shape[1])(xs, TH, TW, scratch("winograd_T", V.shape, V.dtype, V), V)


def _output_into(M, bias, TH, TW, y):
    """y (N, OC, OH, OW) = A^T M A of M's tiles + bias (OC,), cropped to y's size."""
    if device_of(M) == "cpu":
        _output_cpu(M, bias, TH, TW, y)
        return
    yp = y if tuple(y.shape[2:]) == (4 * TH, 4 * TW) else scratch("winograd_Y", y.shape[:2] + (4 * TH, 4 * TW),
                                                                   M.dtype, M)
    T = scratch("winograd_T", (24,) + M.shape[1:], M.dtype, M)
    launch_2d(_output_gpu, M.shape[2], M.shape[1])(M, bias, TH, TW, T, yp)
    if yp is not y:
        y[...] = yp[:, :, :y.shape[2], :y.shape[3]]


def _grad_output_into(gys, top, left, TH, TW, gM):
    """gM = A gY A^T of the 4x4 tiles of gy, which lies at (top, left) in ``gys`` (from ``_prepared``: zeros past
    gy's edge)."""
    if device_of(gys) == "cpu":
        _grad_output_cpu(gys, top, left, TH, TW, gM)
    else:
        T = scratch("winograd_T", gM.shape, gM.dtype, gM)
        launch_2d(_grad_output_gpu, gM.shape[2], gM.shape[1])(gys, top, left, TH, TW, T, gM)


def input_transform(x, padding, out_size):
    """x (N, C, H, W) -> V (36, N*TH*TW, C): B^T d B of every 6x6 input tile (tile (th, tw) starts at input row
    4 th - padding[0], column 4 tw - padding[1]; zeros outside the image)."""
    (TH, TW), (N, C) = tiles(out_size), x.shape[:2]
    V = scratch("winograd_V", (36, N * TH * TW, C), x.dtype, x)
    _input_into(prepare(x, padding, out_size)[0], TH, TW, V)
    return V


def output_transform(M, N, out_size):
    """M (36, N*TH*TW, OC) -> y (N, OC, OH, OW), a new array: A^T M A of every tile."""
    y = empty((N, M.shape[2]) + tuple(out_size), M)
    _output_into(M, get_array_module(M).zeros(M.shape[2], M.dtype), *tiles(out_size), y)
    return y


def grad_output_transform(gy):
    """gy (N, OC, OH, OW) -> gM (36, N*TH*TW, OC): A gY A^T of every 4x4 output tile (zeros past the edge)."""
    N, OC = gy.shape[:2]
    TH, TW = tiles(gy.shape[2:])
    gM = scratch("winograd_gM", (36, N * TH * TW, OC), gy.dtype, gy)
    gys, (top, left) = _prepared_grad(gy, TH, TW)
    _grad_output_into(gys, top, left, TH, TW, gM)
    return gM


def filter_transform(W):
    """W (OC, C, 3, 3) -> U (36, C, OC) = G g G^T per filter (small: done with the array library)."""
    xp = get_array_module(W)
    Gx = xp.asarray(G.astype(W.dtype))
    U = xp.einsum("ik,ockl,jl->ijco", Gx, W, Gx, optimize=True)             # (6, 6, C, OC)
    return xp.ascontiguousarray(U.reshape(36, W.shape[1], W.shape[0]))


def filter_grad_transform(gU):
    """gU (36, C, OC) -> gW (OC, C, 3, 3) = G^T gU G, the adjoint of ``filter_transform``."""
    xp = get_array_module(gU)
    Gx = xp.asarray(G.astype(gU.dtype))
    gW = xp.einsum("ik,ijco,jl->ockl", Gx, gU.reshape(6, 6, *gU.shape[1:]), Gx, optimize=True)
    return xp.ascontiguousarray(gW)


def _each_chunk(x, channels, TH, TW, split, run):
    """``run(chunks)`` for the (n0, n1) chunks of x's images whose V and M (``channels`` = C + OC) fit
    ``CACHE_BYTES``, or each CPU thread's share of them (``split``: ``run_in_chunks``); returns the results in a
    list."""
    return run_in_chunks(x, _image_bytes(x, channels, TH * TW), CACHE_BYTES, split, run)


def _image_bytes(x, channels, tiles_per_image):
    """Bytes of one image's V and M: 36 ``channels`` floats per tile."""
    return 36 * channels * tiles_per_image * x.itemsize


def _input_chunk(xs, n0, n1, TH, TW, C):
    """V (36, (n1 - n0) TH TW, C) = B^T d B of the tiles of images n0:n1, read from x's prepared copy ``xs``, in a
    reused buffer the caller must be done with before the next chunk."""
    V = scratch("winograd_V", (36, (n1 - n0) * TH * TW, C), xs.dtype, xs)
    _input_into(xs[n0:n1], TH, TW, V)
    return V


def conv3x3(x, W, padding, out_size, prepared=None, bias=None, split=False):
    """y (N, OC, OH, OW) = conv2d(x, W) + bias for 3x3 filters, stride 1, top/left ``padding`` (the output size
    fixes the bottom/right one), groups 1.  Per chunk of images: V = B^T d B, then M[xi] = V[xi] @ U[xi], then
    A^T M A + bias.  ``prepared``: ``prepare(x, padding, out_size)``, if the caller has it.  The bias goes in as
    the output transform writes y rather than in a pass of its own (4 ms of W1's 100-ms step here).  ``split``:
    the chunks split between the CPU threads (``_each_chunk``)."""
    (TH, TW), C, OC = tiles(out_size), x.shape[1], W.shape[0]
    xp = get_array_module(x)
    U = filter_transform(W)
    bias = xp.zeros(OC, x.dtype) if bias is None else bias
    y = empty((x.shape[0], OC) + tuple(out_size), x)
    xs = (prepared or prepare(x, padding, out_size))[0]

    def run(chunks):
        for n0, n1 in chunks:
            V = _input_chunk(xs, n0, n1, TH, TW, C)
            M = scratch("winograd_M", (36, V.shape[1], OC), x.dtype, x)
            xp.matmul(V, U, out=M)                           # 36 GEMMs: (tiles, C) @ (C, OC)
            _output_into(M, bias, TH, TW, y[n0:n1])
    _each_chunk(x, C + OC, TH, TW, split, run)
    return y


def conv3x3_weight_grad(x, gy, padding, prepared_gy=None, prepared_x=None, split=False):
    """gW (OC, C, 3, 3) of ``conv3x3`` for the upstream gradient gy: gU[xi] = sum over chunks of images of
    V[xi]^T @ gM[xi], gW = G^T gU G.

    ``prepared_gy``: gy as the input gradient's ``conv3x3`` prepared it (``prepare``; gy at an offset), used
    where it holds gy's whole tiles, rather than copy gy again (4.7 ms of W1's step).  ``prepared_x``: x as the
    forward prepared it (``prepare(x, padding, gy's size)``), if it was kept.  ``split``: the chunks split between
    the CPU threads (``_each_chunk``), each summing its own gU; their sum, in thread order, is gU."""
    C, OC = x.shape[1], gy.shape[1]
    TH, TW = tiles(gy.shape[2:])
    xp = get_array_module(x)
    if prepared_gy is None or not _covers(prepared_gy, TH, TW):
        prepared_gy = _prepared_grad(gy, TH, TW)
    gys, (top, left) = prepared_gy
    xs = (prepared_x or prepare(x, padding, gy.shape[2:]))[0]

    def run(chunks):
        gU = xp.zeros((36, C, OC), x.dtype)
        for n0, n1 in chunks:
            V = _input_chunk(xs, n0, n1, TH, TW, C)
            gM = scratch("winograd_gM", (36, V.shape[1], OC), x.dtype, x)
            _grad_output_into(gys[n0:n1], top, left, TH, TW, gM)
            gU += xp.matmul(V.transpose(0, 2, 1), gM)        # 36 GEMMs: (C, tiles) @ (tiles, OC)
        return gU
    parts = _each_chunk(x, C + OC, TH, TW, split, run)
    return filter_grad_transform(sum(parts[1:], parts[0]))
