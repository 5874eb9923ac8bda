#!/usr/bin/env bash
# training/results/member_mix.json: candidate members for the default's ensemble, scored on
# validation (MODEL_CARD "Toward 0.68 on validation"). Every candidate runs behind the
# default's thermal denoiser (4 steps, alpha 0.12) and is smoothed as the default smooths:
#   gnn.0-3     the four networks of symgnn_md (the bundled symgnn_md_dn)
#   ridge_dn    the default's ridge (examples/train/ridge_dn.yaml, fitted on denoised glasses)
#   ridge_raw5  the same descriptor fitted on the raw relaxed glasses (examples/train/ridge_raw5.yaml)
#   res         ridge_dn + the network trained on its residual (examples/train/length_res.yaml)
# About 10 min of one core; predictions are cached in $CACHE (default /tmp/member_mix).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
denoise() { $bin/symgnn denoise "$1" --force-net training/runs/denoiser --alpha 0.12 --steps 4 -o "$2"; }
$bin/symgnn export training/runs/ridge_dn -o "$tmp/ridge_dn.pt"
$bin/symgnn export training/runs/ridge_raw5 -o "$tmp/ridge_raw5.pt"
# length_res learned the residual of ridge_dn behind the denoiser; here the pair is denoised
# as a whole afterwards, so the base file differs from the one it trained on: --any-baseline
$bin/symgnn residual "$tmp/ridge_dn.pt" training/runs/length_res --any-baseline -o "$tmp/res.pt"
denoise "$tmp/ridge_dn.pt" "$tmp/ridge_dn_dn.pt"
denoise "$tmp/ridge_raw5.pt" "$tmp/ridge_raw5_dn.pt"
denoise "$tmp/res.pt" "$tmp/res_dn.pt"
g="gnn.0+gnn.1+gnn.2+gnn.3"
cd training
../$bin/python member_mix.py --cache "${CACHE:-/tmp/member_mix}" \
  --member gnn=symgnn_md_dn --member "ridge_dn=$tmp/ridge_dn_dn.pt" \
  --member "ridge_raw5=$tmp/ridge_raw5_dn.pt" --member "res=$tmp/res_dn.pt" \
  --combo "current=$g+ridge_dn" --combo "res alone=res" --combo "ridge_dn alone=ridge_dn" \
  --combo "ridge_raw5 alone=ridge_raw5" --combo "raw5=$g+ridge_raw5" \
  --combo "res for ridge=$g+res" --combo "ridge_dn+res=$g+ridge_dn+res" \
  --combo "raw5+res=$g+ridge_raw5+res" \
  --combo "no equivariant, raw5+res=gnn.0+gnn.2+gnn.3+ridge_raw5+res" \
  --combo "no length_md_bn_ft, raw5+res=gnn.0+gnn.1+gnn.3+ridge_raw5+res" \
  --combo "2x res=$g+res+res" \
  --json results/member_mix.json
