"""``python -m minicnn verify``: the table, the exit status, and every registered case on every device."""
import numpy as np
import pytest

import minicnn.functional as F
from helpers import DEVICES
from minicnn import verify
from minicnn.autograd import Function

CASES = {c.name: c for c in verify.cases()}


class _WrongGradFn(Function):
    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        return 3 * gy                                     # wrong on purpose


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(CASES))
def test_every_case_passes(name, device):
    case = CASES[name]
    row = verify.run_case(case, device)
    assert row["ok"], row["error"]
    assert row["grad"] == ("pass" if case.grad else "-") and row["rel"] <= 1e-5 and row["ms"] >= 0


def test_table_and_exit_status(capsys):
    assert verify.main(["--ops", "batch_norm,local_response", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["op", "device", "max", "abs", "max", "rel", "gradcheck", "ms", "status"]
    rows = [line for line in out.splitlines() if line.startswith(("batch_norm", "local_response_norm"))]
    assert len(rows) == 4 and all(line.endswith("ok") and " pass " in line for line in rows)
    assert "4/4 passed (4 ops x 1 devices)" in out


@pytest.mark.parametrize("case, status, message", [
    (verify.Case("off by one", lambda x: x + 1, lambda x: x, [np.ones(3)]), "pass",
     "forward off by"),
    (verify.Case("wrong gradient", lambda x: _WrongGradFn()(x), lambda x: 2 * x, [np.ones(3)]), "FAIL",
     "gradcheck failed"),
    (verify.Case("crashes", lambda x: F.batch_norm(x[:1], None, None, training=True), lambda x: x,
                 [np.ones((2, 3))]), "ERROR", "more than 1 value per channel"),
])
def test_failures_give_a_failed_row_and_exit_status_1(monkeypatch, capsys, case, status, message):
    row = verify.run_case(case, "cpu")
    assert not row["ok"] and row["grad"] == status and message in row["error"]
    monkeypatch.setattr(verify, "cases", lambda: [case, CASES["relu"]])
    assert verify.main(["--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {case.name} on cpu" in out and "1/2 passed" in out


def test_unknown_op_filter_fails(capsys):
    assert verify.main(["--ops", "no_such_op", "--device", "cpu"]) == 1
    assert "no op matches" in capsys.readouterr().out
