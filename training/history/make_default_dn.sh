#!/usr/bin/env bash
# The bundled default `symgnn_md_dn` (python/symgnn_ase/models/symgnn_md_dn.pt): the ensemble
# `symgnn_md` (training/make_default_md.sh) behind the thermal denoiser: STEPS steps of
# x += ALPHA * F(x) inside the model, F from the force network of training/runs/denoiser
# (training/train_denoiser.py: CuZr_mm.eam.fs forces on the training glasses and their MD
# snapshots). ALPHA and STEPS were picked on the validation glass with
# training/denoise_select.py (MODEL_CARD "Which one is the default").
set -euo pipefail
cd "$(dirname "$0")/.."
alpha="${ALPHA:-0.12}"
steps="${STEPS:-4}"
.venv/bin/symgnn denoise symgnn_md --force-net training/runs/denoiser --alpha "$alpha" \
  --steps "$steps" -o "${1:-python/symgnn_ase/models/symgnn_md_dn.pt}"
