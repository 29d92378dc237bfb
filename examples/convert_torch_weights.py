"""Convert a PyTorch checkpoint (e.g. torchvision's resnet18-f37072fd.pth) into a NumPy .npz for minicnn.

minicnn's models use torchvision's state-dict keys and shapes, so the arrays load as they are:

    python examples/convert_torch_weights.py resnet18-f37072fd.pth resnet18.npz --check resnet18
    model = minicnn.models.resnet18(); model.load_state_dict(dict(numpy.load("resnet18.npz")))

The same holds for the families whose keys are timm's (``inception_v4``, ``inception_resnet_v2``, ``xception`` =
timm's ``legacy_xception``); timm publishes ``.safetensors`` files, read with the ``safetensors`` package:

    python examples/convert_torch_weights.py model.safetensors inception_v4.npz --check inception_v4

torchvision's inception_v3 weights expect ``inception_v3(transform_input=True)`` (inputs normalised the
ImageNet way).  PyTorch (or safetensors) is needed only to read the file, only here (pip install torch);
minicnn itself never imports it.
"""
import argparse
import sys

import numpy as np


def read_pth(path):
    """{key: ndarray} from a .pth holding a state dict (or a checkpoint with a "state_dict" entry), or from a
    .safetensors file."""
    if str(path).endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise SystemExit("convert_torch_weights: reading a .safetensors file needs the safetensors package "
                             "(pip install safetensors); minicnn itself never needs it") from None
        return dict(load_file(path))
    try:
        import torch
    except ImportError:
        raise SystemExit("convert_torch_weights: reading a .pth needs PyTorch (pip install torch); "
                         "minicnn itself never needs it") from None
    obj = torch.load(path, map_location="cpu", weights_only=True)
    obj = obj.get("state_dict", obj)
    return {k: v.detach().cpu().numpy() for k, v in obj.items()}


def check(arrays, name):
    """Load the arrays into minicnn's ``name`` (classes read off the last 2-D weight); exit naming bad keys."""
    from minicnn.models import get_model
    classes = [a.shape[0] for k, a in arrays.items() if k.endswith("weight") and a.ndim == 2][-1]
    try:
        get_model(name, num_classes=classes).load_state_dict(arrays)
    except RuntimeError as e:
        raise SystemExit(f"convert_torch_weights: the weights do not fit minicnn's {name}:\n{e}") from None
    print(f"{len(arrays)} arrays load into minicnn.models.{name}(num_classes={classes})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pth", help="PyTorch checkpoint to read")
    p.add_argument("npz", help=".npz file to write")
    p.add_argument("--check", metavar="MODEL", help="also load the weights into this minicnn model")
    args = p.parse_args(argv)
    arrays = read_pth(args.pth)
    if args.check:
        check(arrays, args.check)
    np.savez(args.npz, **arrays)
    print(f"wrote {len(arrays)} arrays to {args.npz}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
