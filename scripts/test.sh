#!/usr/bin/env bash
# Sets up, builds and runs every test: the full suite, then the C suites
# again under AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

meson test -C build --print-errorlogs --num-processes 2

# Sanitized build: the library, the command, the preload, the C tests, the
# Python suite and the API checks, run through the `asan` test setup of
# tests/meson.build (sanitizer options, and live topologies without hwloc's
# leaking PCI plugin).  The setup leaves out the launcher suites: they start
# MPI launchers that are not built with ASan, so they run in the build above
# only.
if [ -d build-asan ]; then
  meson setup --reconfigure build-asan >/dev/null
else
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug >/dev/null
fi
meson compile -C build-asan
meson test -C build-asan --setup asan --print-errorlogs --num-processes 2
