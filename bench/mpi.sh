#!/bin/sh
# make bench-mpi: data-parallel pretraining on this machine, 1 rank against 2
# (one thread each, the same global batch), for the demo and 15m configs:
# training tokens/s, the speed-up, and the all-reduce time per step (over
# loopback shared memory here; see the README for what it means across hosts).
# The 2-rank run is repeated with RLHF_DIST_SYNC=1 (a barrier before each
# all-reduce), whose all-reduce time is the transfer alone, without the wait
# for the slower rank. STEPS and BATCH override the run length and the global batch.
BUILD=${BUILD:-build}
RLHF=$(cd "$(dirname "$BUILD/rlhf")" && pwd)/rlhf
"$RLHF" --version | grep -q "^MPI: not compiled in" && { echo "bench-mpi: MPI not compiled in (make deps, then rebuild)"; exit 1; }
command -v mpirun >/dev/null || { echo "bench-mpi: no mpirun (make deps)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
STEPS=${STEPS:-10}
BATCH=${BATCH:-8}
ROOT=$(pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/rlhf-bench-mpi.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
"$RLHF" tokenizer train --vocab 512 --out tok512.bin "$ROOT/samples/corpus.txt" >/dev/null 2>&1 || exit 1
echo "# rlhf bench-mpi $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores; $("$RLHF" --version | sed -n 's/^MPI: //p'); 1 thread per rank"
for cfg in demo 15m; do
    # 15m has a 32000-token vocabulary: a tokenizer of 512 keeps the corpus small,
    # so the model is 15m's shape but for the embedding rows
    base=
    for np in 1 2; do
        [ "$np" = 1 ] && run="" || run="mpirun -np $np --bind-to core"
        # a second 2-rank run with a barrier before each all-reduce: its time alone
        for sync in 0 1; do
        [ "$np" = 1 ] && [ $sync = 1 ] && continue
        export RLHF_DIST_SYNC=$sync
        $run "$RLHF" pretrain --corpus "$ROOT/samples/corpus.txt" --tokenizer tok512.bin --config $cfg \
            --steps "$STEPS" --batch "$BATCH" --eval-every "$STEPS" --val-frac 0.01 --threads 1 \
            --out "$cfg-$np.ckpt" --force >out.txt 2>err.txt || { cat err.txt; exit 1; }
        tps=$(sed -n 's/.*, \([0-9]*\) tokens\/s$/\1/p' err.txt | tail -n 1)
        ar=$(sed -n 's/.*all-reduce of \([0-9]*\) floats: \([0-9.]*\) ms per step/\2 ms (\1 floats)/p' err.txt)
        params=$(sed -n 's/^pretrain: \([0-9]*\) parameters.*/\1/p' err.txt)
        [ -z "$base" ] && base=$tps
        speedup=$(awk -v a="$tps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
        [ $sync = 1 ] && what=allreduce_transfer_per_step || what=allreduce_per_step
        echo "mpi_pretrain config=$cfg params=$params ranks=$np global_batch=$BATCH steps=$STEPS tokens_per_s=$tps speedup=$speedup $what=${ar:-none}"
        done
    done
done
