"""Data-parallel training over MPI (``mpi4py``), NCCL on GPUs: ``torch.distributed`` in miniature.

    mpiexec -n 2 python train.py          # every process: init_process_group(), DistributedDataParallel(model)

Each process (rank) holds a full copy of the model and trains on its own shard of every batch
(``minicnn.data.DistributedSampler``); ``DistributedDataParallel`` broadcasts rank 0's weights at the start and,
during backward, averages the gradients across ranks in buckets: one ``Allreduce`` per bucket of parameters,
on one contiguous buffer, started as soon as the bucket's last gradient is accumulated.  So every rank applies
the same update and the weights stay equal, as if one process had trained on the whole batch.

The communicator is MPI's (world size and rank from ``MPI.COMM_WORLD``); on ``cuda``, with
``init_process_group("nccl")``, tensors are reduced by NCCL through CuPy (``cupy.cuda.nccl``), otherwise by
MPI (directly where the MPI is CUDA-aware, through host memory where not).  ``mpi4py`` and NCCL are optional
imports: nothing here is loaded until ``init_process_group`` is called.  ``pip install -e ".[dist]"`` brings
mpi4py and MPICH (with ``mpiexec``); on a cluster, build mpi4py against the cluster's own MPI instead.
"""
import contextlib
import os
import sys
import time
import traceback

import numpy as np

from minicnn import backend as _backend
from minicnn.autograd import Function, Tensor, _topological_order, is_grad_enabled
from minicnn.kernels import batchnorm as _batchnorm
from minicnn.nn.module import Module
from minicnn.nn.normalization import _BatchNorm

__all__ = ["ReduceOp", "is_available", "is_nccl_available", "init_process_group", "is_initialized", "destroy_process_group",
           "get_rank", "get_world_size", "get_backend", "barrier", "all_reduce", "broadcast", "all_gather_object",
           "DistributedDataParallel", "SyncBatchNorm", "launched_world_size"]


class ReduceOp:
    SUM, PRODUCT, MIN, MAX, AVG = "sum", "product", "min", "max", "avg"


_world = None                                   # the default process group, set by init_process_group


class _ProcessGroup:
    def __init__(self, MPI, comm, backend_name):
        self.MPI, self.comm, self.backend = MPI, comm, backend_name
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.nccl = None                        # (module, communicator), made on the first cuda collective
        query = getattr(MPI, "Query_cuda_support", None)
        self.cuda_aware = bool(query()) if query is not None else False

    def mpi_op(self, op):
        M = self.MPI
        return {ReduceOp.SUM: M.SUM, ReduceOp.AVG: M.SUM, ReduceOp.PRODUCT: M.PROD, ReduceOp.MIN: M.MIN,
                ReduceOp.MAX: M.MAX}[op]

    def nccl_comm(self):
        """(cupy.cuda.nccl, communicator): rank 0 makes NCCL's unique id, MPI broadcasts it to the others."""
        if self.nccl is None:
            import importlib
            nccl = importlib.import_module("cupy.cuda.nccl")
            uid = self.comm.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
            self.nccl = nccl, nccl.NcclCommunicator(self.size, uid, self.rank)
        return self.nccl


def is_available():
    """True where mpi4py is installed (the ``dist`` extra)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available():
    """True where CuPy with a GPU and its NCCL bindings (``cupy.cuda.nccl``) are importable."""
    if not _backend.HAS_CUPY:
        return False
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", True))


def launched_world_size():
    """The number of processes the launcher started (``mpiexec``, ``srun``), from its environment, without
    starting MPI; 1 for a plain ``python`` run."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def init_process_group(backend="mpi", comm=None, abort_on_exception=True):
    """Join the default process group: every rank of ``comm`` (default ``MPI.COMM_WORLD``).

    ``backend``: ``"mpi"`` reduces every tensor with MPI; ``"nccl"`` reduces ``cuda`` tensors with NCCL (and
    CPU ones with MPI) and makes the GPU of this rank's local index current.  With ``abort_on_exception``, an
    exception that no one catches prints its traceback and calls ``MPI_Abort``, which ends every rank: the
    others would otherwise wait forever in their next collective.
    """
    global _world
    if _world is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process group twice")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: backend must be 'mpi' or 'nccl', got {backend!r}")
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("init_process_group: mpi4py is not installed; pip install -e \".[dist]\" "
                           "(mpi4py and MPICH) or build mpi4py against your MPI") from e
    _world = _ProcessGroup(MPI, comm if comm is not None else MPI.COMM_WORLD, backend)
    if backend == "nccl" and _backend.HAS_CUPY:          # one GPU per rank of this node
        local = _world.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        cp = _backend.cupy
        cp.cuda.Device(local % cp.cuda.runtime.getDeviceCount()).use()
    if abort_on_exception and _world.size > 1:
        hook = sys.excepthook

        def abort(kind, value, tb):
            print(f"rank {_world.rank}: {kind.__name__}: {value}", file=sys.stderr)    # the cause first: a
            hook(kind, value, tb)                                                    # traceback can be cut off
            abort_all(1)
        sys.excepthook = abort
    return _world


def abort_all(code=1):
    """End every rank now (``MPI_Abort``), e.g. after an error on this one; a no-op in one process."""
    if _world is not None and _world.size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_S)
        _world.comm.Abort(code)


ABORT_GRACE_S = 0.5
"""``abort_all`` waits this long between flushing this rank's output and the abort: MPICH's launcher kills every
rank at once, and what its proxies had not yet passed on of the failing rank's stderr was lost (one CI run of
the failing-rank test got the traceback cut off before the line naming the error)."""


def destroy_process_group():
    global _world
    _world = None


def is_initialized():
    return _world is not None


def _group():
    if _world is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    return _world


def get_rank():
    return _group().rank


def get_world_size():
    return _group().size


def get_backend():
    return _group().backend


def barrier():
    _group().comm.Barrier()


# ---- collectives on arrays --------------------------------------------------------------------------------
def _is_gpu(a):
    return _backend.HAS_CUPY and isinstance(a, _backend.cupy.ndarray)


_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
               "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8"}
_NCCL_OPS = {ReduceOp.SUM: "NCCL_SUM", ReduceOp.AVG: "NCCL_SUM", ReduceOp.PRODUCT: "NCCL_PROD",
             ReduceOp.MIN: "NCCL_MIN", ReduceOp.MAX: "NCCL_MAX"}


def _allreduce_array(a, op=ReduceOp.SUM, blocking=True):
    """Reduce the contiguous array ``a`` in place across ranks.  Returns a request to ``wait()`` on (None when
    done), so buckets can be in flight while backward goes on."""
    g = _group()
    if _is_gpu(a) and g.backend == "nccl":        # queued on the current stream, ordered with the compute
        nccl, nc = g.nccl_comm()
        nc.allReduce(a.data.ptr, a.data.ptr, a.size, getattr(nccl, _NCCL_TYPES[a.dtype.name]),
                     getattr(nccl, _NCCL_OPS[op]), _backend.cupy.cuda.get_current_stream().ptr)
        return None
    if _is_gpu(a) and not g.cuda_aware:           # through host memory
        host = _backend.cupy.asnumpy(a)
        pending = _CopyBack(_allreduce_array(host, op, blocking), host, a)
        if not blocking:
            return pending
        pending.wait()
        return None
    if _is_gpu(a):
        _backend.cupy.cuda.get_current_stream().synchronize()   # MPI reads the buffer as soon as it is called
    buf = a if not isinstance(a, _backend.SimArray) else a.view(np.ndarray)
    if blocking:
        g.comm.Allreduce(g.MPI.IN_PLACE, buf, op=g.mpi_op(op))
        return None
    return g.comm.Iallreduce(g.MPI.IN_PLACE, buf, op=g.mpi_op(op))


class _CopyBack:
    """A pending host reduction whose result is then copied into the GPU array."""
    def __init__(self, req, host, gpu):
        self.req, self.host, self.gpu = req, host, gpu

    def wait(self):
        if self.req is not None:
            self.req.wait()
        self.gpu[...] = _backend.cupy.asarray(self.host)


def _wait(req):
    if req is not None:
        req.wait() if isinstance(req, _CopyBack) else req.Wait()


def _broadcast_array(a, src):
    g = _group()
    if _is_gpu(a) and g.backend == "nccl":
        nccl, nc = g.nccl_comm()
        nc.bcast(a.data.ptr, a.size, getattr(nccl, _NCCL_TYPES[a.dtype.name]), src,
                 _backend.cupy.cuda.get_current_stream().ptr)
    elif _is_gpu(a):
        host = _backend.cupy.asnumpy(a)
        g.comm.Bcast(host, root=src)
        a[...] = _backend.cupy.asarray(host)
    else:
        g.comm.Bcast(a.view(np.ndarray), root=src)


def _apply_in_place(t, fn):
    """Run ``fn`` on the contiguous array behind Tensor/array ``t``, copying through a buffer if needed."""
    a = t.data if isinstance(t, Tensor) else t
    xp = _backend.get_array_module(a)
    if a.flags.c_contiguous and a.flags.writeable:
        fn(a)
        return
    buf = xp.ascontiguousarray(a)
    fn(buf)
    a[...] = buf


def all_reduce(tensor, op=ReduceOp.SUM):
    """Reduce ``tensor`` (a Tensor or array) across ranks, in place: every rank ends with the sum (or the
    ``op``: ``ReduceOp.AVG``, ``MIN``, ``MAX``, ``PRODUCT``)."""
    if op not in _NCCL_OPS:
        raise ValueError(f"all_reduce: unknown op {op!r}")
    W = get_world_size()

    def reduce(a):
        _allreduce_array(a, op)
        if op == ReduceOp.AVG:
            a /= W
    _apply_in_place(tensor, reduce)
    return tensor


def broadcast(tensor, src=0):
    """Overwrite ``tensor`` (a Tensor or array) on every rank with rank ``src``'s values, in place."""
    if not 0 <= src < get_world_size():
        raise ValueError(f"broadcast: src {src} is not a rank of a world of size {get_world_size()}")
    _apply_in_place(tensor, lambda a: _broadcast_array(a, src))
    return tensor


def all_gather_object(object_list, obj):
    """``object_list[r]`` = rank r's ``obj`` (any picklable object), on every rank."""
    gathered = _group().comm.allgather(obj)
    if len(object_list) != len(gathered):
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries for a world of "
                         f"size {len(gathered)}")
    object_list[:] = gathered


def _broadcast_coalesced(tensors, src=0):
    """Broadcast many tensors with one collective per dtype and device: packed into one buffer, unpacked."""
    groups = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype.str), []).append(t)
    for ts in groups.values():
        xp = _backend.get_array_module(ts[0].data)
        flat = xp.concatenate([t.data.reshape(-1) for t in ts])
        _broadcast_array(flat, src)
        o = 0
        for t in ts:
            t.data[...] = flat[o:o + t.data.size].reshape(t.shape)
            o += t.data.size


# ---- DistributedDataParallel ------------------------------------------------------------------------------
class _Bucket:
    """Parameters whose gradients are reduced together, in one contiguous buffer (same device and dtype)."""
    def __init__(self, params):
        self.params, self.ready, self.flat, self.req = params, 0, None, None
        self.numel = sum(p.data.size for p in params)
        self.nbytes = self.numel * params[0].data.itemsize


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training (PyTorch's ``DistributedDataParallel``).

    At construction rank 0's parameters and buffers are broadcast to every rank.  Parameters are grouped, in
    reverse registration order (roughly the order backward produces their gradients), into buckets of at most
    ``bucket_cap_mb`` megabytes; when backward has accumulated the last gradient of a bucket, the bucket is
    packed into one contiguous buffer and reduced with one non-blocking ``Iallreduce`` (buckets start strictly
    in order, so every rank issues the same collectives).  The end of backward waits for them and leaves every
    ``.grad`` the average over ranks.  ``broadcast_buffers``: rank 0's buffers (BatchNorm's running statistics)
    overwrite the others' before each forward.  ``find_unused_parameters``: parameters the forward did not use
    count as ready with zero gradient (otherwise their bucket would never be reduced: an error at the next
    forward).  ``no_sync()`` accumulates gradients locally without reducing.  The state-dict keys gain the
    prefix ``module.`` as in PyTorch; checkpoint ``ddp.module.state_dict()`` to load them into a plain model.
    ``comm_seconds`` adds up the time spent packing, reducing and unpacking.  ``device_ids`` and
    ``output_device`` are accepted for PyTorch's signature: each rank's device is where its module lives.
    """

    def __init__(self, module, device_ids=None, output_device=None, broadcast_buffers=True, bucket_cap_mb=25,
                 find_unused_parameters=False):
        super().__init__()
        group = _group()
        self.module = module
        self.broadcast_buffers, self.find_unused_parameters = broadcast_buffers, find_unused_parameters
        self.world_size = group.size
        _broadcast_coalesced(list(module.parameters()) + list(module.buffers()), src=0)   # frozen ones too
        params = [p for p in module.parameters() if p.requires_grad]
        self.buckets, cap = [], float(bucket_cap_mb) * 2 ** 20
        for p in reversed(params):
            last = self.buckets[-1] if self.buckets else None
            if (last is None or last.nbytes + p.data.nbytes > cap or last.params[0].device != p.device
                    or last.params[0].dtype != p.dtype):
                self.buckets.append(_Bucket([p]))
            else:
                last.params.append(p)
                last.numel, last.nbytes = last.numel + p.data.size, last.nbytes + p.data.nbytes
        self._bucket_of = {id(p): b for b in self.buckets for p in b.params}
        self._next, self._sync, self.comm_seconds = 0, True, 0.0
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]

    @property
    def bucket_sizes(self):
        """Bytes of each bucket, in the order they are reduced."""
        return [b.nbytes for b in self.buckets]

    @contextlib.contextmanager
    def no_sync(self):
        self._sync = False
        try:
            yield
        finally:
            self._sync = True

    def forward(self, *args, **kwargs):
        if self.module.training and is_grad_enabled() and (self._next or any(b.ready for b in self.buckets)):
            unready = [i for i, b in enumerate(self.buckets) if b.ready < len(b.params)]
            raise RuntimeError("DistributedDataParallel: expected to have finished reduction in the prior "
                               f"iteration before starting a new one; buckets {unready} never received all their "
                               "gradients. Pass find_unused_parameters=True if the forward does not use every "
                               "parameter, and make sure every rank calls backward().")
        if self.broadcast_buffers and self.world_size > 1:
            buffers = list(self.module.buffers())
            if buffers:
                t0 = time.perf_counter()
                _broadcast_coalesced(buffers, src=0)
                self.comm_seconds += time.perf_counter() - t0
        out = self.module(*args, **kwargs)
        if self.find_unused_parameters and self._sync and self.module.training:
            used = set()
            for o in (out if isinstance(out, (tuple, list)) else [out]):
                if isinstance(o, Tensor) and o.requires_grad:
                    used.update(id(t) for t in _topological_order(o))
            for b in self.buckets:
                for p in b.params:
                    if id(p) not in used:
                        self._grad_ready(p)
        return out

    def _grad_ready(self, p):
        if not self._sync:
            return
        bucket = self._bucket_of[id(p)]
        bucket.ready += 1
        while self._next < len(self.buckets) and \
                self.buckets[self._next].ready == len(self.buckets[self._next].params):
            self._launch(self.buckets[self._next])
            self._next += 1
        if self._next == len(self.buckets):
            self._finish()

    def _launch(self, bucket):
        t0 = time.perf_counter()
        xp = _backend.get_array_module(bucket.params[0].data)
        flat = xp.empty(bucket.numel, bucket.params[0].dtype)     # fresh: last step's grads may be views of it
        if isinstance(bucket.params[0].data, _backend.SimArray):
            flat = flat.view(_backend.SimArray)
        o = 0
        for p in bucket.params:
            n = p.data.size
            if p.grad is None:
                flat[o:o + n] = 0
            else:
                flat[o:o + n] = p.grad.data.reshape(-1)
            o += n
        bucket.flat = flat
        bucket.req = _allreduce_array(flat, ReduceOp.SUM, blocking=False)
        self.comm_seconds += time.perf_counter() - t0

    def _finish(self):
        t0 = time.perf_counter()
        for bucket in self.buckets:
            _wait(bucket.req)
            flat, o = bucket.flat, 0
            flat /= self.world_size
            for p in bucket.params:
                n = p.data.size
                p.grad = Tensor._make(flat[o:o + n].reshape(p.shape), p.device)
                o += n
            bucket.ready, bucket.flat, bucket.req = 0, None, None
        self._next = 0
        self.comm_seconds += time.perf_counter() - t0


# ---- SyncBatchNorm ----------------------------------------------------------------------------------------
class SyncBatchNormFn(Function):
    """Batch norm with the statistics of the whole, concatenated batch (``mean``, ``var`` over ``count`` values per
    channel, combined across ranks by the Module); its backward sums the two per-channel reductions over every
    rank's part of the batch: the gradient through those statistics.  x (N, C, *); weight, bias (C,)."""
    def __init__(self, eps, count, mean, var):
        self.eps, self.count, self.mean, self.var = eps, count, mean, var

    def forward(self, x, weight, bias):
        y, _, _, self.inv_std = _batchnorm.batch_norm_forward(x, self.mean, self.var, weight, bias, self.eps, False)
        self.x, self.weight = x, weight
        return y

    def backward(self, gy):
        xp = _backend.get_array_module(gy)
        shape, axes = (1, gy.shape[1]) + (1,) * (gy.ndim - 2), (0,) + tuple(range(2, gy.ndim))
        xhat = (self.x - self.mean.reshape(shape)) * self.inv_std.reshape(shape)
        gbias, gweight = gy.sum(axis=axes), (gy * xhat).sum(axis=axes)
        sums = xp.concatenate([gbias, gweight]).astype(np.float64)
        _allreduce_array(sums)
        C, scale = gbias.shape[0], (self.weight * self.inv_std).reshape(shape)
        sum_gy, sum_gyx = (sums[:C] / self.count).astype(gy.dtype), (sums[C:] / self.count).astype(gy.dtype)
        gx = scale * (gy - sum_gy.reshape(shape) - xhat * sum_gyx.reshape(shape))
        return gx, gweight, gbias                    # weight and bias: this rank's share (DDP averages them)


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose training statistics are those of the whole batch across every rank (PyTorch's
    ``SyncBatchNorm``): each rank's count, mean and sum of squared deviations are all-gathered and combined
    (Chan et al.'s pairwise formula, in float64), so the result equals ``BatchNorm`` on the concatenated batch.
    In eval mode, or in one process, it is plain BatchNorm.  Input (N, C, *).  ``process_group`` is accepted for
    PyTorch's signature; the statistics are always those of the default group (every rank)."""
    expected_dims = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, input):
        if not (self.training and is_initialized() and get_world_size() > 1):
            return super().forward(input)
        if input.ndim not in self.expected_dims or input.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected input (N, {self.num_features}, *), got shape {input.shape}")
        x = input.data
        xp, C = _backend.get_array_module(x), x.shape[1]
        axes = (0,) + tuple(range(2, x.ndim))
        n = x.size // C
        mean = x.mean(axis=axes)
        m2 = ((x - mean.reshape((1, C) + (1,) * (x.ndim - 2))) ** 2).sum(axis=axes)
        mine = _backend.to_cpu(xp.concatenate([xp.asarray([n], np.float64), mean.astype(np.float64),
                                              m2.astype(np.float64)]))
        parts = np.empty((get_world_size(), mine.size))          # (W, 1 + 2C): count, mean, M2 per rank
        _group().comm.Allgather(mine, parts)
        counts, means, m2s = parts[:, :1], parts[:, 1:1 + C], parts[:, 1 + C:]
        N = counts.sum()
        if N <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel when training, got {int(N)}")
        g_mean = (counts * means).sum(0) / N
        g_var = (m2s + counts * (means - g_mean) ** 2).sum(0) / N                  # biased, as BatchNorm's
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
            for buf, value in ((self.running_mean, g_mean), (self.running_var, g_var * N / (N - 1))):
                buf.data[...] = (1 - factor) * buf.data + factor * xp.asarray(value.astype(buf.dtype))
        weight = self.weight if self.weight is not None else xp.ones(C, x.dtype)
        bias = self.bias if self.bias is not None else xp.zeros(C, x.dtype)
        return SyncBatchNormFn(self.eps, float(N), xp.asarray(g_mean.astype(x.dtype)),
                               xp.asarray(g_var.astype(x.dtype)))(input, weight, bias)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm layer replaced by a SyncBatchNorm sharing its parameters and
        buffers (a bare BatchNorm is returned converted); children keep their names and order."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            for store in ("_parameters", "_buffers"):
                getattr(out, store).update(getattr(module, store))
            out.training = module.training
            return out
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return module


def mean_over_ranks(*values):
    """Each number in ``values`` (numbers, or dicts of numbers) averaged over the ranks, in one Allreduce;
    the same structure comes back.  The training loop turns each rank's epoch statistics into the whole's."""
    flat = [v for x in values for v in (x.values() if isinstance(x, dict) else [x])]
    buf = np.asarray(flat, np.float64)
    all_reduce(buf, ReduceOp.AVG)
    it = iter(buf.tolist())
    return tuple({k: next(it) for k in x} if isinstance(x, dict) else next(it) for x in values)
