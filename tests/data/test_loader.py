"""DataLoader: order, seeding, drop_last, prefetching thread, resuming, device."""
import threading

import numpy as np
import pytest
from helpers import DEVICES, to_cpu

from minicnn.data import DataLoader, Subset, TensorDataset
from minicnn.data.transforms import RandomCrop


def numbered(n=10):
    """Image i is filled with the value i and labelled i % 3: batches reveal which images they hold."""
    images = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 1, 2, 2)).copy()
    return TensorDataset(images, np.arange(n) % 3)


def served(loader):
    return [to_cpu(x.data)[:, 0, 0, 0].astype(int).tolist() for x, _ in loader]


def test_sequential_order_sizes_and_labels():
    loader = DataLoader(numbered(), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    assert served(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, y = batches[1]
    assert x.dtype == np.float32 and x.shape == (4, 1, 2, 2) and y.dtype == np.int64
    np.testing.assert_array_equal(y.numpy(), np.arange(4, 8) % 3)
    assert [len(b) for b in served(DataLoader(numbered(), batch_size=4, drop_last=True))] == [4, 4]
    assert len(DataLoader(numbered(), batch_size=4, drop_last=True)) == 2


def test_shuffle_is_a_seeded_permutation_per_epoch():
    loader = DataLoader(numbered(), batch_size=3, shuffle=True, seed=7)
    first, second = served(loader), served(loader)
    assert sorted(sum(first, [])) == list(range(10)) and sorted(sum(second, [])) == list(range(10))
    assert first != second                              # a new order each epoch
    again = DataLoader(numbered(), batch_size=3, shuffle=True, seed=7)
    assert served(again) == first and served(again) == second
    assert served(DataLoader(numbered(), batch_size=3, shuffle=True, seed=8)) != first


def test_resume_serves_the_same_epoch():
    a = DataLoader(numbered(), batch_size=4, shuffle=True, seed=1)
    served(a)
    state = a.state_dict()
    expected = served(a)
    b = DataLoader(numbered(), batch_size=4, shuffle=True, seed=99)
    b.load_state_dict(state)
    assert served(b) == expected and state == {"seed": 1, "epoch": 1}


def test_prefetching_thread_gives_the_same_augmented_batches():
    data = TensorDataset(np.random.default_rng(0).integers(0, 256, (9, 1, 6, 6)).astype(np.uint8),
                         np.zeros(9), transform=RandomCrop(4, padding=1))
    kw = dict(batch_size=2, shuffle=True, seed=3)
    threaded = [x.numpy() for x, _ in DataLoader(data, prefetch=2, **kw)]
    inline = [x.numpy() for x, _ in DataLoader(data, prefetch=0, **kw)]
    assert len(threaded) == 5 and all(np.array_equal(a, b) for a, b in zip(threaded, inline))


def test_stopping_early_ends_the_thread_and_errors_surface():
    before = threading.active_count()
    for i, _ in enumerate(DataLoader(numbered(100), batch_size=1, prefetch=2)):
        if i == 3:
            break
    assert threading.active_count() == before

    class Broken(TensorDataset):
        def get_batch(self, indices, rng=None):
            if indices[0] >= 4:
                raise RuntimeError("disk on fire")
            return super().get_batch(indices, rng)

    broken = Broken(np.zeros((8, 1, 2, 2), np.uint8), np.zeros(8))
    with pytest.raises(RuntimeError, match="disk on fire"):
        list(DataLoader(broken, batch_size=2))
    assert threading.active_count() == before


def test_getitem_only_datasets_and_subsets():
    class Pairs:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((1, 2, 2), i, np.float64), i * 10

    x, y = next(iter(DataLoader(Pairs(), batch_size=5)))
    assert x.dtype == np.float32 and y.numpy().tolist() == [0, 10, 20, 30, 40]
    assert served(DataLoader(Subset(numbered(), [7, 2, 5]), batch_size=2)) == [[7, 2], [5]]


def test_default_seed_follows_manual_seed():
    import minicnn as mc
    mc.manual_seed(4)
    a = served(DataLoader(numbered(), batch_size=10, shuffle=True))
    mc.manual_seed(4)
    assert served(DataLoader(numbered(), batch_size=10, shuffle=True)) == a


@pytest.mark.parametrize("device", DEVICES)
def test_batches_land_on_the_device(device):
    x, y = next(iter(DataLoader(numbered(), batch_size=4, device=device)))
    assert x.device == device and y.device == device
    np.testing.assert_array_equal(to_cpu(x.data)[:, 0, 0, 0], [0, 1, 2, 3])


def test_nan_in_data_is_an_error_naming_the_samples():
    ds = numbered()
    ds.data[7, 0, 1, 1] = np.nan
    ds.data[8, 0, 0, 0] = np.inf
    loader = DataLoader(ds, batch_size=4, prefetch=2)
    with pytest.raises(ValueError, match=r"dataset samples \[7\] hold NaN or infinite values \(batch 1 of epoch 0\)"):
        list(loader)
