#!/bin/sh
# Compiles a static binary and an image from scratch (no registry needed), then writes
# wetee.toml with the image's digest. Needs a C compiler and podman (or docker).
set -eu
cd "$(dirname "$0")"
engine=$(command -v podman || command -v docker)
cc -O2 -static -o tick tick.c
trap 'rm -f tick' EXIT
id=$("$engine" build -q -t localhost/wetee-tick:latest .)
image="localhost/wetee-tick@sha256:${id#sha256:}"
sed "s|@IMAGE@|$image|" wetee.toml.in > wetee.toml
echo "$image"
