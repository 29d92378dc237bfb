"""Fully connected layer: y = x W^T + b, composed of matmul and add (their Functions give the gradients)."""
from minicnn.autograd import Tensor

__all__ = ["linear"]


def linear(input, weight, bias=None):
    """input (*, in) @ weight (out, in)^T + bias (out,) -> (*, out)."""
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-d (out_features, in_features), got shape {weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input shape {input.shape} does not end in in_features={weight.shape[1]} "
                         f"of weight {weight.shape}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias shape {bias.shape} should be ({weight.shape[0]},) for weight {weight.shape}")
    if isinstance(input, Tensor) and input.dtype.kind != "f":
        raise TypeError(f"linear: input must be floating point, got dtype {input.dtype}")
    y = input @ weight.T
    return y + bias if bias is not None else y
