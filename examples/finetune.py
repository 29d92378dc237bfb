"""Transfer learning on MNIST: train LeNet-5 on the digits 0-4, then reuse its features for the digits 5-9.

The second task gets only ten labelled images per digit.  We freeze the pretrained convolutions
(``requires_grad=False``: the optimizer never sees them and backward computes no gradient for them), replace the
head with a fresh 5-way ``Linear`` and fine-tune the fully connected layers; a network trained from scratch on
the same images is the baseline (with seed 0: 83% against 65% on the test digits 5-9).  Half a minute on
a laptop CPU:

    python examples/finetune.py --seed 0
"""
import argparse

import numpy as np

import minicnn as mc
import minicnn.nn as nn
from minicnn import optim
from minicnn.data import MNIST, DataLoader, TensorDataset
from minicnn.data import transforms as T
from minicnn.models import lenet5
from minicnn.train import evaluate, train_one_epoch


def digits(dataset, low, count, rng):
    """``count`` random images of the digits low .. low + 4, relabelled 0 .. 4."""
    keep = np.flatnonzero((dataset.targets >= low) & (dataset.targets < low + 5))
    keep = rng.choice(keep, min(count, len(keep)), replace=False)
    return TensorDataset(dataset.data[keep], dataset.targets[keep] - low, transform=T.Normalize((0.1307,), (0.3081,)))


def fit(model, data, epochs, lr, seed):
    params = [p for p in model.parameters() if p.requires_grad]       # the frozen layers are left out
    opt = optim.SGD(params, lr=lr, momentum=0.9)
    loader = DataLoader(data, 64, shuffle=True, seed=seed)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        train_one_epoch(model, loader, opt, epoch, epochs)


def accuracy(model, data):
    _, pred, target = evaluate(model, DataLoader(data, 1000))
    return 100 * float((pred == target).mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, the subsets and the data order")
    p.add_argument("--pretrain-images", type=int, default=6000)
    p.add_argument("--finetune-images", type=int, default=50)
    args = p.parse_args(argv)
    mc.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train, test = MNIST(train=True), MNIST(train=False)

    # 1. the source task: digits 0-4
    model = lenet5(num_classes=5)
    fit(model, digits(train, 0, args.pretrain_images, rng), epochs=2, lr=0.05, seed=args.seed)
    print(f"pretrained on 0-4: {accuracy(model, digits(test, 0, 5000, rng)):.1f}% test accuracy")

    # 2. the target task: digits 5-9 from a few images; frozen convolutions, a new head
    few, test_59 = digits(train, 5, args.finetune_images, rng), digits(test, 5, 5000, rng)
    for layer in (model.conv1, model.conv2):
        layer.requires_grad_(False)                                     # sets requires_grad=False on each weight
    model.fc3 = nn.Linear(84, 5)                                        # new parameters require grad
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fit(model, few, epochs=20, lr=0.05, seed=args.seed)
    print(f"frozen convolutions, new head ({trainable} trainable parameters), {len(few)} images of 5-9: "
          f"{accuracy(model, test_59):.1f}%")

    # 3. the baseline: the whole network from scratch on the same images
    scratch = lenet5(num_classes=5)
    fit(scratch, few, epochs=20, lr=0.05, seed=args.seed)
    print(f"from scratch on the same {len(few)} images: {accuracy(scratch, test_59):.1f}%")
    return 0


if __name__ == "__main__":
    main()
