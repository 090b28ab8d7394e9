#!/bin/sh
# Data-parallel training under mpirun: the same global batch on 1 and on 2
# ranks gives the same loss curve and checkpoint (to float rounding); rank 0
# alone writes the store and stdout; kill -9 then --resume works; commands
# that do not split their batch refuse to run as N copies. Skips (77) when the
# binary has no MPI or mpirun is missing, and fails then under make test,
# which installs OpenMPI first (a build from before is rebuilt).
. "$ROOT/tests/e2e/lib.sh"
"$RLHF" --version | grep -q "^MPI: not compiled in" && skip_missing "MPI not compiled in"
command -v mpirun >/dev/null || skip_missing "no mpirun"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp \
    OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_rmaps_base_oversubscribe=1 \
    OPENBLAS_NUM_THREADS=1 OMPI_MCA_mca_base_component_disable_dlclose=1
# under make test-san: OpenMPI's plugins stay loaded and malloc stacks are
# unwound in full, so LeakSanitizer can tell OpenMPI's leftovers (tests/lsan.supp)
[ -n "${RLHF_SAN:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:-}:fast_unwind_on_malloc=0"
mpi() { _np=$1; shift; mpirun -np "$_np" --bind-to none "$@"; }
# kill_rank CKPT CMD...: runs CMD on 2 ranks in the background (stdout k.out,
# stderr k.err), kills one rank with SIGKILL once CKPT exists, as a crash
# would, and checks mpirun then failed and the run had not ended
kill_rank() {
    _ck=$1; shift
    mpirun -np 2 --bind-to none "$@" >k.out 2>k.err &
    _job=$!
    _i=0
    while [ ! -e "$_ck" ] && [ $_i -lt 600 ]; do sleep 0.02; _i=$((_i + 1)); done
    sleep 0.2
    _rank=$(pgrep -P $_job | tail -n 1)
    [ -n "$_rank" ] || die "no rank process under mpirun"
    kill -9 "$_rank"
    wait $_job && die "mpirun succeeded after a rank was killed: $*"
    grep -q "^trained" k.out && die "the run ended before the kill: $*"
    return 0
}
CORPUS="$ROOT/samples/corpus.txt"
PY=/usr/bin/python3
# curve DB NAME: "step value" lines of a metric
curve() { $PY -c 'import sqlite3,sys
for s,v in sqlite3.connect(sys.argv[1]).execute("select step,value from metrics where name=? order by step",(sys.argv[2],)): print(s,repr(v))' "$1" "$2"; }
# same_curve A B NAME: equal steps, values within 1e-4 relative (absolute below 0.01)
same_curve() {
    curve "$1" "$3" > ca.txt; curve "$2" "$3" > cb.txt
    [ -s ca.txt ] || die "no $3 curve in $1"
    $PY -c 'import sys
a=[l.split() for l in open("ca.txt")]; b=[l.split() for l in open("cb.txt")]
assert [x[0] for x in a]==[x[0] for x in b], "steps differ"
d=max(abs(float(x[1])-float(y[1]))/max(1e-2,abs(float(x[1]))) for x,y in zip(a,b))
print("'"$3"': %d steps, max relative difference %.2g" % (len(a), d))
sys.exit(0 if d < 1e-4 else 1)' || die "$3 curves differ between $1 and $2"
}

expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"

# ---- pretrain ----------------------------------------------------------------
P="--corpus $CORPUS --tokenizer tok.bin --config tiny --steps 12 --batch 6 --accum 2 --lr 3e-3 --eval-every 4"
expect_rc 0 "$RLHF" init one.db
expect_rc 0 "$RLHF" init two.db
expect_rc 0 "$RLHF" pretrain --db one.db $P --out one.ckpt
expect_rc 0 mpi 2 "$RLHF" pretrain --db two.db $P --out two.ckpt
# rank 0 alone on stdout
[ "$(grep -c "trained 12 steps" out.txt)" = 1 ] || die "expected one result line: $OUT"
same_curve one.db two.db train_loss
same_curve one.db two.db grad_norm
same_curve one.db two.db val_loss
[ "$(sql two.db "select count(*) from runs")" = 1 ] || die "2 ranks made more than one run"
[ "$(sql two.db "select count(*) from models")" = 1 ] || die "2 ranks registered more than once"
$PY "$ROOT/tests/e2e/ckpt_close.py" one.ckpt two.ckpt 1e-4 || die "checkpoints differ"
# an uneven split (3 ranks over a batch of 4) is still the same sum
expect_rc 0 "$RLHF" pretrain $P --batch 4 --steps 3 --out u1.ckpt
expect_rc 0 mpi 3 "$RLHF" pretrain $P --batch 4 --steps 3 --out u3.ckpt
$PY "$ROOT/tests/e2e/ckpt_close.py" u1.ckpt u3.ckpt 1e-4 || die "uneven split differs"
# more ranks than rows
expect_rc 1 mpi 2 "$RLHF" pretrain $P --batch 1 --out b1.ckpt
contains "$ERR" "ranks"
# kill -9 of one rank mid-run (mpirun ends the other), then --resume on 2
# ranks: bit for bit the checkpoint of an uninterrupted 2-rank run
R="--corpus $CORPUS --tokenizer tok.bin --config tiny --steps 300 --batch 4 --lr 3e-3 --eval-every 5"
expect_rc 0 mpi 2 "$RLHF" pretrain $R --out full.ckpt
kill_rank k.ckpt "$RLHF" pretrain $R --out k.ckpt
expect_rc 0 mpi 2 "$RLHF" pretrain $R --out k.ckpt --resume
contains "$OUT" "trained 300 steps"
contains "$ERR" "resumed"
cmp full.ckpt k.ckpt || die "the resumed 2-rank run differs from an uninterrupted one"
# the store of a run whose rank was killed: failed, or shown by status as
# having no process left (never a plain "running" with nothing behind it)
expect_rc 0 "$RLHF" init mk.db
kill_rank mk.ckpt "$RLHF" pretrain $R --db mk.db --out mk.ckpt
st=$(sql mk.db "select status from runs order by id desc limit 1")
if [ "$st" = running ]; then
    # mpirun may return while the other rank is still being taken down
    i=0
    while [ $i -lt 50 ]; do
        expect_rc 0 "$RLHF" status --db mk.db
        case "$OUT" in *"is gone"*) break ;; esac
        sleep 0.1; i=$((i + 1))
    done
    contains "$OUT" "is gone"
else
    [ "$st" = failed ] || die "a run whose rank was killed is '$st'"
fi
# Ctrl-C to mpirun: every rank stops after the same step, rank 0 saves
I="--corpus $CORPUS --tokenizer tok.bin --config tiny --steps 3000 --batch 4 --lr 3e-3 --eval-every 50"
expect_rc 0 mpi 2 "$RLHF" pretrain $I --out ifull.ckpt
mpirun -np 2 --bind-to none "$RLHF" pretrain $I --out i.ckpt >int.out 2>int.err &
job=$!
i=0
while [ ! -e i.ckpt ] && [ $i -lt 600 ]; do sleep 0.02; i=$((i + 1)); done
kill -INT $job
wait $job && die "an interrupted run exited 0: $(tail -n 2 int.err)"
grep -q "interrupted at step" int.err || die "no interruption message: $(cat int.err)"
expect_rc 0 mpi 2 "$RLHF" pretrain $I --out i.ckpt --resume
cmp ifull.ckpt i.ckpt || die "the 2-rank run resumed after Ctrl-C differs from an uninterrupted one"

# ---- sft, dpo and train-rm (rl/run.c's loop) --------------------------------
# the RM's rejected answer is another prompt's: against its own words reversed,
# every token's embedding gradient nearly cancels, and AdamW's sign-like first
# steps turn the rounding left over (which differs with the split over ranks)
# into lr-sized moves, so no two groupings of the batch would agree
$PY "$ROOT/tests/e2e/make_pairs.py" "$CORPUS" 120 --unique sft.jsonl=completion pairs.jsonl=reversed \
    pairs_rm.jsonl=next7
# A: a short run to compare 1 and 2 ranks; K: a long one to kill and resume
for cmd in sft dpo train-rm; do
    case $cmd in
    sft) A="--init one.ckpt --data sft.jsonl --steps 8 --batch 5 --accum 2 --lr 1e-3 --eval-every 4 --val-frac 0.2"
         K="$A --steps 120 --eval-every 2"
         curves="train_loss grad_norm val_loss" ;;
    dpo) A="--policy one.ckpt --data pairs.jsonl --steps 8 --batch 3 --accum 2 --lr 1e-3 --eval-every 4 --val-frac 0.2"
         K="$A --steps 120 --eval-every 2"
         curves="loss grad_norm rewards/margins eval/loss eval/rewards/accuracies" ;;
    train-rm)
         A="--init one.ckpt --data pairs_rm.jsonl --batch 7 --micro 4 --lr 1e-3 --eval-every 4 --val-frac 0.2 --norm-samples 3"
         K="$A --epochs 8 --eval-every 2"
         curves="train_loss train_accuracy reward_mean reward_std reward_margin grad_norm val_loss val_accuracy norm_bias" ;;
    esac
    expect_rc 0 "$RLHF" init $cmd-1.db
    expect_rc 0 "$RLHF" init $cmd-2.db
    expect_rc 0 "$RLHF" $cmd --db $cmd-1.db $A --out $cmd-1.ckpt
    expect_rc 0 mpi 2 "$RLHF" $cmd --db $cmd-2.db $A --out $cmd-2.ckpt
    [ "$(grep -c "^trained " out.txt)" = 1 ] || die "$cmd: expected one result line: $OUT"
    for m in $curves; do same_curve $cmd-1.db $cmd-2.db $m; done
    [ "$(sql $cmd-2.db "select count(*) from models")" = 1 ] || die "$cmd: 2 ranks registered more than once"
    $PY "$ROOT/tests/e2e/ckpt_close.py" $cmd-1.ckpt $cmd-2.ckpt 1e-4 || die "$cmd: checkpoints differ"
    # resume on 2 ranks after a kill -9 of one rank: bit for bit an uninterrupted 2-rank run
    expect_rc 0 mpi 2 "$RLHF" $cmd $K --out $cmd-full.ckpt
    kill_rank $cmd-k.ckpt "$RLHF" $cmd $K --out $cmd-k.ckpt
    expect_rc 0 mpi 2 "$RLHF" $cmd $K --out $cmd-k.ckpt --resume
    contains "$ERR" "resumed"
    cmp $cmd-full.ckpt $cmd-k.ckpt || die "$cmd: the resumed 2-rank run differs from an uninterrupted one"
done

# ---- ppo: each rank samples and scores its share of the prompts ---------------
# (3 prompts over 2 ranks: an uneven share); the RM is train-rm's above
for v in head rm; do
    case $v in
    head) A="--kl-target 0.5 --score-clip 3" ;;
    rm) A="--value rm --ptx-corpus $CORPUS --ptx-coef 0.5 --ptx-batch 3" ;;
    esac
    A="--policy one.ckpt --rm train-rm-1.ckpt --prompts 3 --samples 2 --max-new 8 --minibatch 4 --epochs 2 --steps 3 --lr 3e-4 $A"
    for n in 1 2; do
        expect_rc 0 "$RLHF" init ppo-$v-$n.db
        expect_rc 0 "$RLHF" prompts import --db ppo-$v-$n.db "$ROOT/samples/prompts.jsonl"
    done
    expect_rc 0 "$RLHF" ppo --db ppo-$v-1.db $A --out ppo-$v-1.ckpt
    expect_rc 0 mpi 2 "$RLHF" ppo --db ppo-$v-2.db $A --out ppo-$v-2.ckpt
    [ "$(grep -c "^trained " out.txt)" = 1 ] || die "ppo: expected one result line: $OUT"
    for m in objective/kl objective/kl_full objective/entropy objective/scores objective/rlhf_reward objective/beta \
             policy/clipfrac_avg policy/approxkl_avg loss/policy_avg loss/value_avg val/explained_variance \
             answer/length_mean; do
        same_curve ppo-$v-1.db ppo-$v-2.db $m
    done
    [ $v = head ] || same_curve ppo-$v-1.db ppo-$v-2.db loss/ptx_avg
    $PY "$ROOT/tests/e2e/ckpt_close.py" ppo-$v-1.ckpt ppo-$v-2.ckpt 1e-4 || die "ppo --value $v: checkpoints differ"
done
# kill -9 of one rank, then --resume: bit for bit an uninterrupted 2-rank run
# (each in a fresh project, so the run ids in the checkpoints agree; 400 steps
# so the kill, 0.2 s after the first checkpoint, lands before the end: 60 ran
# out in that time once decoding got faster)
for n in full k; do
    expect_rc 0 "$RLHF" init ppo-$n.db
    expect_rc 0 "$RLHF" prompts import --db ppo-$n.db "$ROOT/samples/prompts.jsonl"
done
K="--policy one.ckpt --rm train-rm-1.ckpt --prompts 2 --samples 2 --max-new 8 --minibatch 4 --epochs 1 --steps 400 --save-every 1"
expect_rc 0 mpi 2 "$RLHF" ppo $K --db ppo-full.db --out ppo-full.ckpt
kill_rank ppo-k.ckpt "$RLHF" ppo $K --db ppo-k.db --out ppo-k.ckpt
expect_rc 0 mpi 2 "$RLHF" ppo $K --db ppo-k.db --out ppo-k.ckpt --resume
contains "$ERR" "resumed"
cmp ppo-full.ckpt ppo-k.ckpt || die "ppo: the resumed 2-rank run differs from an uninterrupted one"

# ---- commands that do not split their batch refuse --------------------------
expect_rc 2 mpi 2 "$RLHF" prompts list --db one.db
contains "$ERR" "data-parallel"
echo "ok"
