"""Resampling layers: Upsample (nearest, integer scale; YOLOv3), PixelShuffle and PixelUnshuffle (YOLOv2's
passthrough), with PyTorch's arguments and repr."""
from minicnn import functional as F
from minicnn.nn.module import Module

__all__ = ["Upsample", "PixelShuffle", "PixelUnshuffle"]


class Upsample(Module):
    """Nearest-neighbour upsampling to ``size`` or by ``scale_factor`` (integers): see ``F.interpolate``."""
    def __init__(self, size=None, scale_factor=None, mode="nearest"):
        super().__init__()
        self.size, self.mode = size, mode
        # stored as floats, like PyTorch (so the repr reads scale_factor=2.0)
        self.scale_factor = (tuple(float(f) for f in scale_factor) if isinstance(scale_factor, (tuple, list))
                             else float(scale_factor) if scale_factor else None)

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode)

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"


class PixelShuffle(Module):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r): see ``F.pixel_shuffle``."""
    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W): see ``F.pixel_unshuffle``."""
    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
