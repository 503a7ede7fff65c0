#!/bin/sh
# Builds the image locally (no registry needed) and writes wetee.toml with its digest.
# Needs podman (or docker) and Debian's busybox-static.
set -eu
cd "$(dirname "$0")"
engine=$(command -v podman || command -v docker)
cp "$(command -v busybox)" busybox
trap 'rm -f busybox' EXIT
id=$("$engine" build -q -t localhost/wetee-hello:latest .)
image="localhost/wetee-hello@sha256:${id#sha256:}"
sed "s|@IMAGE@|$image|" wetee.toml.in > wetee.toml
echo "$image"
