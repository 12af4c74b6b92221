#!/usr/bin/env bash
# Renders assets/icon.svg into the PNG sizes the Linux desktop (hicolor
# theme) and the window use, and into assets/icon.ico for the Windows exe.
# The results are committed, so builds need neither tool; run this again
# after changing the SVG. Needs rsvg-convert (librsvg2-bin) and icotool
# (icoutils).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in rsvg-convert icotool; do
  if ! command -v "$tool" >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends librsvg2-bin icoutils
    break
  fi
done

mkdir -p assets/icons
for size in 16 24 32 48 64 128 256; do
  rsvg-convert --width "$size" --height "$size" assets/icon.svg -o "assets/icons/icon-$size.png"
done
icotool --create --output assets/icon.ico \
  assets/icons/icon-{16,24,32,48,64,128}.png --raw=assets/icons/icon-256.png
ls -l assets/icon.ico assets/icons/
