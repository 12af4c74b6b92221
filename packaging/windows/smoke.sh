#!/usr/bin/env bash
# Smoke test of the Windows installer under Wine, in a fresh Wine prefix:
# the installer runs silently (/S), the installed exe answers --version,
# starts the sandbox and runs a headless sync against it with exit code 0,
# and the silent uninstaller removes the program but keeps the user's data.
#   packaging/windows/smoke.sh [target/windows/ivoris-hubspot-sync-setup-VERSION.exe]
# Installs Debian's wine when missing. Prints what each step printed.
set -euo pipefail
cd "$(dirname "$0")/../.."

installer=${1:-$(ls -t target/windows/ivoris-hubspot-sync-setup-*.exe | head -n 1)}
installer=$(realpath "$installer")
if ! command -v wine >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wine wine64
fi

work=$(mktemp -d /tmp/ivoris-wine-smoke.XXXXXX)
export WINEPREFIX="$work/prefix" WINEDEBUG=-all
# No Mono or Gecko download prompts: the program needs neither.
export WINEDLLOVERRIDES="mscoree=;mshtml="
sandbox_pid=
cleanup() {
  if [[ -n $sandbox_pid ]]; then kill "$sandbox_pid" 2>/dev/null || true; fi
  wineserver -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "Wine prefix"
wine --version
wineboot --init >/dev/null 2>&1
wineserver -w
system32="$WINEPREFIX/drive_c/windows/system32"
if [[ ! -e $system32/bcryptprimitives.dll ]]; then
  # Wine 8 lacks it; Rust's std needs its ProcessPrng (see the .c file).
  x86_64-w64-mingw32-gcc -O2 -shared -o "$system32/bcryptprimitives.dll" \
    packaging/windows/wine-bcryptprimitives.c -ladvapi32
  echo "bcryptprimitives.dll: stand-in for Wine $(wine --version) (test prefix only)"
fi

step "install: $(basename "$installer") ($(stat -c %s "$installer") bytes) /S"
wine "$installer" /S
exe=$(find "$WINEPREFIX/drive_c/users" -path '*/AppData/Local/Programs/ivoris-hubspot-sync/ivoris-hubspot-sync.exe' | head -n 1)
[[ -n $exe ]] || { echo "not installed under %LOCALAPPDATA%\\Programs" >&2; exit 1; }
appdir=$(dirname "$exe")
profile=${appdir%/AppData/Local/Programs/ivoris-hubspot-sync}
echo "installed: $(winepath -w "$exe")"
ls "$appdir" "$appdir/licenses"
ls "$profile/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/" | grep -F 'Ivoris'

step "--version"
wine "$exe" --version

step "sandbox --size small --port 0"
config="$work/sandbox.toml"
wine "$exe" sandbox --size small --port 0 --write-config "$(winepath -w "$config")" \
  >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 120); do
  [[ -s $config ]] && break
  kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.log"; exit 1; }
  sleep 1
done
[[ -s $config ]] || { cat "$work/sandbox.log"; echo "sandbox did not start" >&2; exit 1; }
cat "$work/sandbox.log"

step "sync (headless)"
export HUBSPOT_TOKEN=sandbox-hubspot-token IVORIS_PASSWORD=sandbox-password IVORIS_API_KEY=sandbox-api-key
data="$(winepath -w "$work/data")"
set +e
timeout 600 wine "$exe" --config "$(winepath -w "$config")" --data-dir "$data" sync
code=$?
set -e
echo "sync exit code: $code"
[[ $code -eq 0 ]] || exit 1

step "status"
wine "$exe" --config "$(winepath -w "$config")" --data-dir "$data" status

step "install again /S /TASK: the scheduled task"
# Wine's schtasks knows only /Create /XML and refuses /SC; Windows creates
# the task from the same command. So here the installer must say that the
# task could not be created, finish with exit code 0 and leave a working
# program; the command it ran is printed from Wine's trace.
set +e
WINEDEBUG=+schtasks wine "$installer" /S /TASK >"$work/task.log" 2>&1
code=$?
set -e
echo "installer exit code: $code"
[[ $code -eq 0 ]] || { cat "$work/task.log"; exit 1; }
grep -F 'schtasks:wmain' "$work/task.log" | grep -F '/Create' | sed 's/^[0-9a-f]*://'
grep -F 'schtasks:' "$work/task.log" | grep -F 'Unsupported' | sed 's/^[0-9a-f]*://' || true
wine "$exe" --version

step "uninstall /S keeps the user's data"
kill "$sandbox_pid" 2>/dev/null || true
sandbox_pid=
kept="$profile/AppData/Roaming/ivoris-hubspot-sync/data/ledger.sqlite"
mkdir -p "$(dirname "$kept")"
echo ledger >"$kept"
# _?= runs the uninstaller in place, so this waits for it.
wine "$appdir/Uninstall.exe" /S "_?=$(winepath -w "$appdir")"
[[ ! -e $exe ]] || { echo "the exe is still there" >&2; exit 1; }
[[ -e $kept ]] || { echo "the ledger was deleted" >&2; exit 1; }
echo "program removed, $(winepath -w "$kept") kept"

step "smoke test passed"
