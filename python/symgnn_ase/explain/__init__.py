"""Which neighbors drive an atom's predicted barrier: GNNExplainer for node regression.

``core`` holds the mask optimization (:class:`Explainer`), ``graph`` the receptive
field, ``tables`` the CSV/statistics, ``plots`` the pictures and ``structure`` what
``symgnn explain`` does with one structure file. See ``docs/explain.md``.
"""

from __future__ import annotations

from .core import ExplainConfig, Explainer, Explanation
from .graph import ExplainGraph, Subgraph, build_explain_graph, extract_subgraph
from .structure import explain_structure
from .tables import importance_vs_distance, write_edges_csv

__all__ = [
    "ExplainConfig",
    "ExplainGraph",
    "Explainer",
    "Explanation",
    "Subgraph",
    "build_explain_graph",
    "explain_structure",
    "extract_subgraph",
    "importance_vs_distance",
    "write_edges_csv",
]
