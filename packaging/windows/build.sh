#!/usr/bin/env bash
# Cross-builds the Windows release of ivoris-hubspot-sync from Linux and
# packs it into the NSIS installer:
#   target/x86_64-pc-windows-gnu/release/ivoris-hubspot-sync.exe
#   target/windows/ivoris-hubspot-sync-setup-VERSION.exe
# Installs what it needs when missing (the rustup target, Debian's MinGW
# and NSIS), so a fresh machine or CI can run it.
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET=x86_64-pc-windows-gnu

# Debian packages that provide the commands below.
missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
command -v makensis >/dev/null || missing+=(nsis)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
  rustup target add "$TARGET"
fi

cargo build --release --locked --target "$TARGET" --bin ivoris-hubspot-sync

version=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["packages"][0]["version"])')
exe="target/$TARGET/release/ivoris-hubspot-sync.exe"
mkdir -p target/windows
installer="target/windows/ivoris-hubspot-sync-setup-$version.exe"

# makensis resolves File paths relative to the script; absolute ones are
# unambiguous.
makensis -V2 -INPUTCHARSET UTF8 \
  -DVERSION="$version" \
  -DEXE="$PWD/$exe" \
  -DLICENSES="$PWD/assets/licenses" \
  -DICON="$PWD/assets/icon.ico" \
  -DOUTFILE="$PWD/$installer" \
  packaging/windows/installer.nsi

ls -l "$exe" "$installer"
echo "$installer"
