#!/usr/bin/env bash
# Sets up, builds and runs every test: the full suite, then the C suites
# again under AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

meson test -C build --print-errorlogs --num-processes 2

# Sanitized build: the library, the command, the preload, the C tests, and
# the Python suite (its meson.build preloads the sanitizer runtimes into the
# uninstrumented interpreter).  The launcher suites start MPI launchers that
# are not built with ASan, so they run in the build above only.
# Debian's hwloc PCI plugin leaks (through libpciaccess) and is unloaded
# before LeakSanitizer looks, so the leak cannot even be named in a
# suppression: the sanitized run discovers live topologies without it
# (this machine has no PCI GPU; the GPU rules are tested on XML files).
if [ -d build-asan ]; then
  meson setup --reconfigure build-asan >/dev/null
else
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug >/dev/null
fi
meson compile -C build-asan
HWLOC_PLUGINS_BLACKLIST=hwloc_pci UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs --num-processes 2 \
  --suite unit --suite cli --suite preload --suite python
