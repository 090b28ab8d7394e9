#!/bin/sh
# rlhf ppo: trains on the store's prompts with an RM, logs the TRL-named
# metrics, registers a policy whose parent is --policy; bad inputs are refused
# with the reason; kill -9 mid-run then --resume ends bit-identical to a run
# never interrupted.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 30 --batch 4 \
    --lr 3e-3 --out sft.ckpt --threads 1
# an RM: the policy with a reward head (the embedding row of a token, scaled)
# mkrm IN OUT TOKEN SCALE: a reward model whose head is SCALE x TOKEN's embedding
mkrm() { /usr/bin/python3 "$ROOT/tests/e2e/make_rm.py" "$1" "$2" --emb "$3" "$4"; }
mkrm sft.ckpt rm.ckpt 2 5 || die "could not make an RM"
expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" prompts import --db p.db "$ROOT/samples/prompts.jsonl"
expect_rc 0 "$RLHF" pretrain --db p.db --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 2 \
    --batch 2 --out reg.ckpt --name sft-reg --threads 1
export RLHF_DB=p.db
SMALL="--prompts 2 --samples 2 --max-new 8 --minibatch 4 --epochs 2 --threads 1"

# usage errors
expect_rc 2 "$RLHF" ppo --rm rm.ckpt --out a.ckpt
contains "$ERR" "--policy"
expect_rc 2 "$RLHF" ppo --policy sft.ckpt --out a.ckpt
expect_rc 2 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt
expect_rc 2 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out a.ckpt --value both
contains "$ERR" "head or rm"
expect_rc 2 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out a.ckpt --clip 0
expect_rc 2 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out a.ckpt --ptx-coef 1
contains "$ERR" "ptx-corpus"
expect_rc 2 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out sft.ckpt
expect_rc 0 "$RLHF" ppo --help
contains "$OUT" "InstructGPT"
contains "$OUT" "beta 0.02"
# bad inputs: each names the problem and writes nothing
expect_rc 1 "$RLHF" ppo --policy rm.ckpt --rm rm.ckpt --out a.ckpt $SMALL
contains "$ERR" "reward model"
expect_rc 1 "$RLHF" ppo --policy sft.ckpt --rm sft.ckpt --out a.ckpt $SMALL
contains "$ERR" "not a reward model"
expect_rc 0 "$RLHF" tokenizer train --vocab 280 --out tok2.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok2.bin --config tiny --steps 1 --batch 2 --out other.ckpt
mkrm other.ckpt rm2.ckpt 2 1
expect_rc 1 "$RLHF" ppo --policy sft.ckpt --rm rm2.ckpt --out a.ckpt $SMALL
contains "$ERR" "vocabulary"
expect_rc 1 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out a.ckpt --split nosuch $SMALL
contains "$ERR" "no training prompts"
expect_rc 1 "$RLHF" ppo --policy missing.ckpt --rm rm.ckpt --out a.ckpt $SMALL
contains "$ERR" "missing.ckpt"
[ ! -e a.ckpt ] || die "a refused run left a checkpoint"

# a recorded run, with a reference that is not the policy's ancestor (a warning)
expect_rc 0 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out pol.ckpt --name ppo-pol --steps 4 \
    --ref reg.ckpt --value rm --kl-target 1 --ptx-corpus "$CORPUS" --ptx-coef 0.5 $SMALL
contains "$OUT" "trained 4 PPO steps"
contains "$ERR" "step 4/4"
contains "$ERR" "not the policy nor one of its ancestors"
contains "$ERR" "peak RSS"
[ "$(sql p.db "select kind from models where name='ppo-pol'")" = policy ] || die "policy not registered"
[ "$(sql p.db "select status from runs where kind='ppo'")" = done ] || die "run not done"
for m in objective/kl objective/kl_full objective/entropy objective/scores objective/rlhf_reward \
    policy/clipfrac_avg policy/approxkl_avg loss/policy_avg loss/value_avg loss/ptx_avg val/clipfrac_avg \
    answer/length_mean answer/eos_frac; do
    [ "$(sql p.db "select count(*) from metrics where name='$m'")" = 4 ] || die "metric $m missing"
done
# the parent of the output is the --policy model when it is registered
expect_rc 0 "$RLHF" ppo --policy reg.ckpt --rm rm.ckpt --out pol2.ckpt --steps 1 $SMALL
[ "$(sql p.db "select parent_id from models where path like '%pol2.ckpt'")" = \
  "$(sql p.db "select id from models where name='sft-reg'")" ] || die "parent is not the policy"
# the output (with its value head) samples like any policy
expect_rc 0 "$RLHF" sample --model pol2.ckpt --max-tokens 5 --seed 1 "Human: Hi
Assistant:"
# an existing output is not overwritten by accident
expect_rc 1 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out pol.ckpt $SMALL
contains "$ERR" "--resume"

# kill -9 mid-run, rerun with --resume: the same bytes as a run never interrupted
ARGS="--policy sft.ckpt --rm rm.ckpt --steps 12 --save-every 1 $SMALL"
"$RLHF" init r1.db >/dev/null && "$RLHF" prompts import --db r1.db "$ROOT/samples/prompts.jsonl" >/dev/null
"$RLHF" init r2.db >/dev/null && "$RLHF" prompts import --db r2.db "$ROOT/samples/prompts.jsonl" >/dev/null
expect_rc 0 "$RLHF" ppo --db r1.db $ARGS --out ref.ckpt
kill9_after_checkpoint k.ckpt "$RLHF" ppo --db r2.db $ARGS --out k.ckpt
grep -q "trained 12" k.out && echo "note: the run finished before the kill"
expect_rc 0 "$RLHF" ppo --db r2.db $ARGS --out k.ckpt --resume
contains "$ERR" "resumed"
cmp ref.ckpt k.ckpt || die "resumed run differs from the uninterrupted one"
[ "$(sql r2.db "select count(*) from runs")" = 1 ] || die "resume started a second run"
[ "$(sql r2.db "select max(step) from metrics")" = 12 ] || die "curve not continued"
expect_rc 0 "$RLHF" ppo --db r2.db $ARGS --out k.ckpt --resume
contains "$OUT" "up to date"
# a changed reference is refused on resume
expect_rc 1 "$RLHF" ppo --db r2.db $ARGS --out k.ckpt --resume --steps 13 --ref reg.ckpt
contains "$ERR" "reference"

# RLOO and GRPO: no critic (no value loss, no explained variance), the same
# rollouts, rewards and KL; GRPO's KL is a loss term; at temperature 0.7 too
for a in rloo grpo; do
    expect_rc 0 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out $a.ckpt --name $a --steps 3 \
        --advantage $a --temperature 0.7 $SMALL
    contains "$OUT" "trained 3 PPO steps"
    run="(select id from runs where config like '%\"advantage\":\"$a\"%')"
    [ "$(sql p.db "select count(*) from metrics where run_id = $run and name = 'objective/kl'")" = 3 ] ||
        die "$a: no KL curve"
    [ "$(sql p.db "select count(*) from metrics where run_id = $run and name = 'val/explained_variance'")" = 0 ] ||
        die "$a: a critic's metric"
    [ "$(sql p.db "select max(abs(value)) from metrics where run_id = $run and name = 'loss/value_avg'")" = 0.0 ] ||
        die "$a: a value loss"
done
expect_rc 2 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out x.ckpt --advantage bogus
contains "$ERR" "gae, rloo or grpo"
expect_rc 2 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --out x.ckpt --advantage rloo --samples 1
contains "$ERR" "samples >= 2"
exit 0
