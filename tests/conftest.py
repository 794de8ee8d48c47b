"""Fixtures shared by the unit tests: the device switch.

``LOSSBOOK_DEVICE=cuda pytest tests`` runs the same tests on that device; without it they run on
the CPU, exactly as before (nothing below does anything on the CPU).

- ``device`` (session): the CPU unless ``LOSSBOOK_DEVICE`` is set, and then
  :func:`lossbook.default_device` (which fails loudly if that device is not there). Module-level
  helpers that cannot take a fixture use :func:`lossbook.testing.test_device`, which is the same.
- autouse: on another device, each test runs inside :func:`lossbook.testing.tensors_on`, so the
  tensors the tests create (``torch.tensor``, ``randn`` with a seeded CPU generator, ``zeros``, ...)
  are on that device, while the tensors lossbook creates itself are not redirected.
"""
from __future__ import annotations

import pytest
import torch

from lossbook.testing import tensors_on, test_device


@pytest.fixture(scope="session")
def device() -> torch.device:
    return test_device()


@pytest.fixture(autouse=True)
def _tensors_on_device(device):
    if device.type == "cpu":
        yield
        return
    with tensors_on(device):
        yield
