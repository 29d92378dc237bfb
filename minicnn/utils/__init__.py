"""``mc.utils``, as ``torch.utils``: ``mc.utils.data`` holds the dataset and loader classes."""
from minicnn.utils import data  # noqa: F401
