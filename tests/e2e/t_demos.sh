#!/bin/sh
# Demonstrations and written prompts: simulated writers (the demo task's rule,
# with noise), labelers writing prompts in $EDITOR (plain, fewshot; bad text
# comes back, a killed editor leaves a draft, duplicates by hash), flags that
# hold a prompt back before it is used, export in TRL's SFT formats (checked
# field by field), and sft --data store reading the demonstrations.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
export RLHF_DB=d.db
expect_rc 0 "$RLHF" init d.db
cat > c.jsonl <<'J'
{"prompt":"What is the capital of Japan?","completion":"The capital of Japan is Paris. It is big.","model":"a"}
{"prompt":"What is the capital of Japan?","completion":"Tokyo, obviously.","model":"b"}
{"prompt":"What is the opposite of hot?","completion":"The opposite of hot is cold.","model":"a"}
{"prompt":"What is the opposite of hot?","completion":"Hot is warm. Or not.","model":"b"}
{"prompt":"Write a poem about the sea.","completion":"Waves.","model":"a"}
{"prompt":"Write a poem about the sea.","completion":"Blue.","model":"b"}
J
expect_rc 0 "$RLHF" candidates import c.jsonl

# usage errors
expect_rc 2 "$RLHF" label --task nope --as x
expect_rc 2 "$RLHF" label --task write --auto-cmd cat --as x
expect_rc 2 "$RLHF" label --task prompt --auto demo --as x
expect_rc 2 "$RLHF" label --task prompt --kind poem --as x
expect_rc 2 "$RLHF" label --task write --review --as x
expect_rc 2 "$RLHF" label --task write --kind fewshot --as x
contains "$ERR" "--kind is for --task prompt"

# a careful simulated writer: the clean answer, edited from the best candidate
expect_rc 0 "$RLHF" label --task write --auto demo --as w1
contains "$OUT" "w1 wrote 2 answers (1 prompts skipped"
[ "$(sql d.db "SELECT c.text FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id WHERE c.prompt_id = 1")" = "The capital of Japan is Tokyo." ] || die "w1's answer"
[ "$(sql d.db "SELECT m.name FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id JOIN models m ON m.id = c.model_id LIMIT 1")" = "human:w1" ] || die "model human:w1"
[ "$(sql d.db "SELECT count(*) FROM demonstrations WHERE simulated = 1 AND edited_from IS NOT NULL AND edit_distance >= 0")" = 2 ] || die "origin, distance"
# nothing left for w1; a hasty second writer (noise 1: always the candidate's first sentence)
expect_rc 0 "$RLHF" label --task write --auto demo --as w1
contains "$OUT" "wrote 0 answers"
expect_rc 0 "$RLHF" label --task write --auto demo --as w2 --noise 1 --overlap 2
contains "$OUT" "w2 wrote 2 answers"
[ "$(sql d.db "SELECT count(*) FROM demonstrations")" = 4 ] || die "four answers"
expect_rc 0 "$RLHF" status
contains "$OUT" "demonstrations 4  (2 prompts answered by labelers)"
contains "$OUT" "  w2                   2"
# agreement where two people answered one prompt: two pairs of answers
expect_rc 0 "$RLHF" agreement --json
printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)["demonstrations"]
assert d["answers"] == 4 and d["prompts_shared"] == 2 and d["pairs"] == 2, d
assert 0 <= d["similarity"] < 1 and [w["name"] for w in d["writers"]] == ["w1", "w2"], d' || die "agreement of written answers"
expect_rc 0 "$RLHF" agreement
contains "$OUT" "written answers: 4 to 2 prompts, by two authors or more: 2"
# the report: a section of written answers, per author
expect_rc 0 "$RLHF" report --out r.html
grep -q '<h2 id="demos">Written answers</h2>' r.html || die "report: written answers"
grep -q '<td>w2</td><td>simulated</td><td>2</td>' r.html || die "report: answers per author"

# export: TRL's prompt-completion and conversational forms
expect_rc 0 "$RLHF" export --format sft --out sft.jsonl
contains "$ERR" "exported 4 demonstrations of 2 prompts"
expect_rc 0 "$RLHF" export --format sft-chat --out chat.jsonl
/usr/bin/python3 - <<'P' || die "sft export fields"
import json
rows = [json.loads(l) for l in open("sft.jsonl")]
assert len(rows) == 4, rows
for r in rows:
    # TRL's SFTTrainer, prompt-completion form: "prompt" and "completion" strings
    assert isinstance(r["prompt"], str) and isinstance(r["completion"], str), r
    assert r["prompt"].startswith("\n\nHuman: ") and r["prompt"].endswith("\n\nAssistant:"), r
    assert r["completion"].startswith(" "), r
    assert r["author"] in ("w1", "w2") and r["simulated"] is True and r["flagged"] is False, r
    assert r["edited_from"] is not None and r["edit_distance"] >= 0 and r["split"] == "train", r
assert {r["completion"] for r in rows if r["author"] == "w1"} == {" The capital of Japan is Tokyo.", " The opposite of hot is cold."}
chat = [json.loads(l) for l in open("chat.jsonl")]
assert len(chat) == 4
for r, s in zip(chat, rows):
    # conversational form: "messages", a list of {"role", "content"}
    m = r["messages"]
    assert [x["role"] for x in m] == ["user", "assistant"], m
    assert all(set(x) == {"role", "content"} for x in m), m
    assert m[1]["content"] == s["completion"][1:] and "\n\nHuman: " + m[0]["content"] + "\n\nAssistant:" == s["prompt"]
P
expect_rc 2 "$RLHF" export --format sft --min-agreement 0.5
expect_rc 2 "$RLHF" export --format pairs --all-demos

# writing prompts in the editor: a script as $EDITOR answers in turn from files
cat > ed.sh <<'S'
#!/bin/sh
n=$(cat "$D/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$D/count"
cp "$1" "$D/seen.$n"
if [ -f "$D/kill" ]; then rm "$D/kill"; printf 'What is the plural of mouse?\n' > "$1"; kill -9 $$; fi
if [ -f "$D/text.$n" ]; then cp "$D/text.$n" "$1"; else : > "$1"; fi
S
chmod +x ed.sh
export D=$PWD EDITOR=$PWD/ed.sh VISUAL=
printf 'Give the sentiment of each tweet.\n### query\nI loved it!\n' > text.1  # no response: refused
printf 'Give the sentiment of each tweet.\n### query\nI loved it!\n### response\npositive\n### query\nWhat a dull day.\n' > text.2
printf 'Give the sentiment of each tweet.\n### query\nI loved it!\n### response\npositive\n### query\nWhat a dull day.\n' > text.3  # the same again
expect_rc 0 "$RLHF" label --task prompt --kind fewshot --as ann
contains "$ERR" "not stored: "
contains "$ERR" "a duplicate of prompt 4"
contains "$OUT" "ann: 1 prompts written, 1 duplicates"
grep -q '^# NOT STORED: ' seen.2 || die "the reason shown on the text that came back"
grep -q '^I loved it!$' seen.2 || die "the text came back"
[ "$(sql d.db "SELECT text FROM prompts WHERE id = 4")" = "$(printf 'Give the sentiment of each tweet.\n\nQuery: I loved it!\nResponse: positive\n\nQuery: What a dull day.\nResponse:')" ] || die "few-shot prompt text"
[ "$(sql d.db "SELECT kind || ' ' || (SELECT name FROM labelers WHERE id = author_id) || ' ' || split FROM prompts WHERE id = 4")" = "fewshot ann train" ] || die "kind, author, split"
[ "$(sql d.db "SELECT examples FROM prompts WHERE id = 4")" = '[{"query":"I loved it!","response":"positive"}]' ] || die "examples"
expect_rc 0 "$RLHF" prompts list --written --json
contains "$OUT" '"kind":"fewshot"'
# a killed editor: the draft stays, and the next session starts from it
rm -f count text.*; touch kill
expect_rc 1 "$RLHF" label --task prompt --as ann --split extra
contains "$ERR" "killed by signal 9"
grep -q 'plural of mouse' d.db.drafts/prompt-*.txt || die "prompt draft kept"
printf 'What is the plural of mouse?\n' > text.1
rm -f count
expect_rc 0 "$RLHF" label --task prompt --as ann --split extra
grep -q '^What is the plural of mouse?$' seen.1 || die "the draft came back"
[ "$(sql d.db "SELECT kind || ' ' || split FROM prompts WHERE text = 'What is the plural of mouse?'")" = "plain extra" ] || die "plain prompt in split extra"
P5=$(sql d.db "SELECT id FROM prompts WHERE text = 'What is the plural of mouse?'")

# flags before use: ann may not flag her own; bob's flag holds the prompt back
expect_rc 1 "$RLHF" prompts flag "$P5" --as ann --reason unclear
contains "$ERR" "your own"
expect_rc 2 "$RLHF" prompts flag "$P5" --as bob --reason rude
expect_rc 0 "$RLHF" prompts flag "$P5" --as bob --reason unsafe --note "not for kids"
expect_rc 0 "$RLHF" label --task write --auto demo --as w3 --split extra
contains "$OUT" "wrote 0 answers (0 prompts skipped"
expect_rc 0 "$RLHF" prompts list --flagged
contains "$OUT" "FLAGGED unsafe: What is the plural of mouse?"
expect_rc 0 "$RLHF" prompts unflag "$P5"
expect_rc 0 "$RLHF" label --task write --auto demo --as w3 --split extra
contains "$OUT" "wrote 1 answers"
[ "$(sql d.db "SELECT c.text FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id WHERE c.prompt_id = $P5")" = "The plural of mouse is mice." ] || die "written from empty"
[ "$(sql d.db "SELECT edited_from IS NULL FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id WHERE c.prompt_id = $P5")" = 1 ] || die "no candidate to start from"
# a flag on prompt 1 leaves its answers out of the export and of SFT, unless asked
expect_rc 0 "$RLHF" prompts flag 1 --as bob --reason duplicate
expect_rc 0 "$RLHF" export --format sft
[ "$(printf '%s\n' "$OUT" | grep -c .)" = 3 ] || die "flagged prompt's answers left out"
expect_rc 0 "$RLHF" export --format sft --all-demos
[ "$(printf '%s\n' "$OUT" | grep -c '"flagged":true')" = 2 ] || die "--all-demos keeps them, marked"

# sft --data store: the demonstrations (unflagged by default), with or without the top-ranked
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 5 --batch 4 --out base.ckpt --name base
expect_rc 0 "$RLHF" sft --init base.ckpt --data store --no-ranked --val-frac 0 --epochs 1 --batch 2 --out s1.ckpt
contains "$ERR" "sft: 3 pairs"
contains "$ERR" "3 of the pairs are demonstrations labelers wrote; 2 flagged ones left out"
expect_rc 0 "$RLHF" sft --init base.ckpt --data store --no-ranked --demos all --val-frac 0 --epochs 1 --batch 2 --out s2.ckpt
contains "$ERR" "sft: 5 pairs"
expect_rc 2 "$RLHF" sft --init base.ckpt --data store --no-ranked --demos none --out s3.ckpt
expect_rc 2 "$RLHF" sft --init base.ckpt --data c.jsonl --demos all --out s3.ckpt
# rankings: bob ranks the writers' answers with the models'; the top-ranked of
# a prompt is not added twice when it is a demonstration
expect_rc 0 "$RLHF" prompts unflag 1
expect_rc 0 "$RLHF" label --auto demo --as r1
expect_rc 0 "$RLHF" sft --init base.ckpt --data store --val-frac 0 --epochs 1 --batch 2 --out s4.ckpt
contains "$ERR" "5 of the pairs are demonstrations"
contains "$ERR" "sft: 6 pairs"
# a flagged prompt is not among eval's (nor PPO's) prompts either
expect_rc 0 "$RLHF" prompts flag "$P5" --as bob --reason unclear
expect_rc 1 "$RLHF" eval --a base.ckpt --b s1.ckpt --judge demo --split extra
expect_rc 0 "$RLHF" prompts unflag "$P5"
expect_rc 0 "$RLHF" eval --a base.ckpt --b s1.ckpt --judge demo --split extra
# a demonstration another labeler flagged in a ranking is left out by default
RID=$(sql d.db "SELECT ri.ranking_id FROM ranking_items ri JOIN demonstrations d ON d.candidate_id = ri.candidate_id LIMIT 1")
CID=$(sql d.db "SELECT ri.candidate_id FROM ranking_items ri JOIN demonstrations d ON d.candidate_id = ri.candidate_id LIMIT 1")
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect("d.db"); c.execute("UPDATE ranking_items SET flags = ? WHERE ranking_id = ? AND candidate_id = ?", ("[\"made-up-facts\"]", int(sys.argv[1]), int(sys.argv[2]))); c.commit()' "$RID" "$CID"
expect_rc 0 "$RLHF" export --format sft
[ "$(printf '%s\n' "$OUT" | grep -c .)" = 4 ] || die "an answer flagged in a ranking is left out"
echo ok
