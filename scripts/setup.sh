#!/usr/bin/env bash
# Installs what mpibind needs on Debian 12 and builds it in build/.
# Sourced by demo.sh and test.sh; run as root (or with sudo available).
set -euo pipefail

MPIBIND_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$MPIBIND_TOP"

# Everything the build, the tests and the demo use, from Debian's archive.
# hwloc-nox (it conflicts with hwloc, whose lstopo has cairo): `mpibind
# --draw` makes PNG and PDF from its native SVG with rsvg-convert
# (librsvg2-bin), and uses hwloc's lstopo where that one is installed.
# python3-torch (PyTorch for CPU with gloo, and torchrun: the torch suite;
# about 30 s more to install) brings its own OpenMP and BLAS.  strace: a
# test checks which files a warm rank opens.
MPIBIND_PACKAGES=(
  gcc gfortran pkg-config meson ninja-build
  libhwloc-dev hwloc-nox check
  python3 python3-cffi python3-pytest python3-mpi4py
  openmpi-bin libopenmpi-dev mpich libmpich-dev
  slurmctld slurmd slurm-client munge libslurm-dev
  scdoc python3-mesonpy python3-venv librsvg2-bin
  clang libclang-rt-14-dev
  python3-torch strace
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${MPIBIND_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's meson: the build uses the system python3 (it has cffi, pytest,
# mpi4py), not an interpreter that PATH may put first.
if [ -d build ]; then
  meson setup --reconfigure build >/dev/null
else
  meson setup build >/dev/null
fi
meson compile -C build
