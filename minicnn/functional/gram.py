"""Gram matrices of feature maps (Gatys, Ecker & Bethge 2016, eq. 3): the style representation of one layer."""
from minicnn.autograd import Function
from minicnn.backend import get_array_module

__all__ = ["gram_matrix", "GramFn"]


class GramFn(Function):
    """x (N, C, H, W) -> G (N, C, C), G[n, i, j] = scale * sum_hw x[n, i, h, w] x[n, j, h, w].
    With F = x reshaped (N, C, HW), G = scale F F^T, so dG = scale (dF F^T + F dF^T) and gF = scale (gG + gG^T) F."""
    def __init__(self, scale):
        self.scale = scale

    def forward(self, x):
        self.shape = x.shape
        self.f = x.reshape(x.shape[0], x.shape[1], -1)
        return (self.f @ get_array_module(x).swapaxes(self.f, 1, 2)) * self.scale

    def backward(self, gy):
        xp = get_array_module(gy)
        return (((gy + xp.swapaxes(gy, 1, 2)) @ self.f) * self.scale).reshape(self.shape)


def gram_matrix(input, normalize=True):
    """Gram matrix of each feature map: (N, C, H, W) -> (N, C, C), the inner products of the channels over the
    positions; ``normalize`` divides by C * H * W (the size of the map), so layers of any size weigh alike."""
    if input.ndim != 4:
        raise ValueError(f"gram_matrix: expected (N, C, H, W) feature maps, got shape {tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"gram_matrix: input must be floating point, got dtype {input.dtype}")
    N, C, H, W = input.shape
    return GramFn(1.0 / (C * H * W) if normalize else 1.0)(input)
