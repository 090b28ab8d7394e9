# rlhf candidates import/list: answers from other systems, matched to prompts,
# all-or-nothing on bad input.
. "$ROOT/tests/e2e/lib.sh"
export RLHF_DB=c.db
expect_rc 0 "$RLHF" init c.db
printf '{"prompt":"Name a fruit."}\n' > p.jsonl
expect_rc 0 "$RLHF" prompts import p.jsonl
cat > cands.jsonl <<'J'
{"prompt":"Name a fruit.","completion":"An apple.","model":"gpt-x"}
{"prompt":"Name a fruit.","response":"Banana.","model":"other"}
{"prompt":"Name a fruit.","completion":"An apple.","model":"gpt-x"}
{"prompt":"写一首诗","completion":"春眠不觉晓 🌸","model":"gpt-x","split":"test"}
J
expect_rc 0 "$RLHF" candidates import cands.jsonl
contains "$OUT" "imported 3 candidates (4 read, 1 duplicates skipped, 1 new prompts)"
[ "$(sql c.db "SELECT count(*) FROM models WHERE kind='external'")" = 2 ] || die "models"
[ "$(sql c.db "SELECT split FROM prompts WHERE text='写一首诗'")" = test ] || die "split"
expect_rc 0 "$RLHF" models; contains "$OUT" "external"
expect_rc 0 "$RLHF" candidates list --prompt 1 --json
contains "$OUT" '"completion":"An apple."'
contains "$OUT" '"model":"other"'
printf '{"prompt":"q","completion":"a"}\n' > nomodel.jsonl
expect_rc 1 "$RLHF" candidates import nomodel.jsonl; contains "$ERR" 'nomodel.jsonl:1: missing field "model"'
expect_rc 0 "$RLHF" candidates import --model mine nomodel.jsonl
before=$(sql c.db "SELECT count(*) FROM candidates")
printf '{"prompt":"q2","completion":"a","model":"m"}\n{"prompt":"q3","model":"m"}\n' > half.jsonl
expect_rc 1 "$RLHF" candidates import half.jsonl
contains "$ERR" 'half.jsonl:2: missing field "completion" or "response"'
[ "$(sql c.db "SELECT count(*) FROM candidates")" = "$before" ] || die "partial import kept"
[ "$(sql c.db "SELECT count(*) FROM prompts WHERE text='q2'")" = 0 ] || die "partial prompt kept"
expect_rc 2 "$RLHF" candidates list
expect_rc 2 "$RLHF" candidates frob
exit 0
