"""Tensor, the Function base (forward and backward of one op side by side), the backward graph walk, no_grad.

A Tensor wraps one array (NumPy on ``cpu``, CuPy on ``cuda``) and, when it was computed from tensors that require
a gradient, the Function that made it.  ``backward()`` sorts that graph topologically with an explicit stack (no
recursion: a ResNet-152 step is hundreds of ops deep), walks it from the output back to the leaves, accumulates
gradients into the leaves' ``.grad`` and frees the graph as it goes.
"""
import contextlib

import numpy as np

from minicnn import backend
from minicnn.kernels import grad_sum

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


class no_grad(contextlib.ContextDecorator):
    """``with mc.no_grad():`` (or ``@mc.no_grad()``): ops inside record no graph, so nothing is kept for backward."""
    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev


class enable_grad(no_grad):
    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, True


class set_grad_enabled(no_grad):
    """``with mc.set_grad_enabled(training):`` records a graph only if ``mode``; called plainly, sets it."""
    def __init__(self, mode):
        global _grad_enabled
        self.mode, self.prev, _grad_enabled = bool(mode), _grad_enabled, bool(mode)

    def __enter__(self):
        global _grad_enabled
        _grad_enabled = self.mode


class Function:
    """One differentiable op.  Subclasses define ``forward(*arrays) -> array`` and ``backward(gy) -> grads``.

    ``backward`` returns one gradient array per input (a tuple, or the bare array for a one-input op), ``None``
    for inputs that take no gradient (labels, RoI boxes).  Keep on ``self`` only what backward needs.
    Call an instance on tensors: ``y = MaxPool2dFn(k, s)(x)``.
    """
    inputs = ()

    def __call__(self, *inputs):
        device = next(t.device for t in inputs if isinstance(t, Tensor))
        tensors = [t if isinstance(t, Tensor) else constant(t, device) for t in inputs]
        for t in tensors[1:]:
            if t.device != device:
                raise RuntimeError(f"{type(self).__name__}: expected all tensors on one device, "
                                   f"got {device} and {t.device}")
        y = self.forward(*[t.data for t in tensors])
        out = Tensor._make(y, device)
        if _grad_enabled and any(t.requires_grad for t in tensors):
            self.inputs = tensors
            for t in tensors:
                t._consumed = True                   # an in-place op on t now would misroute gradients
            out.requires_grad, out._ctx = True, self
        return out

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError


def _as_array(data, dtype, device):
    """A fresh array of ``data`` on ``device``: floats -> float32 unless ``dtype`` is given, integers stay."""
    if isinstance(data, Tensor):
        data = data.data
    arr = data if hasattr(data, "dtype") and not isinstance(data, np.generic) else np.asarray(data)
    if dtype is None:
        if arr.dtype.kind == "f":
            dtype = np.float32
        elif arr.dtype.kind in "iub":
            dtype = arr.dtype
        else:
            raise TypeError(f"tensor: unsupported dtype {arr.dtype} (numbers only)")
    return backend.to_device(arr, device).astype(dtype, copy=True)


def _base(a):
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


class Tensor:
    """An n-dimensional array with an optional gradient.  Create with ``mc.tensor(data, requires_grad=...)``."""
    __array_priority__ = 1000                        # ndarray + Tensor -> Tensor.__radd__, not elementwise objects

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        device = backend.check_device(device) if device is not None else (
            data.device if isinstance(data, Tensor) else backend.device_of(data))
        self.data = _as_array(data, dtype, device)
        self.device = device
        self.grad = None
        self._ctx = None                             # the Function that made this tensor (None for leaves)
        self._leaf = True
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @classmethod
    def _make(cls, data, device):
        """Wrap an op's result without copying (re-tagging it for the simulated device if needed)."""
        t = cls.__new__(cls)
        if not hasattr(data, "shape") or isinstance(data, np.generic):
            data = backend.array_module_for(device).asarray(data)
        if device == "cuda" and not backend.HAS_CUPY and not isinstance(data, backend.SimArray):
            data = data.view(backend.SimArray)
        t.data, t.device, t.grad, t._ctx, t._leaf, t.requires_grad = data, device, None, None, False, False
        return t

    # ---- attributes -------------------------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size_ = property(lambda self: int(self.data.size))
    is_leaf = property(lambda self: self._ctx is None and self._leaf)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return self.shape[0]

    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad needs a floating-point tensor, got dtype {self.data.dtype}")
        if flag and self._ctx is None:
            self._leaf = True                        # e.g. a loader's batch made a leaf (saliency maps)
        self.requires_grad = bool(flag)
        return self

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` each time ``backward()`` has accumulated this leaf's gradient into ``.grad`` (once
        per backward: the walk hands each leaf its summed gradient); returns a handle whose ``remove()`` undoes
        it.  PyTorch's hook of that name; ``DistributedDataParallel`` starts reducing gradients from it."""
        if not self.is_leaf:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        hooks = self.__dict__.setdefault("_grad_hooks", {})
        key = object()
        hooks[key] = hook
        return _HookHandle(hooks, key)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` at the next ``backward()`` (leaves always do)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        self._retains_grad = True

    def numpy(self):
        """The values as a NumPy array (a copy off the GPU; shares memory on the CPU, like torch)."""
        return backend.to_cpu(self.data)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same values with no graph and no gradient (shares memory)."""
        return Tensor._make(self.data, self.device)

    def to(self, device=None, dtype=None):
        """A copy on ``device`` and/or of ``dtype``; moves are differentiable, so a graph may cross devices."""
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = _ops().cast(out, np.dtype(dtype))
        if device is not None and backend.check_device(device) != self.device:
            out = _ops().ToDeviceFn(backend.check_device(device))(out)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def long(self):
        return Tensor(self.data.astype(np.int64), device=self.device)

    def zero_(self):
        self.data[...] = 0
        return self

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", precision=4, threshold=20, prefix="tensor(")
        extra = "" if self.device == "cpu" else f", device='{self.device}'"
        extra += f", dtype={self.dtype}" if self.dtype not in (np.float32, np.int64, np.bool_) else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({body}{extra})"

    def __bool__(self):
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __hash__(self):
        return id(self)

    # ---- the backward walk ------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False, create_graph=False, _capture=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``; ``gradient`` is needed for non-scalars.

        The graph is freed on the way unless ``retain_graph`` (then backward can run through it again).  First
        order only: ``create_graph=True`` is refused.  ``_capture`` (for ``grad()``): a dict whose keys are ids
        of the tensors whose gradients to return in it, with leaves' ``.grad`` left alone."""
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (higher-order gradients) is not supported; "
                                      "minicnn's Functions compute first-order gradients only")
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input of it has requires_grad=True)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: gradient can be implied only for a one-element output, "
                                   f"got shape {self.shape}; pass gradient= of that shape")
            g = backend.get_array_module(self.data).ones_like(self.data)
        else:
            g = gradient.data if isinstance(gradient, Tensor) else gradient
            if tuple(g.shape) != self.shape:
                raise ValueError(f"backward: gradient shape {tuple(g.shape)} does not match output shape {self.shape}")
            if type(g) is not type(self.data) or g.dtype != self.dtype:
                g = _as_array(g, self.dtype, self.device)
        grads, given = {id(self): g}, set()           # given: buffers already handed to a leaf's .grad
        summed = set()                               # tensors whose gradient is a sum this walk made
        if gradient is not None:                     # the caller's own array, used as is: never a .grad itself
            given.add(id(_base(g)))
        for t in _topological_order(self):           # outputs before the tensors they were computed from
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if _capture is not None and id(t) in _capture:
                _capture[id(t)] = g
            if t._ctx is None:
                if not t._leaf:
                    raise RuntimeError("backward: the graph was freed by an earlier backward(); "
                                       "recompute the forward pass, or pass retain_graph=True to the first")
                if _capture is not None:
                    continue
                t._accumulate(g, given)
                for hook in list(t.__dict__.get("_grad_hooks", {}).values()):
                    hook(t)
                continue
            fn = t._ctx
            if not retain_graph:
                t._ctx = None                        # free the graph as we go: saved arrays die with fn
            if t.__dict__.get("_retains_grad") and _capture is None:
                t._accumulate(g, given)              # retain_grad(): a non-leaf keeps its gradient too
            gins = fn.backward(g)
            if not isinstance(gins, tuple):
                gins = (gins,)
            if len(gins) != len(fn.inputs):
                raise RuntimeError(f"{type(fn).__name__}.backward returned {len(gins)} gradients "
                                   f"for {len(fn.inputs)} inputs")
            for inp, gi in zip(fn.inputs, gins):
                if gi is None or not inp.requires_grad:
                    continue
                if tuple(gi.shape) != inp.shape:
                    raise RuntimeError(f"{type(fn).__name__}.backward: gradient shape {tuple(gi.shape)} "
                                       f"does not match input shape {inp.shape}")
                prev = grads.get(id(inp))
                if prev is None:
                    grads[id(inp)] = gi
                elif id(inp) in summed and grad_sum.runs_kernel(prev, gi):
                    grad_sum.add(prev, gi, out=prev)     # our own array: nobody else holds it
                else:
                    grads[id(inp)] = grad_sum.add(prev, gi)
                    summed.add(id(inp))
            if not retain_graph:
                fn.inputs = ()

    def _accumulate(self, g, given):
        """Add ``g`` into ``.grad``.  A first gradient is stored without a copy unless its buffer already backs
        another leaf's gradient (add's backward hands the same array to both inputs, reshape a view of it)."""
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        if self.grad is not None:
            self.grad = Tensor._make(self.grad.data + g, self.device)
            return
        root = _base(g)
        if id(root) in given:
            g = g.copy()
        else:
            given.add(id(root))
        self.grad = Tensor._make(g, self.device)


class _HookHandle:
    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


def _topological_order(root):
    """Every tensor that ``root`` depends on and that requires grad, each after all tensors computed from it."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)                          # post-order: all of t's inputs are already in `order`
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t._ctx is not None:
            stack.extend((inp, False) for inp in t._ctx.inputs if inp.requires_grad and id(inp) not in visited)
    return reversed(order)


def constant(x, device, like=None):
    """Wrap an array or number (no gradient) for use in an op; Python numbers take ``like``'s dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, bool)) and like is not None:
        x = np.asarray(x, dtype=like.dtype if like.dtype.kind == "f" or isinstance(x, (int, bool)) else np.float32)
    return Tensor._make(backend.to_device(np.asarray(x) if not hasattr(x, "dtype") else x, device), device)


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new leaf tensor: floats become float32 unless ``dtype`` is given; integers (labels) stay integers."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def _ops():
    from minicnn import ops                         # the op library builds on this module
    return ops


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs`` (a tuple, one per input), as
    ``torch.autograd.grad``; nothing is accumulated into any ``.grad``.  ``grad_outputs`` weight the outputs
    (needed for non-scalar ones); ``inputs`` may be leaves or intermediate tensors.  An input the outputs do not
    depend on is an error unless ``allow_unused`` (then None, or zeros with ``materialize_grads``).  The graph
    is freed unless ``retain_graph``.  First order only (``create_graph=True`` is refused)."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    total = None                                     # one walk for all outputs: d/dx sum_i <outputs_i, g_i>
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad (it does not depend on any input "
                               f"that requires grad)")
        if g is None and out.data.size != 1:
            raise RuntimeError(f"grad: output {i} has shape {out.shape}; pass grad_outputs for non-scalar outputs")
        if g is not None and tuple(g.shape) != out.shape:
            raise ValueError(f"grad: grad_outputs[{i}] has shape {tuple(g.shape)}, output {i} has {out.shape}")
        term = out.sum() if g is None else (out * constant(_as_array(g, out.dtype, out.device), out.device)).sum()
        total = term if total is None else total + term
    capture = {id(t): None for t in inputs}
    total.backward(retain_graph=bool(create_graph if retain_graph is None else retain_graph),
                   create_graph=create_graph, _capture=capture)
    result = []
    for i, t in enumerate(inputs):
        g = capture[id(t)]
        if g is None:
            if not (allow_unused or materialize_grads):
                raise RuntimeError(f"grad: input {i} was not used to compute the outputs; pass allow_unused=True "
                                   f"to get None for it")
            result.append(Tensor._make(backend.get_array_module(t.data).zeros_like(t.data), t.device)
                          if materialize_grads else None)
        else:
            result.append(Tensor._make(g.astype(t.dtype, copy=True), t.device))
    return tuple(result)
