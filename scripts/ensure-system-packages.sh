#!/usr/bin/env bash
# Installs the Debian packages the integration tests and the demo run for real (a Distribution registry,
# skopeo, umoci, containerd, htpasswd, openssl), only those that are missing.
set -euo pipefail

declare -A need=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [umoci]=umoci
  [ctr]=containerd
  [htpasswd]=apache2-utils
  [openssl]=openssl
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "kimg tests need these Debian packages: ${missing[*]}" >&2
  echo "run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi
