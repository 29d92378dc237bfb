"""mc.save is atomic: a save interrupted after part of its bytes reached the disk (an error raised inside the
write, or the process killed mid-write) leaves the previous checkpoint byte for byte, loadable, and no half file
under the checkpoint's name."""
import io
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minicnn as mc
from minicnn import serialization

REAL_SAVEZ = np.savez


def state(seed):
    rng = np.random.default_rng(seed)
    return {"model": {"conv1.weight": rng.standard_normal((8, 3, 3, 3)), "fc.bias": rng.standard_normal(10)},
            "epoch": seed, "lrs": [0.1 * seed, 0.01]}


def assert_same_state(got, want):
    assert sorted(got["model"]) == sorted(want["model"]) and got["epoch"] == want["epoch"]
    assert got["lrs"] == want["lrs"]
    for k, v in want["model"].items():
        np.testing.assert_array_equal(got["model"][k], v)


def half_then_fail(f, **arrays):
    """np.savez that gets half of the file onto the disk (flushed and fsync'ed), then fails like a full disk."""
    buf = io.BytesIO()
    REAL_SAVEZ(buf, **arrays)
    data = buf.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    half_then_fail.written = f.tell()
    raise OSError(28, "No space left on device")


def test_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    mc.save(state(1), path)
    old = path.read_bytes()
    monkeypatch.setattr(serialization.np, "savez", half_then_fail)
    half_then_fail.written = 0
    with pytest.raises(OSError, match="No space left"):
        mc.save(state(2), path)
    assert half_then_fail.written > 1000                      # half of the new file really was written
    assert path.read_bytes() == old
    assert_same_state(mc.load(path), state(1))
    assert os.listdir(tmp_path) == ["checkpoint.npz"]         # no .checkpoint.npz.*.part left behind
    monkeypatch.setattr(serialization.np, "savez", REAL_SAVEZ)
    mc.save(state(3), path)                                   # the next save replaces it
    assert_same_state(mc.load(path), state(3))
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_failed_first_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization.np, "savez", half_then_fail)
    with pytest.raises(OSError):
        mc.save(state(1), tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_error_in_the_with_block_leaves_the_old_text_file(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(KeyboardInterrupt):
        with serialization.atomic_write(path, "w") as f:
            f.write("epoch,loss\n" * 1000)
            f.flush()
            raise KeyboardInterrupt                          # Ctrl-C mid-write
    assert path.read_text() == "epoch,loss\n1,0.5\n" and os.listdir(tmp_path) == ["metrics.csv"]


CHILD = textwrap.dedent("""
    import io, os, sys, time
    import numpy as np
    import minicnn as mc
    from minicnn import serialization
    real = np.savez

    def half_then_hang(f, **arrays):
        buf = io.BytesIO()
        real(buf, **arrays)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        print("half", len(data) // 2, flush=True)
        time.sleep(60)                                       # killed here, mid-write

    serialization.np.savez = half_then_hang
    mc.save({"model": {"conv1.weight": np.full((64, 64, 3, 3), 7.0)}, "epoch": 9, "lrs": []}, sys.argv[1])
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_process_killed_mid_write_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    mc.save(state(1), path)
    old = path.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith("half"), f"the child did not reach the write: {line!r}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert path.read_bytes() == old
    assert_same_state(mc.load(path), state(1))
    # SIGKILL runs no clean-up: the half-written temporary file stays, hidden and under another name
    leftovers = sorted(set(os.listdir(tmp_path)) - {"checkpoint.npz"})
    assert len(leftovers) == 1 and leftovers[0].startswith(".checkpoint.npz.") and leftovers[0].endswith(".part")
    assert os.path.getsize(tmp_path / leftovers[0]) == int(line.split()[1])


def test_object_arrays_are_refused_before_any_write(tmp_path):
    path = tmp_path / "w.npz"
    mc.save(state(1), path)                                   # mc.load reads no pickles: refuse to write one
    with pytest.raises(TypeError, match="mc.save: cannot store an array of dtype object at 'bad'"):
        mc.save({"model": state(2)["model"], "bad": np.array([object()], dtype=object)}, path)
    assert_same_state(mc.load(path), state(1))
    assert os.listdir(tmp_path) == ["w.npz"]
