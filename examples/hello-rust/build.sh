#!/bin/sh
# Builds a static binary and an image from scratch (no registry needed), then writes
# wetee.toml with the image's digest. Needs cargo and podman (or docker).
set -eu
cd "$(dirname "$0")"
engine=$(command -v podman || command -v docker)
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet --target "$target"
cp "target/$target/release/hello-rust" hello-rust
trap 'rm -f hello-rust' EXIT
id=$("$engine" build -q -t localhost/wetee-hello-rust:latest .)
image="localhost/wetee-hello-rust@sha256:${id#sha256:}"
sed "s|@IMAGE@|$image|" wetee.toml.in > wetee.toml
echo "$image"
