"""Model families, one file per family; ``get_model(name, **kwargs)`` finds a factory by its name."""
import inspect

from minicnn.models.lenet import LeNet5, lenet5

__all__ = ["get_model", "list_models", "LeNet5", "lenet5"]


def list_models():
    """Names of the model factories exported here: the lowercase functions in ``__all__`` (``lenet5``, ...)."""
    return sorted(n for n in __all__ if n.islower() and inspect.isfunction(globals()[n])
                  and n not in ("get_model", "list_models"))


def get_model(name, **kwargs):
    """``get_model("lenet5", num_classes=10)``: call the factory ``name`` (case and '-' insensitive)."""
    key = name.lower().replace("-", "_")
    if key not in list_models():
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return globals()[key](**kwargs)
