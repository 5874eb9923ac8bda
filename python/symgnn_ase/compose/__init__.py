"""Composition of models: several models, or one model and a wrapper, in one model file.

One room, one module per concept, each holding its TorchScript module and how it is built
and written:

- ``spread.py``: :class:`MeanAndSpread`, the one mean and standard deviation over members
  (the ensemble methods of ``docs/contracts.md``), for every module with several estimates per
  atom (ensembles, smoothed ensembles, ``nn/shallow.py``'s heads);
- ``stack.py``: :class:`Stack`, models side by side (the layout of ensembles and residuals);
- ``ensemble.py``: their mean and spread (``symgnn ensemble``);
- ``residual.py``: a baseline plus networks trained on what it leaves (``symgnn residual``);
- ``smooth.py``: predictions averaged over neighbouring atoms (``symgnn smooth``);
- ``load.py``: the one loader of members (model files, bundled names, run folders,
  checkpoints) and the checks members share;
- ``record.py``: writing a composed file with its members' or base's records in ``info``;
- ``recipe.py``: a composed file from a TOML recipe, the recipe kept in ``info``
  (``symgnn compose``), and what a file says about how it was made (``symgnn info``).

Import the names from their module (``from symgnn_ase.compose.ensemble import
export_ensemble``): this file imports nothing, so ``nn/shallow.py`` can import ``spread``
alone.
"""
