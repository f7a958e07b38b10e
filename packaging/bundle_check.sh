#!/bin/sh
# Smoke test of the one-folder bundle (make bundle-check): with empty settings, data and torch
# caches, offscreen, (1) the app starts, opens the built-in demo and shows its first image;
# (2) the bundled CLI copies the bundled ImageNet MobileNetV2 weights into the empty cache and
# predicts the demo images with them (torch + torchvision + weights inside the bundle).
set -eu
BUNDLE=${1:-dist/segloop}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CONFIG_HOME="$tmp/config" XDG_DATA_HOME="$tmp/data" XDG_CACHE_HOME="$tmp/cache"
export TORCH_HOME="$tmp/torch" QT_QPA_PLATFORM=offscreen SEGLOOP_OFFLINE=1
start=$(date +%s)
"$BUNDLE/segloop" --check
end=$(date +%s)
echo "bundle-check: GUI start + demo shown in $((end - start)) s"
"$BUNDLE/segloop" cli weights --ensure
"$BUNDLE/segloop" cli predict --images "$XDG_DATA_HOME/segloop/demo" --out "$tmp/predicted" --device cpu
test "$(ls "$tmp/predicted" | wc -l)" -ge 12
echo "bundle-check: OK ($(du -sh "$BUNDLE" | cut -f1) in $BUNDLE)"
