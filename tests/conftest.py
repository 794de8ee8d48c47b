"""Fixtures shared by the unit tests.

``device``: the device the tests create their tensors on. The CPU unless ``LOSSBOOK_DEVICE`` is
set, in which case it is :func:`lossbook.default_device` (so ``LOSSBOOK_DEVICE=cuda pytest tests``
runs the same tests on the GPU; asking for a device that is not there fails loudly). Module-level
helpers that cannot take a fixture use :func:`lossbook.testing.test_device`, which is the same.
"""
from __future__ import annotations

import pytest

from lossbook.testing import test_device


@pytest.fixture(scope="session")
def device():
    return test_device()
