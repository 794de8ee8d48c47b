"""lossbook.fast.kernels: the fast ``exp`` and the cache-sized blocks the fast paths run on."""
from __future__ import annotations

import math

import pytest
import torch

from lossbook.fast import kernels as K


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_matches_torch_exp_to_a_few_ulps(dtype):
    # the arguments losses use: max-shifted logits (<= 0) and moderate positive values
    x = torch.cat([torch.linspace(-80, 0, 100_001, dtype=dtype), torch.linspace(0, 80, 10_001, dtype=dtype)])
    ref = torch.exp(x.double())
    got = K.exp(x).double()
    rel = ((got - ref) / ref).abs()
    eps = torch.finfo(dtype).eps
    # x*log2(e) is rounded once (|x| eps/2 relative error in the result) and, in float32, log2(e)
    # itself is rounded to float32 (up to |x| eps/4 more); plus exp2's own error
    bound = x.double().abs() * eps + 4 * eps
    assert bool((rel <= bound).all()), float((rel / bound).max())
    # and, near 0 where the large softmax terms live, as accurate as torch.exp itself
    near = x.abs() <= 1
    assert float(rel[near].max()) <= 2 * eps


def test_exp_special_values_and_out():
    x = torch.tensor([-math.inf, math.inf, math.nan, 0.0, -1e4, 1e4, -104.0])
    got = K.exp(x)
    torch.testing.assert_close(got, torch.exp(x), equal_nan=True, rtol=0, atol=0)
    buf = torch.empty_like(x)
    assert K.exp(x, out=buf) is buf
    torch.testing.assert_close(buf, got, equal_nan=True, rtol=0, atol=0)
    y = x.clone()
    assert K.exp_(y) is y
    torch.testing.assert_close(y, got, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_exp_half_precision_uses_torch_exp(dtype):
    x = torch.linspace(-10, 5, 1001).to(dtype)
    assert torch.equal(K.exp(x), torch.exp(x))  # x*log2(e) rounded to 8-11 bits would be far off
    assert torch.equal(K.exp_(x.clone()), torch.exp(x))


def test_blocks_split_along_the_outermost_free_dimension(monkeypatch):
    monkeypatch.setattr(K, "BLOCK_BYTES", 4 * 40)  # 40 float32 values: 4 rows of 10
    x = torch.empty(50, 10)
    idx = K.blocks(x, (1,))
    assert idx == [(slice(s, s + 4),) for s in range(0, 50, 4)]  # the last block is ragged (2 rows)
    assert sum(x[i].shape[0] for i in idx) == 50
    y = torch.empty(3, 50, 10)  # reducing over dim 0: blocks along dim 1, dim 0 kept whole
    assert all(y[i].shape[0] == 3 for i in K.blocks(y, (0,)))
    assert len(K.blocks(y, (0,))) > 1
    assert K.blocks(torch.empty(2, 3), (1,)) == [(...,)]  # at most twice a block: one block


def test_blocks_keep_at_least_one_row(monkeypatch):
    monkeypatch.setattr(K, "BLOCK_BYTES", 1)
    x = torch.empty(5, 10)
    assert K.blocks(x, (1,)) == [(slice(s, s + 1),) for s in range(5)]


def test_blocks_only_on_the_cpu_and_only_with_a_free_dimension(monkeypatch):
    monkeypatch.setattr(K, "BLOCK_BYTES", 16)
    assert len(K.blocks(torch.empty(50, 10), (1,))) > 1
    assert K.blocks(torch.empty(50, 10, device="meta"), (1,)) == [(...,)]  # GPUs etc.: one block
    assert K.blocks(torch.empty(50, 10), (0, 1)) == [(...,)]  # nothing left to split along
    assert K.blocks(torch.empty(1, 50), (1,)) == [(...,)]  # size-1 dimensions are not split


def test_default_blocks_are_megabytes():
    x = torch.empty(4096, 32000)
    idx = K.blocks(x, (1,))
    sizes = {x[i].numel() * 4 for i in idx[:-1]}
    assert len(idx) > 8 and all(K.BLOCK_BYTES // 2 <= s <= K.BLOCK_BYTES for s in sizes)


def test_scratch_and_fit():
    x = torch.empty(10, 6).t()  # non-contiguous
    idx = [(slice(0, 4),), (slice(4, 6),)]
    buf = K.scratch(x, idx)
    assert buf.shape == (4, 10) and buf.is_contiguous()
    assert K.fit(buf, x[idx[1]]).shape == (2, 10)
    assert K.fit(buf, x[idx[0]]) is buf
    assert K.scratch(x, idx, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_exp_with_a_scale(dtype):
    x = torch.linspace(0, 30, 1001, dtype=torch.float64).to(dtype)
    rtol = 34 * torch.finfo(dtype).eps  # |x| + 4 ulps, as above
    for scale in (-1.0, 0.5, 1.0):
        torch.testing.assert_close(K.exp_(x.clone(), scale), torch.exp(scale * x), rtol=rtol, atol=1e-30)
