"""Speed of lossbook's losses against PyTorch's, forward + backward (CONVENTIONS §5).

Run ``python -m benchmarks`` from the repository root. Each chapter registers its rows in a
module of this package named after the chapter (see ``benchmarks/softmax.py``); the harness in
``benchmarks/_harness.py`` times every row side by side in one run and writes a CSV, a
Markdown table and a figure to ``benchmarks/results/``.
"""
