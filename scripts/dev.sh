#!/usr/bin/env bash
# The README's run command: on a fresh Debian/Ubuntu machine it installs what is missing (with
# sudo when not root), builds `wetee`, builds the hello example's image, and starts the dev cloud
# (`wetee dev`: a chain and a worker on Podman). Arguments go to `wetee dev`: --fresh, --verbose,
# --exit-when-ready (start, check that the worker serves, stop), ...
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-packages.sh

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust 1.95 or later with rustup (https://rustup.rs), then run" >&2
  echo "  bash scripts/dev.sh" >&2
  exit 1
fi

echo "building wetee (a release build; the first one takes about ten minutes)"
cargo build --release --locked -p wetee-cli

echo "building the hello example's image (examples/hello/wetee.toml)"
sh examples/hello/build.sh

exec target/release/wetee dev "$@"
