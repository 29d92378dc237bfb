"""Model tests draw their weights from minicnn's generator: seed it before each test, so every run of a test
builds the same models (finite-difference checks never land on a different ReLU kink from run to run)."""
import pytest

import minicnn as mc


@pytest.fixture(autouse=True)
def _seed():
    mc.manual_seed(0)
