"""Activations.  Elementwise maps with no loop of their own (NumPy/CuPy does the work on either device), except
ReLU, the one on every CNN's hot path: one pass each way in kernels/relu.py."""
from minicnn.autograd import Function
from minicnn.backend import get_array_module
from minicnn.kernels import relu as relu_kernels

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "relu6", "silu", "hardswish",
           "hardsigmoid", "ReLUFn", "LeakyReLUFn", "SigmoidFn", "TanhFn", "SoftmaxFn", "LogSoftmaxFn", "ReLU6Fn",
           "SiLUFn", "HardswishFn", "HardsigmoidFn"]


class ReLUFn(Function):
    """max(x, 0); the gradient at exactly 0 is 0, as in PyTorch."""
    def forward(self, x):
        y, self.mask = relu_kernels.relu_forward(x)
        return y

    def backward(self, gy):
        return relu_kernels.relu_backward(gy, self.mask)


class LeakyReLUFn(Function):
    """x for x > 0, slope * x otherwise (Maas et al. 2013; YOLO/Darknet use slope 0.1)."""
    def __init__(self, slope):
        self.slope = slope

    def forward(self, x):
        self.scale = get_array_module(x).where(x > 0, 1, self.slope).astype(x.dtype)
        return x * self.scale

    def backward(self, gy):
        return gy * self.scale


class SigmoidFn(Function):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2 so large |x| cannot overflow."""
    def forward(self, x):
        self.y = 0.5 * (1 + get_array_module(x).tanh(0.5 * x))
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class TanhFn(Function):
    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class ReLU6Fn(Function):
    """min(max(x, 0), 6) (MobileNet's ReLU6, Sandler et al. 2018 §3.2); the gradient is 1 strictly inside
    (0, 6) and 0 elsewhere, as PyTorch's hardtanh."""
    def forward(self, x):
        self.inside = (x > 0) & (x < 6)
        return get_array_module(x).clip(x, 0, 6)

    def backward(self, gy):
        return gy * self.inside


class SiLUFn(Function):
    """x * sigmoid(x) (SiLU, Elfwing et al. 2017; "Swish" in EfficientNet); dy/dx = s (1 + x (1 - s))."""
    def forward(self, x):
        self.x, self.s = x, 0.5 * (1 + get_array_module(x).tanh(0.5 * x))
        return x * self.s

    def backward(self, gy):
        return gy * self.s * (1 + self.x * (1 - self.s))


class HardswishFn(Function):
    """x * relu6(x + 3) / 6 (Howard et al. 2019, MobileNetV3 eq. 2); dy/dx = 0 below -3, (2x + 3) / 6 on
    [-3, 3], 1 above 3 (PyTorch's choice at the two kinks)."""
    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return x * xp.clip(x + 3, 0, 6) / 6

    def backward(self, gy):
        x, xp = self.x, get_array_module(self.x)
        return gy * xp.where(x < -3, 0, xp.where(x <= 3, (2 * x + 3) / 6, 1)).astype(x.dtype)


class HardsigmoidFn(Function):
    """relu6(x + 3) / 6; dy/dx = 1/6 strictly inside (-3, 3), 0 elsewhere."""
    def forward(self, x):
        self.inside = (x > -3) & (x < 3)
        return get_array_module(x).clip(x + 3, 0, 6) / 6

    def backward(self, gy):
        return gy * self.inside / 6


class SoftmaxFn(Function):
    """exp(x - max) / sum(exp(x - max)) along ``dim``: subtracting the max keeps exp from overflowing."""
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        e = get_array_module(x).exp(x - x.max(axis=self.dim, keepdims=True))
        self.y = e / e.sum(axis=self.dim, keepdims=True)
        return self.y

    def backward(self, gy):                       # J^T gy = y * (gy - <gy, y>)
        return self.y * (gy - (gy * self.y).sum(axis=self.dim, keepdims=True))


class LogSoftmaxFn(Function):
    """x - logsumexp(x) along ``dim``, with the max subtracted first (stable for any logits)."""
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        xp = get_array_module(x)
        shifted = x - x.max(axis=self.dim, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=self.dim, keepdims=True))
        self.softmax = xp.exp(y)
        return y

    def backward(self, gy):
        return gy - self.softmax * gy.sum(axis=self.dim, keepdims=True)


def _check_float(op, x):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}")


def _dim(op, x, dim):
    if dim is None:                               # PyTorch's legacy implicit choice
        dim = 0 if x.ndim in (0, 1, 3) else 1
    if not -x.ndim <= dim < max(x.ndim, 1):
        raise ValueError(f"{op}: dim {dim} out of range for input of shape {x.shape}")
    return dim % max(x.ndim, 1)


def relu(input, inplace=False):
    _check_float("relu", input)
    return ReLUFn()(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    _check_float("leaky_relu", input)
    return LeakyReLUFn(negative_slope)(input)


def sigmoid(input):
    _check_float("sigmoid", input)
    return SigmoidFn()(input)


def tanh(input):
    _check_float("tanh", input)
    return TanhFn()(input)


def relu6(input, inplace=False):
    _check_float("relu6", input)
    return ReLU6Fn()(input)


def silu(input, inplace=False):
    _check_float("silu", input)
    return SiLUFn()(input)


def hardswish(input, inplace=False):
    _check_float("hardswish", input)
    return HardswishFn()(input)


def hardsigmoid(input, inplace=False):
    _check_float("hardsigmoid", input)
    return HardsigmoidFn()(input)


def softmax(input, dim=None):
    _check_float("softmax", input)
    return SoftmaxFn(_dim("softmax", input, dim))(input)


def log_softmax(input, dim=None):
    _check_float("log_softmax", input)
    return LogSoftmaxFn(_dim("log_softmax", input, dim))(input)
