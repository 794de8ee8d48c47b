"""Every public lossbook function documents its chapter, its shapes and an example."""
from __future__ import annotations

import ast
import inspect

import pytest

import lossbook

HELPERS = {"PitfallWarning", "default_device", "seed_everything", "show_source", "loss_and_grad", "exercises",
           "plotting"}
PUBLIC = sorted(n for n in lossbook.__all__ if n not in HELPERS)


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_sections(name):
    fn = getattr(lossbook, name)
    doc = inspect.getdoc(fn) or ""
    assert doc, f"{name} has no docstring"
    assert "Chapter:" in doc, f"{name}: the docstring must end with 'Chapter: <label>'"
    assert "Shape:" in doc, f"{name}: the docstring needs a Shape: block"
    assert "Example" in doc, f"{name}: the docstring needs an example"


BANNED = {
    "F.cross_entropy", "F.nll_loss", "F.log_softmax", "F.softmax", "torch.logsumexp", "torch.softmax",
    "torch.log_softmax", "F.ctc_loss", "F.kl_div", "F.binary_cross_entropy", "F.binary_cross_entropy_with_logits",
    "F.mse_loss", "F.l1_loss", "F.huber_loss", "F.smooth_l1_loss", "F.gaussian_nll_loss", "F.poisson_nll_loss",
    "F.multi_margin_loss", "F.multilabel_margin_loss", "F.multilabel_soft_margin_loss", "F.soft_margin_loss",
    "F.hinge_embedding_loss", "torch.nn.functional", "nn.functional", "torch.special.logsumexp",
    "torch.special.log_softmax", "torch.special.softmax", "torchvision",
}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


@pytest.mark.parametrize("module_name", sorted({getattr(lossbook, n).__module__ for n in PUBLIC}))
def test_loss_modules_do_not_call_the_torch_losses_they_teach(module_name):
    """From scratch, really (CONVENTIONS §1): no F.cross_entropy, F.log_softmax, torch.logsumexp... in code.

    Docstrings may name them; code (calls, attributes, imports) may not.
    """
    import importlib

    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name and any(name == b or name.startswith(b + ".") for b in BANNED):
                used.add(name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = getattr(node, "module", None) or ""
            names = [a.name for a in node.names]
            if mod.startswith(("torch.nn.functional", "torchvision")) or any(
                n.startswith(("torch.nn.functional", "torchvision")) for n in names
            ) or (mod == "torch.nn" and "functional" in names):
                used.add(mod or names[0])
    assert not used, f"{module_name} uses {sorted(used)}; lossbook writes losses from scratch"
