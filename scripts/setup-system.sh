#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages hilkit needs (cross compilers, newlib, QEMU user and system,
# a host compiler, Python venv support). Idempotent: installs only what is missing.
set -euo pipefail
pkgs=(build-essential python3-venv python3-dev
      qemu-user qemu-system-arm
      gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
      gcc-arm-none-eabi libnewlib-arm-none-eabi picolibc-aarch64-linux-gnu)
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
