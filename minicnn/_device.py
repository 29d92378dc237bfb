"""``mc.device``: a device name with ``type`` and ``index``, as ``torch.device``; accepted wherever minicnn takes
a device (it converts to ``"cpu"`` / ``"cuda"`` / ``"cuda:0"``)."""

__all__ = ["device"]


class device:
    """``mc.device("cuda")``, ``mc.device("cuda:0")``, ``mc.device("cuda", 0)``, ``mc.device("cpu")``."""
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        name = str(type)
        if ":" in name:
            if index is not None:
                raise ValueError(f"device: index given twice in {name!r} and index={index}")
            name, index = name.split(":", 1)
            index = int(index)
        if name not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device: expected 'cpu' or 'cuda' (optionally 'cuda:N'), got {type!r}")
        if index is not None and (int(index) < 0 or name == "cpu" and int(index) != 0):
            raise ValueError(f"device: bad index {index} for device type {name!r}")
        self.type, self.index = name, None if index is None else int(index)

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))
