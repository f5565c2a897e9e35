#!/usr/bin/env bash
# The main job: set up, then show mpibind at work on this node.
#  1. the mapping of this node and of a GPU node (a Lassen node's XML);
#  2. a real MPI+OpenMP program launched with LD_PRELOAD=libmpibind-preload.so:
#     the preload's report, then each rank's actual affinity and threads;
#     the same under MPICH, and as if on the Lassen node (dry run);
#  3. the seed's Python example under mpirun.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

B=$MPIBIND_TOP/build
TOPO=$MPIBIND_TOP/tests/data/topologies
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

echo
echo "== The mapping of 2 tasks on this node: mpibind -n 2 --env"
"$B/tools/mpibind" -n 2 --env
if [ -r "$TOPO/coral-lassen.xml" ]; then
  echo
  echo "== A GPU node (Lassen: 2 sockets, 4 NVIDIA GPUs): mpibind -n 4 --topology coral-lassen.xml"
  "$B/tools/mpibind" -n 4 --topology "$TOPO/coral-lassen.xml"
fi

echo
for np in 1 2; do
  echo "== An MPI+OpenMP program, $np rank(s), bound by the preload (MPIBIND=v: verbose)"
  echo "   mpirun -np $np -x LD_PRELOAD=libmpibind-preload.so -x MPIBIND=v ./hello_affinity"
  timeout 120 mpirun --oversubscribe -np $np \
    -x LD_PRELOAD="$B/preload/libmpibind-preload.so" -x MPIBIND=v \
    "$B/examples/hello_affinity"
  echo
done

echo "== The same program under MPICH's mpiexec, 4 ranks on this 2-core node"
timeout 120 mpiexec.mpich -n 4 -genv LD_PRELOAD "$B/preload/libmpibind-preload.so" \
  "$B/examples/hello_affinity-mpich"

if [ -r "$TOPO/coral-lassen.xml" ]; then
  echo
  echo "== The same program as if on the Lassen node: MPIBIND_TOPOFILE=coral-lassen.xml MPIBIND=v,dryrun"
  echo "   (dryrun: each rank is told its threads and GPUs; this machine's CPUs stay as they are)"
  timeout 120 mpiexec.mpich -n 4 -genv LD_PRELOAD "$B/preload/libmpibind-preload.so" \
    -genv MPIBIND_TOPOFILE "$TOPO/coral-lassen.xml" -genv MPIBIND v,dryrun \
    "$B/examples/hello_affinity-mpich"
fi

echo
echo "== The seed's Python example (restrict_ids='0-7'), 4 ranks under mpirun"
timeout 120 env PYTHONPATH="$B/python" MPIBIND_LIBRARY="$B/lib/libmpibind.so" \
  mpirun --oversubscribe -np 4 /usr/bin/python3 "$MPIBIND_TOP/examples/mpibind_example.py"
