#!/usr/bin/env bash
# Writes the licence notices the app ships: assets/licenses/crates.tsv
# (every crate in Cargo.lock with its version and SPDX licence, shown in
# the app's „Über“ dialog and installed beside the binary) and the licence
# texts of the fonts egui bundles (assets/licenses/fonts/). Run it after
# changing dependencies; tests/packaging.rs fails until it is.
set -euo pipefail
cd "$(dirname "$0")/.."

# The program comes on fd 3, so the metadata can arrive on stdin.
cargo metadata --format-version 1 --locked | python3 /dev/fd/3 3<<'PY'
import json, os, shutil, sys

meta = json.load(sys.stdin)
root = set(meta["workspace_members"])
rows, fonts_dir = [], None
for package in meta["packages"]:
    if package["id"] in root:
        continue
    licence = package.get("license") or (
        "siehe Lizenzdatei / see licence file" if package.get("license_file") else "unbekannt / unknown"
    )
    rows.append((package["name"], package["version"], licence))
    if package["name"] == "epaint_default_fonts":
        fonts_dir = os.path.join(os.path.dirname(package["manifest_path"]), "fonts")
rows.sort(key=lambda row: (row[0], row[1]))
with open("assets/licenses/crates.tsv", "w") as out:
    out.write("crate\tversion\tlicense\n")
    for row in rows:
        out.write("\t".join(row) + "\n")
os.makedirs("assets/licenses/fonts", exist_ok=True)
for name in ["UFL.txt", "OFL.txt", "Hack-Regular.txt", "emoji-icon-font-mit-license.txt"]:
    shutil.copyfile(os.path.join(fonts_dir, name), os.path.join("assets/licenses/fonts", name))
print(f"{len(rows)} crates, font licences from {fonts_dir}")
PY
