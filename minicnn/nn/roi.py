"""RoIPool as ``torchvision.ops.RoIPool``: max pooling of each region of interest into fixed bins."""
from minicnn import functional as F
from minicnn.nn.module import Module

__all__ = ["RoIPool"]


class RoIPool(Module):
    """``RoIPool(output_size, spatial_scale)(input, rois)``: see ``F.roi_pool``."""
    def __init__(self, output_size, spatial_scale):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, input, rois):
        return F.roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self):
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
