#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (release profile) and checks it:
# dpkg-deb --info and --contents, the files a desktop needs, then an
# install without root or container — `dpkg -x` into a temporary root — and
# the binary started from there with --version.
#   packaging/linux/build-deb.sh        → target/debian/ivoris-hubspot-sync_VERSION-1_amd64.deb
#   DEB_PROFILE=dev packaging/linux/build-deb.sh
#     checks the packaging with the debug build (minutes instead of a full
#     release build); never ship that one.
# Installs cargo-deb (and dpkg-dev for dpkg-shlibdeps) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v dpkg-shlibdeps >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev
fi
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi

deb=$(cargo deb --locked --profile "${DEB_PROFILE:-release}" | tail -n 1)
[[ -f $deb ]] || { echo "cargo deb did not name a package: $deb" >&2; exit 1; }

echo "== dpkg-deb --info $deb"
dpkg-deb --info "$deb"
echo "== dpkg-deb --contents"
contents=$(dpkg-deb --contents "$deb")
echo "$contents"

fail() { echo "FEHLER / ERROR: $*" >&2; exit 1; }
for path in \
  ./usr/bin/ivoris-hubspot-sync \
  ./usr/share/applications/ivoris-hubspot-sync.desktop \
  ./usr/share/icons/hicolor/scalable/apps/ivoris-hubspot-sync.svg \
  ./usr/share/icons/hicolor/48x48/apps/ivoris-hubspot-sync.png \
  ./usr/share/icons/hicolor/256x256/apps/ivoris-hubspot-sync.png \
  ./usr/lib/systemd/user/ivoris-hubspot-sync.service \
  ./usr/lib/systemd/user/ivoris-hubspot-sync.timer \
  ./usr/share/doc/ivoris-hubspot-sync/copyright \
  ./usr/share/doc/ivoris-hubspot-sync/licenses/crates.tsv \
  ./usr/share/doc/ivoris-hubspot-sync/licenses/fonts/OFL.txt; do
  grep -qF " $path" <<<"$contents" || fail "$path fehlt / is missing"
done
depends=$(dpkg-deb --field "$deb" Depends)
for library in libc6 libxkbcommon0 libwayland-client0 libx11-6 libegl1; do
  grep -qw "$library" <<<"$depends" || fail "Depends ohne / without $library: $depends"
done

root=$(mktemp -d /tmp/ivoris-deb-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
dpkg -x "$deb" "$root"
echo "== dpkg -x $deb $root"
"$root/usr/bin/ivoris-hubspot-sync" --version
file "$root/usr/bin/ivoris-hubspot-sync" 2>/dev/null || true
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$root/usr/share/applications/ivoris-hubspot-sync.desktop"
fi
echo "== $(stat -c %s "$deb") bytes: $deb"
