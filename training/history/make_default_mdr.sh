#!/usr/bin/env bash
# The bundled default `symgnn_mdr_dns` (python/symgnn_ase/models/symgnn_mdr_dns.pt): the four
# networks of `symgnn_md` (training/make_default_md.sh) and the ridge `ridge_dn`
# (examples/train/ridge_dn.yaml: the descriptor on the same 5 Å graph, three hops of averaging,
# fitted on the positions the denoiser moves the atoms to) in one ensemble of five (the ridge
# weighs 1/5 of the mean), behind the thermal denoiser of `symgnn_md_dn`
# (training/make_default_dn.sh: 4 steps of x += 0.12 Å²/eV F(x)), then every member's
# predictions averaged over the neighbours (exp(-r/4 Å), cosine cutoff at r_max:
# training/make_default_dns.sh). Picked on validation only (MODEL_CARD "Which one is the
# default"; training/ridge_denoised.py measured the blend first).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ ! -f training/runs/ridge_dn/best.pt ]; then
  $bin/python -m symgnn_ase.train.ridge examples/train/ridge_dn.yaml
fi
$bin/symgnn export training/runs/ridge_dn -o "$tmp/ridge_dn.pt"
$bin/symgnn export training/runs/length_md_bn_ft -o "$tmp/length_md_bn_ft.pt"
$bin/symgnn export training/runs/length_md -o "$tmp/length_md.pt"
$bin/symgnn ensemble symgnn_length equivariant "$tmp/length_md_bn_ft.pt" "$tmp/length_md.pt" \
  "$tmp/ridge_dn.pt" -o "$tmp/mdr.pt"
$bin/symgnn denoise "$tmp/mdr.pt" --force-net training/runs/denoiser --alpha 0.12 --steps 4 \
  -o "$tmp/mdr_dn.pt"
$bin/symgnn smooth "$tmp/mdr_dn.pt" --length 4.0 --cutoff cosine \
  -o "${1:-python/symgnn_ase/models/symgnn_mdr_dns.pt}"
