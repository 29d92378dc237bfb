"""``Module`` and ``Parameter``: layers own parameters and buffers, children register in insertion order, and
attribute names become state-dict keys (``layer1.0.conv1.weight``), as in PyTorch."""
from collections import OrderedDict, namedtuple

import numpy as np

from minicnn import backend
from minicnn.autograd import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable parameter (requires_grad=True by default)."""
    def __init__(self, data, requires_grad=True):
        data = data.data if isinstance(data, Tensor) else data
        super().__init__(data, dtype=getattr(data, "dtype", None) if getattr(data, "dtype", np.float64).kind == "f"
                         else None, device=backend.device_of(data), requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class _Handle:
    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


class Module:
    """Base class of every layer and model: subclasses set attributes in ``__init__`` and define ``forward``."""
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration -----------------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if isinstance(value, (Parameter, Module)):
            self._discard(name)
            (self._parameters if isinstance(value, Parameter) else self._modules)[name] = value
        elif name in self._buffers:
            self._buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor(value)
        elif value is None and name in self._parameters:
            self._parameters[name] = None
        else:
            self._discard(name)
            object.__setattr__(self, name, value)

    def _discard(self, name):
        for store in (self._parameters, self._buffers, self._modules, self.__dict__):
            store.pop(name, None)

    def __getattr__(self, name):
        for d in ("_parameters", "_buffers", "_modules"):
            store = self.__dict__.get(d)
            if store is not None and name in store:
                return store[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor, persistent=True):
        """A non-learnable state array (BatchNorm's running statistics) that moves and saves with the module."""
        if tensor is not None and not isinstance(tensor, Tensor):
            arr = np.asarray(tensor)
            tensor = Tensor(arr, dtype=arr.dtype)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def register_parameter(self, name, param):
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def add_module(self, name, module):
        self._modules[name] = module

    register_module = add_module

    def register_forward_hook(self, hook):
        """``hook(module, inputs, output)`` runs after every forward; returns a handle with ``.remove()``."""
        key = object()
        self._forward_hooks[key] = hook
        return _Handle(self._forward_hooks, key)

    def register_forward_pre_hook(self, hook):
        """``hook(module, inputs)`` runs before every forward; a returned value (a tuple, or one input) replaces
        the inputs.  Returns a handle with ``.remove()``."""
        key = object()
        hooks = self.__dict__.setdefault("_forward_pre_hooks", OrderedDict())
        hooks[key] = hook
        return _Handle(hooks, key)

    # ---- calling ----------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        for hook in list(self.__dict__.get("_forward_pre_hooks", {}).values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            out = out if result is None else result
        return out

    # ---- traversal --------------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix=""):
        memo = set() if memo is None else memo
        stack = [(prefix, self)]                  # iterative: deep nets need no recursion
        while stack:
            name, m = stack.pop()
            if id(m) in memo:
                continue
            memo.add(id(m))
            yield name, m
            stack.extend(reversed([(f"{name}.{n}" if name else n, c)
                                   for n, c in m._modules.items() if c is not None]))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named(self, attr, prefix, recurse):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for n, t in getattr(m, attr).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mname}.{n}" if mname else n), t

    def named_parameters(self, prefix="", recurse=True):
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn):
        """``fn(m)`` for every submodule, children before their parent, in registration order (as PyTorch)."""
        order, stack = [], [(self, False)]              # iterative post-order
        while stack:
            m, expanded = stack.pop()
            if expanded:
                order.append(m)
                continue
            stack.append((m, True))
            stack.extend((c, False) for c in reversed([c for c in m._modules.values() if c is not None]))
        for m in order:
            fn(m)
        return self

    # ---- modes, devices, gradients ----------------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    def to(self, *args, device=None, dtype=None, non_blocking=False):
        """Move parameters and buffers to ``device`` and/or cast floating ones to ``dtype``, in place:
        ``to("cuda")``, ``to(mc.float64)``, ``to(device, dtype)``, ``to(tensor)`` (its device and dtype)."""
        from minicnn.dtypes import as_dtype, is_dtype
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif is_dtype(a):
                dtype = a
            elif a is not None:
                device = a
        dtype = as_dtype(dtype)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"Module.to: only floating-point dtypes are allowed, got {dtype}")
        device = backend.check_device(device) if device is not None else None
        for m in self.modules():
            for store in (m._parameters, m._buffers):
                for t in store.values():
                    if t is None:
                        continue
                    if dtype is not None and t.dtype.kind == "f":
                        t.data = t.data.astype(dtype)
                        if t.grad is not None:
                            t.grad = Tensor._make(t.grad.data.astype(dtype), t.device)
                    if device is not None and device != t.device:
                        t.data, t.device = backend.to_device(t.data, device), device
                        if t.grad is not None:
                            t.grad = Tensor._make(backend.to_device(t.grad.data, device), device)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    # ---- state dicts ------------------------------------------------------------------------------------
    def state_dict(self):
        """``{name: Tensor}`` of every parameter and persistent buffer (detached, sharing memory)."""
        out = OrderedDict()
        for mname, m in self.named_modules():
            pre = f"{mname}." if mname else ""
            for n, p in m._parameters.items():
                if p is not None:
                    out[pre + n] = p.detach()
            for n, b in m._buffers.items():
                if b is not None and n not in m._non_persistent:
                    out[pre + n] = b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into this module's parameters and buffers.  With ``strict``, missing, unexpected and
        shape-mismatched keys are all listed in one error, raised before anything is changed."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = [f"{k}: checkpoint {tuple(np.shape(_array(state_dict[k])))} vs model {own[k].shape}"
                      for k in own if k in state_dict and tuple(np.shape(_array(state_dict[k]))) != own[k].shape]
        if mismatched or (strict and (missing or unexpected)):
            lines = [f"Error(s) in loading state_dict for {type(self).__name__}:"]
            if missing and strict:
                lines.append("  missing keys: " + ", ".join(missing))
            if unexpected and strict:
                lines.append("  unexpected keys: " + ", ".join(unexpected))
            if mismatched:
                lines.append("  shape mismatch: " + "; ".join(mismatched))
            raise RuntimeError("\n".join(lines))
        targets = dict(self._all_tensors())
        for k, v in state_dict.items():
            if k in targets:
                t = targets[k]
                t.data = backend.to_device(np.asarray(_array(v), dtype=t.dtype), t.device).copy()
        return IncompatibleKeys(missing, unexpected)

    def _all_tensors(self):
        for mname, m in self.named_modules():
            pre = f"{mname}." if mname else ""
            for store in (m._parameters, m._buffers):
                for n, t in store.items():
                    if t is not None:
                        yield pre + n, t

    # ---- printing ---------------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}(" + (f"{extra}" if extra else "")
        return head + "\n" + "\n".join(lines) + "\n)"


def _array(v):
    return backend.to_cpu(v.data) if isinstance(v, Tensor) else np.asarray(v)
