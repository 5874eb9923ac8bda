#!/usr/bin/env bash
# The bundled default `symgnn_md_dns` (python/symgnn_ase/models/symgnn_md_dns.pt): the denoised
# ensemble `symgnn_md_dn` (training/make_default_dn.sh) with its per-atom predictions (every
# member's) averaged over the neighbours within r_max: weight exp(-r/LENGTH) times a cosine
# cutoff at r_max, the atom itself weight 1 (`symgnn smooth`, python/symgnn_ase/nn/smooth.py).
# LENGTH and the cutoff form were picked on the relaxed validation glass alone with
# training/smooth_select.py (MODEL_CARD "Which one is the default").
set -euo pipefail
cd "$(dirname "$0")/.."
length="${LENGTH:-4.0}"
.venv/bin/symgnn smooth python/symgnn_ase/models/symgnn_md_dn.pt --length "$length" \
  --cutoff cosine -o "${1:-python/symgnn_ase/models/symgnn_md_dns.pt}"
