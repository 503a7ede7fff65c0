#!/usr/bin/env bash
# Installs the system packages WeTEE needs on Debian/Ubuntu, and configures Podman, changing only
# what is missing. Shared by scripts/dev.sh (the README's run command) and .ci/run.
#
#   build-essential, pkg-config, ca-certificates  build the Rust workspace (crates with C parts)
#   podman, runc                                   the container engine of the dev worker and the tests
#   slirp4netns, uidmap, fuse-overlayfs            rootless Podman (published ports, user namespaces)
#   busybox-static                                 builds the example and test images without a registry
#   iptables                                       the rules of workloads denied egress (network.egress = "none")
#
# With --tests, also what the web console's tests need (only CI and developers running them):
#   chromium                                       the browser the console's tests drive (playwright-core)
#   nodejs, npm                                    build the console and run its tests, if no Node is installed
set -euo pipefail

packages=(build-essential pkg-config ca-certificates podman runc slirp4netns uidmap fuse-overlayfs busybox-static iptables)
case "${1:-}" in
  "" | --tests) ;;
  *)
    echo "usage: $0 [--tests]" >&2
    exit 2
    ;;
esac
if [ "${1:-}" = "--tests" ]; then
  packages+=(chromium)
  # A Node installed another way (nvm, NodeSource) is kept.
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "this step needs root: run as root, or install sudo, then run again:" >&2
    echo "  $*" >&2
    exit 1
  fi
}

if command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  for tool in podman runc busybox cc pkg-config; do
    command -v "$tool" >/dev/null || {
      echo "$tool is missing and this is not a Debian/Ubuntu machine: install ${packages[*]} (or your" >&2
      echo "distribution's equivalents) and run again" >&2
      exit 1
    }
  done
fi

# crun fails on some kernels' cgroups while runc works, and the host's ulimits can exceed what a
# container may set: tell Podman so in a drop-in of our own, leaving containers.conf alone.
# Each container gets its own range of host user ids (`userns = auto`, docs/worker.md): Podman
# takes them from its `containers` user's subordinate ranges.
for file in /etc/subuid /etc/subgid; do
  if ! grep -qs '^containers:' "$file"; then
    echo 'containers:2147483647:2147483648' | as_root tee -a "$file" >/dev/null
  fi
done

dropin=/etc/containers/containers.conf.d/50-wetee.conf
if [ ! -f "$dropin" ]; then
  as_root mkdir -p "$(dirname "$dropin")"
  printf '# Written by WeTEE'"'"'s scripts/install-system-packages.sh.\n[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' |
    as_root tee "$dropin" >/dev/null
fi
