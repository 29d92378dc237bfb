"""``ImageFolder``: a user's own labelled images, one sub-folder per class, as torchvision's.

``root/dog/001.png``, ``root/cat/xyz.jpg``, ...: the classes are the sub-folder names in sorted order
(``class_to_idx``), the samples every image file below them (sorted), read with Pillow as RGB.
"""
import os

from minicnn.data.generic import Dataset

__all__ = ["DatasetFolder", "ImageFolder", "IMG_EXTENSIONS", "pil_loader", "default_loader"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def pil_loader(path):
    """The image at ``path`` as an RGB PIL image (the file is closed afterwards)."""
    from PIL import Image
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


default_loader = pil_loader


class DatasetFolder(Dataset):
    """Samples ``(loader(path), class index)`` for every file under ``root/<class>/`` that ``is_valid_file``
    accepts (default: the name ends in one of ``extensions``)."""
    def __init__(self, root, loader, extensions=None, transform=None, target_transform=None, is_valid_file=None,
                 allow_empty=False):
        self.root = os.path.expanduser(str(root))
        if (extensions is None) == (is_valid_file is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of extensions and is_valid_file")
        self.loader, self.extensions = loader, extensions
        self.transform, self.target_transform = transform, target_transform
        self.classes, self.class_to_idx = self.find_classes(self.root)
        valid = is_valid_file or (lambda p: p.lower().endswith(tuple(extensions)))
        self.samples = []
        for c in self.classes:
            folder = os.path.join(self.root, c)
            found = []
            for dirpath, _, files in sorted(os.walk(folder, followlinks=True)):
                found += [os.path.join(dirpath, f) for f in sorted(files) if valid(os.path.join(dirpath, f))]
            if not found and not allow_empty:
                raise FileNotFoundError(f"{type(self).__name__}: found no valid file for class {c!r} in {folder} "
                                        f"(supported extensions: {', '.join(extensions or ())})")
            self.samples += [(p, self.class_to_idx[c]) for p in found]
        self.targets = [t for _, t in self.samples]

    @staticmethod
    def find_classes(directory):
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"ImageFolder: no such folder: {directory}")
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir())
        if not classes:
            raise FileNotFoundError(f"ImageFolder: couldn't find any class folder in {directory}")
        return classes, {c: i for i, c in enumerate(classes)}

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __repr__(self):
        return f"{type(self).__name__}({len(self)} samples in {len(self.classes)} classes at {self.root})"


class ImageFolder(DatasetFolder):
    """``ImageFolder(root, transform=None, target_transform=None, loader=default_loader, is_valid_file=None)``;
    ``imgs`` is ``samples``."""
    def __init__(self, root, transform=None, target_transform=None, loader=default_loader, is_valid_file=None,
                 allow_empty=False):
        super().__init__(root, loader, IMG_EXTENSIONS if is_valid_file is None else None, transform,
                         target_transform, is_valid_file, allow_empty)
        self.imgs = self.samples
