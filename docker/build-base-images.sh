#!/usr/bin/env bash
# The images the stack needs besides the app's own, for machines that reach no image registry:
#   1. the app Dockerfile's base (python:3.11-slim): pulled when a registry answers, otherwise built
#      from Debian packages (debootstrap a minbase root file system, import it, add Debian's Python);
#   2. the Elasticsearch-compatible stand-in (noida-db from PyPI) as an image, for the stack test and
#      the containerized integration tests.
# Safe to run again: present images are kept, and Docker's layer cache makes the rest quick.
# docs/server.md ("Running the stack without a registry") explains when and why.
#
#   bash docker/build-base-images.sh           as root, with a Docker engine answering
#
# Environment: STANDIN_IMAGE (default qwen3-rerank/es-standin:local), CA_BUNDLE (the CA bundle pip
# trusts inside builds; default PIP_CERT or Debian's /etc/ssl/certs/ca-certificates.crt),
# DEBIAN_MIRROR (default: the mirror apt on this machine uses).
set -euo pipefail
cd "$(dirname "$0")/.."

STANDIN_IMAGE=${STANDIN_IMAGE:-qwen3-rerank/es-standin:local}
python_version=$(sed -n 's/^ARG PYTHON_VERSION=//p' docker/Dockerfile)
python_image="python:${python_version}-slim"
# The Debian release whose python3 is that version.
case "$python_version" in
  3.11) suite=bookworm ;;
  3.13) suite=trixie ;;
  *) echo "build-base-images: no Debian release ships Python $python_version; pull $python_image instead" >&2
     exit 1 ;;
esac

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# A directory holding the CA bundle, for `--build-context certs=...` (pip behind a TLS-inspecting proxy).
certs_dir=$(mktemp -d)
rootfs=""
trap 'rm -rf "$certs_dir" ${rootfs:+"$rootfs"}' EXIT
ca_bundle=${CA_BUNDLE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
[ -f "$ca_bundle" ] && cp "$ca_bundle" "$certs_dir/ca-certificates.crt"

debian_mirror() {
  local codename
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  apt-cache policy 2>/dev/null | awk -v s="$codename/main" '$3 == s && $2 ~ /^https?:/ { print $2; exit }'
}

build_python_from_debian() {
  local mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
  mirror=${mirror:-http://deb.debian.org/debian}
  local debian_image="qwen3-rerank/debian:$suite-minbase"
  if ! have_image "$debian_image"; then
    command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    rootfs=$(mktemp -d)
    echo "build-base-images: debootstrap $suite from $mirror"
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
      || { tail -n 20 "$rootfs.log"; rm -f "$rootfs.log"; exit 1; }
    rm -f "$rootfs.log"
    # Without the downloaded packages (120 MB), as Debian's own images.
    tar -C "$rootfs" --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/cache/apt/*.bin' -c . \
      | docker import - "$debian_image" >/dev/null
    rm -rf "$rootfs"
    rootfs=""
  fi
  docker build -q --build-arg DEBIAN_IMAGE="$debian_image" -t "$python_image" docker/python-base >/dev/null
}

started=$SECONDS
if have_image "$python_image"; then
  echo "build-base-images: $python_image is present"
elif timeout 300 docker pull -q "$python_image" >/dev/null 2>&1; then
  echo "build-base-images: pulled $python_image"
else
  echo "build-base-images: $python_image cannot be pulled; building it from Debian $suite packages"
  build_python_from_debian
  echo "build-base-images: built $python_image from Debian packages"
fi

noida_version=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("noida-db"))' 2>/dev/null \
  || sed -n 's/^ARG NOIDA_DB_VERSION=//p' docker/es-standin/Dockerfile)
docker build -q --build-context certs="$certs_dir" --build-arg PYTHON_IMAGE="$python_image" \
  --build-arg NOIDA_DB_VERSION="$noida_version" -t "$STANDIN_IMAGE" docker/es-standin >/dev/null
echo "build-base-images: $STANDIN_IMAGE (noida-db $noida_version) ready; $((SECONDS - started)) s in all"
