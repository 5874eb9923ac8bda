#!/usr/bin/env bash
# The bundled default `symgnn_md` (python/symgnn_ase/models/symgnn_md.pt): one ensemble file of
#   - symgnn_length  the relaxed-glass edge-length model (training/runs/length)
#   - equivariant    the PaiNN-style model with position noise (training/runs/equivariant_noise)
#   - length_md_bn_ft and length_md: edge-length models trained on relaxed + thermal frames
#     (examples/train/length_md_bn.yaml then length_md_bn_ft.yaml; examples/train/length_md.yaml)
# (length_md_ft, the second stage of length_md, lowered the relaxed score of the file to 0.6408:
# below the rule, so its first stage is the member)
# Every member is exactly invariant; the file predicts their mean and, per atom, their std.
# Selection rule (MODEL_CARD "Which one is the default"): validation Pearson on the relaxed glass
# not below the previous default's 0.6445, every member exactly invariant, then the highest mean
# of the pooled validation Pearsons on the relaxed glass and its 300 K and 600 K snapshots.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
$bin/symgnn export training/runs/length_md_bn_ft -o "$tmp/length_md_bn_ft.pt"
$bin/symgnn export training/runs/length_md -o "$tmp/length_md.pt"
$bin/symgnn ensemble symgnn_length equivariant "$tmp/length_md_bn_ft.pt" "$tmp/length_md.pt" \
  -o "${1:-python/symgnn_ase/models/symgnn_md.pt}"
