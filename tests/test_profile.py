"""``python -m minicnn profile``: per-layer forward/backward times of a real training step, convolution GFLOP/s
and the algorithm chosen for every pass, on lenet5, resnet20 and resnet18 (small batches and inputs)."""
import subprocess
import sys

import pytest

from minicnn.functional.conv import ALGORITHMS
from minicnn.models import get_model
from minicnn.profile import profile


@pytest.mark.parametrize("name, input_size, batch", [("lenet5", (1, 28, 28), 8), ("resnet20", (3, 32, 32), 4),
                                                     ("resnet18", (3, 64, 64), 2)])
def test_profile_reports_every_layer(name, input_size, batch):
    rows, step_ms, gemm = profile(get_model(name, num_classes=10), input_size, batch, steps=1, warmup=1)
    convs = [r for r in rows if r["type"] == "Conv2d"]
    assert step_ms > 0 and gemm > 0 and convs
    assert sum(r["fwd_ms"] + r["bwd_ms"] for r in rows) <= step_ms * 1.05      # parts of one step
    for r in convs:
        assert r["fwd_ms"] > 0 and r["bwd_ms"] > 0 and r["gflops_fwd"] > 0
        assert set(r["algorithms"]) >= {"forward", "weight_grad"}
    assert convs[1]["algorithms"]["input_grad"]                                 # every conv but the first
    assert any("own ops" in r["type"] for r in rows)                            # relu/pool/add of a block


def test_profile_command_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "minicnn", "profile", "lenet5", "--batch-size", "4", "--steps", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "conv1 (Conv2d)" in out.stdout and "GFLOP/s" in out.stdout
    conv1 = next(line for line in out.stdout.splitlines() if line.startswith("conv1 "))
    assert any(name in conv1 for name in ALGORITHMS)
