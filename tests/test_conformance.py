"""Conformance: every torch-named lossbook function on PyTorch's own test inputs.

PyTorch tests each operator on the samples of its OpInfo (``sample_inputs`` and
``reference_inputs`` in ``torch.testing._internal.common_methods_invocations.op_db``) and each
module on the samples of its ModuleInfo (``common_modules.module_db``). Here the same samples
go through lossbook's function and through torch's, in float64 and float32, and must give the
same value, dtype, shape and inf/NaN pattern, the same gradient with respect to every input that
torch differentiates, and leave the inputs as they were. A sample torch itself rejects is
skipped; nothing else is. A ModuleInfo sample's constructor arguments are passed as keywords.

A chapter that adds a torch-named function adds ONE line to ``CONFORMANCE``.

``python tests/test_conformance.py`` prints the number of samples per function.
"""
from __future__ import annotations

import functools
import sys
import traceback
import types
import unittest
import warnings

import pytest
import torch
from torch.utils import _pytree as pytree

import lossbook
from lossbook.testing import compare, test_device

if "expecttest" not in sys.modules:  # torch's test utilities import it; only its TestCase base is needed
    try:
        import expecttest  # noqa: F401
    except ImportError:
        _stub = types.ModuleType("expecttest")
        _stub.TestCase, _stub.ACCEPT = unittest.TestCase, False
        sys.modules["expecttest"] = _stub

from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402
from torch.testing._internal.common_modules import module_db  # noqa: E402

# lossbook name -> (the OpInfo names whose samples it runs on, the nn.Module whose ModuleInfo
# samples it runs on, or None). Every variant of a named OpInfo (e.g. softmax "with_dtype") is used.
CONFORMANCE: dict[str, tuple[tuple[str, ...], str | None]] = {
    "softmax": (("softmax",), None),
    "log_softmax": (("log_softmax",), None),
    "logsumexp": (("logsumexp",), None),
    "l1_loss": (("nn.functional.l1_loss",), "L1Loss"),
    "mse_loss": (("nn.functional.mse_loss",), "MSELoss"),
    "huber_loss": (("nn.functional.huber_loss",), "HuberLoss"),
    "smooth_l1_loss": (("nn.functional.smooth_l1_loss",), "SmoothL1Loss"),
    "gaussian_nll_loss": (("nn.functional.gaussian_nll_loss",), "GaussianNLLLoss"),
    "poisson_nll_loss": (("nn.functional.poisson_nll_loss",), "PoissonNLLLoss"),
    "nll_loss": (("nn.functional.nll_loss",), "NLLLoss"),
    "cross_entropy": (("nn.functional.cross_entropy",), "CrossEntropyLoss"),
    "binary_cross_entropy": (("nn.functional.binary_cross_entropy",), "BCELoss"),
    "binary_cross_entropy_with_logits": (("nn.functional.binary_cross_entropy_with_logits",), "BCEWithLogitsLoss"),
    "kl_div": (("nn.functional.kl_div",), "KLDivLoss"),
    "ctc_loss": (("nn.functional.ctc_loss",), "CTCLoss"),
    "soft_margin_loss": (("nn.functional.soft_margin_loss",), "SoftMarginLoss"),
    "multi_margin_loss": (("nn.functional.multi_margin_loss",), "MultiMarginLoss"),
    "multilabel_margin_loss": (("nn.functional.multilabel_margin_loss",), "MultiLabelMarginLoss"),
    "multilabel_soft_margin_loss": (("nn.functional.multilabel_soft_margin_loss",), "MultiLabelSoftMarginLoss"),
    "hinge_embedding_loss": (("nn.functional.hinge_embedding_loss",), "HingeEmbeddingLoss"),
    "margin_ranking_loss": (("nn.functional.margin_ranking_loss",), "MarginRankingLoss"),
    "cosine_embedding_loss": (("nn.functional.cosine_embedding_loss",), "CosineEmbeddingLoss"),
    "triplet_margin_loss": (("nn.functional.triplet_margin_loss",), None),
    "triplet_margin_with_distance_loss": (("nn.functional.triplet_margin_with_distance_loss",), None),
    # every variant: the reference path, and the chunked ones whose samples pass torch's `options`
    "linear_cross_entropy": (("nn.functional.linear_cross_entropy",), None),
}

DTYPES = (torch.float64, torch.float32)
# torch.testing.assert_close's defaults for each dtype; gradients get ten times more room.
TOLERANCES = {torch.float64: (1e-7, 1e-7), torch.float32: (1.3e-6, 1e-5)}


def torch_named() -> list[str]:
    """The public lossbook functions that share a name with a torch or torch.nn.functional one."""
    return [n for n in lossbook.__all__
            if callable(getattr(lossbook, n)) and (hasattr(torch.nn.functional, n) or hasattr(torch, n))
            and n not in ("default_device",)]


def test_every_torch_named_function_is_covered():
    assert sorted(torch_named()) == sorted(CONFORMANCE), (
        "add the torch-named lossbook functions to CONFORMANCE (or remove the ones that left)")


# --------------------------------------------------------------------------------------------
# The samples, generated once per (function, dtype, device)


def _module_call(cls_name: str, ctor_keys: frozenset):
    """``nn.<cls_name>(**constructor kwargs)(*args, **forward kwargs)`` from the one kwargs dict that
    lossbook's function receives (so both sides get the same fresh copies of any tensor in it)."""
    cls = getattr(torch.nn, cls_name)

    def call(*args, **kwargs):
        ctor = {k: v for k, v in kwargs.items() if k in ctor_keys}
        fwd = {k: v for k, v in kwargs.items() if k not in ctor_keys}
        return cls(**ctor)(*args, **fwd)

    return call


@functools.cache
def samples(name: str, dtype: torch.dtype, device: str) -> tuple[tuple[str, object, tuple, dict], ...]:
    """``(where, torch's callable, args, kwargs)`` for every sample of the function's OpInfos and
    ModuleInfo; lossbook's function is called with the same args and kwargs."""
    ops, module = CONFORMANCE[name]
    torch.manual_seed(0)  # the sample functions draw random tensors
    out = []
    for info in (o for o in op_db if o.name in ops):
        if dtype not in info.supported_dtypes(torch.device(device).type):
            continue
        tag = info.name + (f".{info.variant_test_name}" if info.variant_test_name else "")
        kinds = [("sample_inputs", info.sample_inputs)]
        if info.reference_inputs_func is not None:  # otherwise reference_inputs repeats sample_inputs
            kinds.append(("reference_inputs", info.reference_inputs))
        for kind, make in kinds:
            for i, s in enumerate(make(device, dtype, requires_grad=True)):
                out.append((f"{tag} {kind}[{i}]", info.op, (s.input, *s.args), dict(s.kwargs)))
    if module is not None:
        (info,) = [m for m in module_db if m.module_cls.__name__ == module]
        for i, s in enumerate(info.module_inputs_func(info, device=device, dtype=dtype, requires_grad=True,
                                                      training=True)):
            ctor, fwd = s.constructor_input, s.forward_input
            assert not ctor.args, f"{module} sample {i} has positional constructor arguments {ctor.args}"
            out.append((f"nn.{module} module_inputs[{i}]{' ' + s.desc if s.desc else ''}",
                        _module_call(module, frozenset(ctor.kwargs)),
                        tuple(fwd.args), {**fwd.kwargs, **ctor.kwargs}))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# One sample: lossbook against torch


def _fresh(tree):
    """A copy of every tensor in ``tree`` (same requires_grad), so that no call sees another's graph."""
    return pytree.tree_map_only(
        torch.Tensor, lambda t: t.detach().clone().requires_grad_(t.requires_grad), tree)


def _leaves(tree) -> list[torch.Tensor]:
    return [t for t in pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)]


def _grads(out, inputs, upstream):
    """Gradients of ``out`` w.r.t. each of ``inputs`` (None where torch cannot differentiate it)."""
    try:
        return list(torch.autograd.grad(out, inputs, upstream, retain_graph=True, allow_unused=True))
    except RuntimeError:  # e.g. "the derivative for 'target' is not implemented": try them one by one
        grads = []
        for x in inputs:
            try:
                grads.append(torch.autograd.grad(out, x, upstream, retain_graph=True, allow_unused=True)[0])
            except RuntimeError:
                grads.append(NotImplemented)
        return grads


def check_sample(fn, oracle, args: tuple, kwargs: dict, dtype: torch.dtype) -> str | None:
    """``None`` if lossbook's ``fn`` matches torch's ``oracle`` on this sample (or torch rejects it),
    else the reason. ``"rejected"`` if torch raises."""
    rtol, atol = TOLERANCES[dtype]
    ref_args, ref_kwargs = _fresh((args, kwargs))
    with warnings.catch_warnings(record=True) as torch_warnings:
        warnings.simplefilter("always")
        try:
            expected = oracle(*ref_args, **ref_kwargs)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            if traceback.extract_tb(e.__traceback__)[-1].filename == __file__:  # not torch: this harness
                return f"the harness failed to call torch: {type(e).__name__}: {e}"
            return "rejected"
    our_args, our_kwargs = _fresh((args, kwargs))
    before = [t.detach().clone() for t in _leaves((our_args, our_kwargs))]
    with warnings.catch_warnings(record=True) as our_warnings:
        warnings.simplefilter("always")
        try:
            got = fn(*our_args, **our_kwargs)
        except Exception as e:  # noqa: BLE001 - any refusal of what torch accepts is a divergence
            return f"raised {type(e).__name__}: {e}"
    for w in our_warnings:
        if not issubclass(w.category, lossbook.PitfallWarning):
            return f"warned {w.category.__name__}: {w.message}"
    if any("broadcast" in str(w.message) for w in torch_warnings) and not our_warnings:
        return "torch warns that it broadcasts, lossbook gives no PitfallWarning"
    problem = compare(expected, got, rtol=rtol, atol=atol, what="the value")
    if problem:
        return problem
    for i, (b, a) in enumerate(zip(before, _leaves((our_args, our_kwargs)))):
        if not torch.equal(b.nan_to_num(), a.detach().nan_to_num()) or not torch.equal(b.isnan(), a.isnan()):
            return f"input tensor {i} was modified in place"
    ref_inputs = [t for t in _leaves((ref_args, ref_kwargs)) if t.requires_grad]
    our_inputs = [t for t in _leaves((our_args, our_kwargs)) if t.requires_grad]
    if not ref_inputs or not expected.requires_grad:
        return None
    if not got.requires_grad:
        return "the result does not require grad"
    upstream = torch.randn(expected.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    upstream = upstream.to(expected)
    g_ref = _grads(expected, ref_inputs, upstream)
    g_ours = _grads(got, our_inputs, upstream)
    for i, (x, gr, go) in enumerate(zip(our_inputs, g_ref, g_ours)):
        if gr is NotImplemented:
            continue  # torch does not differentiate this input
        if go is NotImplemented:
            return f"lossbook cannot differentiate input {i}, torch can"
        gr = torch.zeros_like(x) if gr is None else gr
        go = torch.zeros_like(x) if go is None else go
        problem = compare(gr, go, rtol=10 * rtol, atol=10 * atol, what=f"the gradient w.r.t. input {i}")
        if problem:
            return problem
    return None


def _describe(args, kwargs) -> str:
    def show(a):
        return f"Tensor{tuple(a.shape)}:{str(a.dtype)[6:]}" if isinstance(a, torch.Tensor) else repr(a)
    return ", ".join([show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()])


def run(name: str, dtype: torch.dtype, device: str) -> tuple[int, int, list[str]]:
    """(samples run, samples torch rejected, divergences) for one function."""
    fn = getattr(lossbook, name)
    ran, rejected, problems = 0, 0, []
    for where, oracle, args, kwargs in samples(name, dtype, device):
        problem = check_sample(fn, oracle, args, kwargs, dtype)
        if problem == "rejected":
            rejected += 1
            continue
        ran += 1
        if problem:
            problems.append(f"{where} ({_describe(args, kwargs)}): {problem}")
    return ran, rejected, problems


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(CONFORMANCE))
def test_conformance(name, dtype, device):
    ran, _, problems = run(name, dtype, str(device))
    assert ran > 0, f"no sample of {name} ran in {dtype}"
    assert not problems, f"{len(problems)} of {ran} samples diverge from torch:\n" + "\n".join(problems[:8])


if __name__ == "__main__":  # the sample counts per function
    dev = str(test_device())
    print(f"{'function':34} " + " ".join(f"{str(d)[6:]:>18}" for d in DTYPES) + "   (run / rejected by torch)")
    total = 0
    for fname in CONFORMANCE:
        cells = []
        for d in DTYPES:
            n_ran, n_rej, n_bad = run(fname, d, dev)
            total += n_ran
            cells.append(f"{n_ran:>8} / {n_rej:<3}{'  !' + str(len(n_bad)) if n_bad else '':>5}")
        print(f"{fname:34} " + " ".join(f"{c:>18}" for c in cells))
    print(f"total samples run: {total}")
