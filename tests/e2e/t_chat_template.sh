#!/bin/sh
# Chat templates of Hugging Face models: rlhf's C rendering of each real
# template in tests/ref/templates is compared byte for byte with Hugging Face's
# own Jinja engine (@huggingface/jinja, tests/ref/jinja: `make ref-deps`) over
# tests/ref/chat_conversations.jsonl; then HH prompts, --template chat:...,
# and refused templates and files.
. "$ROOT/tests/e2e/lib.sh"
REF=$ROOT/tests/ref
CONV=$REF/chat_conversations.jsonl
command -v node >/dev/null || { echo "node is missing"; exit 77; }
[ -d "$REF/jinja/node_modules/@huggingface/jinja" ] || { echo "@huggingface/jinja is missing (make ref-deps)"; exit 77; }

total=0
for dir in "$REF"/templates/*/; do
    name=$(basename "$dir")
    node "$REF/chat_ref.mjs" "$dir" "$CONV" >"ref.$name" || die "$name: the reference failed"
    expect_rc 0 "$RLHF" template render --keep-going --model "$dir" "$CONV"
    cp out.txt "ours.$name"
    cmp -s "ref.$name" "ours.$name" || { diff "ref.$name" "ours.$name" | head -20; die "$name: renderings differ"; }
    n=$(grep -vc '^null$' "ours.$name")
    total=$((total + n))
    echo "$name: $n renderings equal ($(grep -c '^null$' "ours.$name") refused by both)"
done
[ "$total" -ge 80 ] || die "only $total renderings compared"
echo "chat templates: $total renderings equal to the reference"

# the stored form names the family
expect_rc 0 "$RLHF" template show --model "$REF/templates/qwen2.5"
[ "$OUT" = "chat:qwen2.5" ] || die "show: $OUT"
expect_rc 0 "$RLHF" template show --model "$REF/templates/llama3.2"
[ "$OUT" = "chat:llama3.1" ] || die "show: $OUT"

# an HH prompt renders as its turns would
printf '%s\n' '{"prompt":"\n\nHuman: Hi!\n\nAssistant: Hello. How can I help?\n\nHuman: Tell me a joke.\n\nAssistant:"}' >hh.jsonl
expect_rc 0 "$RLHF" template render --template chat:qwen3 hh.jsonl
hh=$OUT
expect_rc 0 "$RLHF" template render --model "$REF/templates/qwen3" "$CONV"
[ "$hh" = "$(sed -n 6p out.txt)" ] || die "HH prompt: $hh"
printf '%s\n' '{"prompt":"What is 2+2?"}' >one.jsonl
expect_rc 0 "$RLHF" template render --template chat:llama3.1 one.jsonl
contains "$OUT" 'Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"'
# a {prompt} template still renders as it always did
expect_rc 0 "$RLHF" template render --template 'Human: {prompt}\nAssistant:' one.jsonl
[ "$OUT" = '"Human: What is 2+2?\\nAssistant:"' ] || die "{prompt} template: $OUT"
# tokens other than the family's usual ones travel in the stored form
printf '%s' '{"bos_token":"<BOS>","eos_token":{"content":"<E S>"},"chat_template":"{% for message in messages %}\n{% if message['"'role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"'"}' >tc.json
mkdir zdir && cp tc.json zdir/tokenizer_config.json
expect_rc 0 "$RLHF" template show --model zdir
[ "$OUT" = "chat:zephyr eos=<E%20S>" ] || die "show: $OUT"
expect_rc 0 "$RLHF" template render --template "$OUT" one.jsonl
[ "$OUT" = '"<|user|>\nWhat is 2+2?<E S>\n<|assistant|>\n"' ] || die "zephyr with own eos: $OUT"

# refused: an unknown template, a bad tokenizer_config.json, an HH prompt ending with the assistant
mkdir unk && printf '%s' '{"chat_template":"{% for m in messages %}<<{{ m.content }}>>{% endfor %}"}' >unk/tokenizer_config.json
expect_rc 1 "$RLHF" template show --model unk
contains "$ERR" "unk/tokenizer_config.json: unrecognised chat template"
contains "$ERR" "--template"
mkdir bad && printf '%s' '{"chat_template": 3}' >bad/tokenizer_config.json
expect_rc 1 "$RLHF" template show --model bad
contains "$ERR" 'bad/tokenizer_config.json: field "chat_template"'
printf '%s' '{"bos_token": 5, "chat_template": "x"}' >bad/tokenizer_config.json
expect_rc 1 "$RLHF" template show --model bad
contains "$ERR" 'bad/tokenizer_config.json: field "bos_token"'
printf '%s' '{"chat_template": ' >bad/tokenizer_config.json
expect_rc 1 "$RLHF" template show --model bad
contains "$ERR" "bad/tokenizer_config.json"
printf '%s\n' '{"prompt":"Human: Hi\n\nAssistant: Hello"}' >ends.jsonl
expect_rc 1 "$RLHF" template render --template chat:chatml ends.jsonl
contains "$ERR" "ends with an Assistant turn"
expect_rc 2 "$RLHF" template render --template chat:nosuch one.jsonl
contains "$ERR" "unknown family"
expect_rc 2 "$RLHF" gen --template 'no placeholder' --model x
contains "$ERR" "chat:FAMILY"
