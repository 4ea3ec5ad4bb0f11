#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages listed in scripts/debian-packages.txt (cross compilers and
# their C libraries, newlib, picolibc, QEMU user and system, a host compiler, Python venv support).
# Idempotent: installs only what is missing, with sudo when not root, never relying on Recommends.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/debian-packages.txt")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "error: missing packages ${missing[*]} and no apt-get (hilkit setup supports Debian/Ubuntu)" >&2
  exit 2
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
