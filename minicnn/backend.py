"""Devices: ``cpu`` (NumPy arrays, Numba CPU kernels) and ``cuda`` (CuPy arrays, Numba CUDA kernels).

The only module that imports CuPy.  Without CuPy but with ``NUMBA_ENABLE_CUDASIM=1`` set before Numba is
imported, ``cuda`` is a *simulated* device: its arrays are NumPy arrays of the marker subclass ``SimArray``,
and every kernel dispatcher sends them through the CUDA kernels, which Numba's simulator runs on the CPU.  So
the whole CUDA path except CuPy's own calls is exercised on a machine with no GPU.
"""
import math
import os
import sys
import threading

# Numba's OpenMP threads otherwise spin while waiting for work; on a small or shared machine the spinning
# threads starve everything else and a parallel kernel that needs microseconds takes ~15 ms (measured on
# 2 cores). Passive waiting must be chosen before the first parallel kernel runs; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
# But a thread that sleeps at once must be woken for the next kernel: ~75 us per parallel kernel on the 2-core
# Intel Xeon machine (2 us with the threads awake), and a LeNet-5 step launches dozens.  GNU OpenMP (the libgomp
# Numba's omp layer links) spins GOMP_SPINCOUNT times before it sleeps, even when passive: 10,000 spins are
# ~0.1-0.3 ms here, the gap between one op's kernel and the next.  Four interleaved rounds, fresh processes, none /
# 5,000 / 10,000 spins: LeNet-5 step (W2) 6.08 / 4.69 / 4.55 ms, ResNet-20 step (W3) 306 / 293 / 285 ms, W1 the
# same; 100,000 spins made W3 slower (345-384 ms: the spinning threads hold the cores OpenBLAS's threads want).
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numpy as np  # noqa: E402

try:                                            # the GPU extra; everything works on the CPU without it
    import cupy
except ImportError:                             # pragma: no cover - depends on the machine
    cupy = None

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"
THREADS_PER_BLOCK = 128


class SimArray(np.ndarray):
    """A NumPy array that lives on the simulated ``cuda`` device (only a marker; it behaves like ndarray)."""


def _cupy_works():
    if cupy is None or SIMULATED:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:                           # CuPy installed but no driver / no GPU
        return False


HAS_CUPY = _cupy_works()
_kernel_arg = None                              # set by use_cupy for a stand-in (see there)


def _apply_openblas_thread_timeout():
    """Give OpenBLAS's threads the ``OPENBLAS_THREAD_TIMEOUT`` that ``minicnn/__init__.py`` sets, when OpenBLAS was
    loaded (by an ``import numpy`` before ``import minicnn``) without it: re-read OpenBLAS's environment and stop
    its threads, which it starts again at its next threaded call.  Measured on the 2-core development machine
    with NumPy imported first: a ResNet-20 step (batch 128) 420-488 -> 288-330 ms."""
    wanted = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")
    if not wanted.isdigit():
        return
    try:
        import ctypes
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            if info.get("internal_api") != "openblas":
                continue
            lib = ctypes.CDLL(info["filepath"])
            if lib.openblas_thread_timeout() != int(wanted):
                lib.openblas_read_env()
                lib.blas_thread_shutdown_()
    except (OSError, AttributeError):             # another BLAS, or an OpenBLAS build without these entry points
        pass


_apply_openblas_thread_timeout()


def _keep_freed_memory():
    """Keep freed memory in the process for the next step's arrays (glibc only; a user's MALLOC_* setting wins).

    By default glibc serves big blocks with fresh mmap pages and hands memory freed at the top of the heap back
    to the system, so every step faults the pages of its new arrays in again: 9,100 page faults per LeNet-5
    training step (batch 64) here, a fifth of the step (3.6 -> 2.8 ms with this).  Blocks up to 32 MB (glibc's
    largest mmap threshold) now come from the heap, and the heap is trimmed only past 1 GB of free memory."""
    if sys.platform != "linux" or any(k.startswith("MALLOC_") for k in os.environ):
        return
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3                  # from glibc's malloc.h
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):             # not glibc (musl, ...): nothing to tune
        pass


_keep_freed_memory()


def use_cupy(module, kernel_arg=None):
    """Make ``module`` the ``cuda`` device's array library in place of CuPy; returns a function that undoes it.

    For tests: ``tests/strict_cupy.py`` is a NumPy-backed stand-in that refuses implicit conversion to NumPy and
    NumPy operands exactly as CuPy does, so the device-agnostic code runs as on a GPU without one.  ``kernel_arg``
    maps each CUDA kernel argument to what the kernel is launched with (the simulator needs NumPy arrays)."""
    global cupy, HAS_CUPY, _kernel_arg
    before = cupy, HAS_CUPY, _kernel_arg
    cupy, HAS_CUPY, _kernel_arg = module, True, kernel_arg

    def restore():
        global cupy, HAS_CUPY, _kernel_arg
        cupy, HAS_CUPY, _kernel_arg = before
    return restore


def cuda_available():
    """True where ``device="cuda"`` works: a real GPU with CuPy, or Numba's CUDA simulator."""
    return HAS_CUPY or SIMULATED


def check_device(device):
    """Normalise a device name (``"cpu"``, ``"cuda"``, ``"cuda:0"``) and fail clearly where it is missing."""
    device = str(device)
    if device.startswith("cuda"):
        if not cuda_available():
            raise RuntimeError("device 'cuda' is not available: install the GPU extra (pip install -e '.[cuda]') "
                               "on a machine with an NVIDIA GPU, or set NUMBA_ENABLE_CUDASIM=1 to simulate it")
        return "cuda"
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    return "cpu"


def device_of(x):
    """``"cuda"`` for CuPy arrays and simulated-device arrays, else ``"cpu"``."""
    if isinstance(x, SimArray) or (cupy is not None and isinstance(x, cupy.ndarray)):
        return "cuda"
    return "cpu"


def get_array_module(x):
    """The array library of ``x``: ``cupy`` for CuPy arrays, ``numpy`` otherwise (also on the simulated device)."""
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return np


def array_module_for(device):
    return cupy if device == "cuda" and HAS_CUPY else np


def to_device(x, device):
    """Move (or just re-tag) array ``x`` to ``device``; no copy where it is already there."""
    device = check_device(device)
    if device == "cpu":
        return to_cpu(x)
    if HAS_CUPY:
        return cupy.asarray(x)
    return np.asarray(x).view(SimArray)


def to_cpu(x):
    """A plain NumPy array with the values of ``x`` (a copy off the GPU, a view otherwise)."""
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy.asnumpy(x)
    return np.asarray(x).view(np.ndarray)


def launch(kernel, n, threads=THREADS_PER_BLOCK):
    """``kernel[blocks, threads]`` with enough blocks for ``n`` threads (one thread per element).

    Each launch costs host time in numba-cuda (0.30 reads every CuPy argument's ``__cuda_array_interface__``
    twice: to type the call and to pass it), growing with the number of array arguments; not measured yet (no
    GPU so far; benchmarks/gpu.py times ops with and without it).  Arrays go in as CuPy arrays: never through
    ``cuda.as_cuda_array(x)``, whose default ``sync=True`` waits for the GPU at every call."""
    if SIMULATED:                               # the simulator runs every thread of a block, needed or not
        threads = max(1, min(threads, int(n)))
    blocks = max(1, (int(n) + threads - 1) // threads)
    return _with_args(kernel[blocks, threads])


def launch_blocks(kernel, blocks, threads=THREADS_PER_BLOCK):
    """``kernel[blocks, threads]`` for a fixed grid, e.g. one block per output of a block reduction (``threads``
    a power of two).  The simulator gets 4 threads per block: each simulated thread is a Python thread."""
    if SIMULATED:
        threads = min(threads, 4)
    return _with_args(kernel[max(1, int(blocks)), threads])


def launch_planes(kernel, planes, plane_size, threads=THREADS_PER_BLOCK):
    """A 2-d grid for per-plane kernels: x runs along the ``plane_size`` elements of a plane, y over the
    ``planes`` (at most 65535 blocks: the kernel loops over planes with stride ``gridDim.y``).  A thread finds its
    plane and pixel without the 64-bit divisions that unravelling one flat ``cuda.grid(1)`` index costs."""
    if SIMULATED:
        threads = max(1, min(threads, int(plane_size)))
    blocks = max(1, (int(plane_size) + threads - 1) // threads)
    return _with_args(kernel[(blocks, max(1, min(int(planes), 65535))), threads])


def _with_args(configured):
    if _kernel_arg is None:
        return configured
    return lambda *args: configured(*[_kernel_arg(a) for a in args])


def launch_2d(kernel, rows, cols, threads=(16, 16)):
    """``kernel[blocks, threads]`` on a 2-d grid covering ``rows x cols`` threads (``cuda.grid(2)`` = (row, col))."""
    ty, tx = (max(1, min(threads[0], int(rows))), max(1, min(threads[1], int(cols)))) if SIMULATED else threads
    configured = kernel[(-(-int(rows) // ty), -(-int(cols) // tx)), (ty, tx)]
    if _kernel_arg is None:
        return configured
    return lambda *args: configured(*[_kernel_arg(a) for a in args])


_pool = threading.local()


def scratch(name, shape, dtype, like):
    """An uninitialised ``shape`` array on ``like``'s device and of its array type, reused from call to call.

    Kernels' intermediate buffers are big (im2col columns at N=64, 64 channels, 32x32, 3x3: 151 MB), and a fresh
    NumPy array that size costs 12-19 ms of page faults on every call here, about as long as writing it.  On the
    CPU (and the simulated device) one buffer per thread, ``name`` and dtype grows to the largest request and
    stays; the caller must be done with it before the next request with the same name.  A simulated-device
    ``like`` gets the buffer as a ``SimArray``, so kernel dispatchers keep sending it to the CUDA kernels.  CuPy
    keeps its own memory pool, so on the GPU this is just ``cupy.empty``."""
    if get_array_module(like) is not np:
        return get_array_module(like).empty(shape, dtype)
    pool = _pool.__dict__.setdefault("buffers", {})
    n, key = math.prod(shape), (name, np.dtype(dtype))          # math.prod: 0.1 us, np.prod: 10 us here
    if key not in pool or pool[key].size < n:
        pool[key] = np.empty(n, dtype)
    out = pool[key][:n].reshape(shape)
    return out.view(SimArray) if isinstance(like, SimArray) else out


def empty(shape, like, dtype=None):
    """A new uninitialised ``shape`` array of ``dtype`` (default: ``like``'s), on ``like``'s device and of its
    array type (a simulated-device array stays one), for results handed back to the caller (``scratch`` is for
    intermediates)."""
    xp = get_array_module(like)
    a = xp.empty(shape, like.dtype if dtype is None else dtype)
    return a.view(type(like)) if xp is np else a


def images_per_chunk(like, bytes_per_image, budget):
    """How many of ``like``'s images (axis 0) a kernel that works a chunk at a time takes at once on the CPU:
    as many as fit ``budget`` bytes of its intermediates, at least one; on the GPU the whole batch."""
    N = like.shape[0]
    return N if device_of(like) != "cpu" else max(1, min(N, budget // bytes_per_image))


def chunk_ranges(like, bytes_per_image, budget, multiple=1):
    """(n0, n1) ranges of ``like``'s images in chunks of at most ``images_per_chunk``, as equal in size as they can
    be (they differ by one image at most), their number a ``multiple`` of the given one where there are enough
    images.  Equal chunks balance the threads that share them out (``run_in_chunks``): ResNet-20's 16-channel
    Winograd chunks of 7 images left 18 full ones and one of 2, 70 images for one thread and 58 for the other."""
    N, step = like.shape[0], images_per_chunk(like, bytes_per_image, budget)
    k = -(-N // step)                                   # the fewest chunks that fit
    k = min(N, -(-k // multiple) * multiple)
    bounds = [N * i // k for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k)]


def run_in_chunks(like, bytes_per_image, budget, split, run):
    """``run(chunks)`` for the ``chunk_ranges`` of ``like``'s images; returns its results in a list.  ``split`` (on
    the CPU, with more than one thread): each CPU thread runs its share of the chunks alone, in chunks of its share
    of ``budget`` (``split_across_threads``), as many chunks for each: one result per thread."""
    import numba
    threads = numba.get_num_threads() if split and device_of(like) == "cpu" else 1
    chunks = chunk_ranges(like, bytes_per_image, budget // threads, threads)
    return split_across_threads(chunks, run) if threads > 1 else [run(chunks)]


_lanes = {}                                     # thread pools of split_across_threads, by (process, threads)
_blas_controller = None


def _numba_thread_safe():
    """Whether Numba's parallel kernels may run on several Python threads at once, as ``split_across_threads``
    runs them: yes with its TBB or OpenMP threading layer, no with the workqueue layer it falls back to where
    neither is installed (that one aborts the process); then the chunks run on the calling thread.  Before any
    parallel kernel has run the layer is not chosen yet: no, to be safe (the chunks' own kernels choose it)."""
    import numba
    try:
        return numba.threading_layer() != "workqueue"
    except ValueError:
        return False


def split_across_threads(chunks, run):
    """``run(share)`` on each CPU thread (``numba.get_num_threads()`` of them), ``share`` its turn of ``chunks``
    (chunks i, i + T, i + 2T, ... for thread i of T), with Numba's kernels and BLAS on one thread each while they
    run; returns the results, one per thread, in thread order.  The other way round from a parallel kernel: the
    threads split the work between them once, instead of every kernel and GEMM splitting its own small piece and
    handing over between Numba's and OpenBLAS's thread pools in between.  The shares are fixed by position, so a
    sum of the results is the same from run to run.  With one thread (or one chunk): ``[run(chunks)]``."""
    import numba
    from concurrent.futures import ThreadPoolExecutor, wait
    global _blas_controller
    T = min(numba.get_num_threads(), len(chunks))
    if T < 2 or not _numba_thread_safe():
        return [run(chunks)]
    key = os.getpid(), T                          # a forked child has none of its parent's threads
    if key not in _lanes:                         # numba.set_num_threads is per thread: 1 in each worker
        _lanes[key] = ThreadPoolExecutor(T, thread_name_prefix="minicnn-lane", initializer=numba.set_num_threads,
                                         initargs=(1,))
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController
        _blas_controller = ThreadpoolController()   # found once: the context below then costs microseconds
    with _blas_controller.limit(limits=1, user_api="blas"):
        futures = [_lanes[key].submit(run, chunks[i::T]) for i in range(T)]
        wait(futures)                             # all done (or failed) before BLAS gets its threads back
    return [f.result() for f in futures]


def set_num_threads(n):
    """Run Numba's CPU kernels and NumPy's BLAS on ``n`` threads (like ``torch.set_num_threads``); returns a
    function that restores the previous setting."""
    import numba
    from threadpoolctl import threadpool_limits
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    blas = threadpool_limits(limits=int(n), user_api="blas")

    def restore():
        numba.set_num_threads(before)
        blas.restore_original_limits()
    return restore


def synchronize():
    """Wait for queued GPU work (a no-op on the CPU); benchmarks call it before reading the clock."""
    if HAS_CUPY:
        cupy.cuda.runtime.deviceSynchronize()
