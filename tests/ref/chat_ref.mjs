// Reference renderings for tests/e2e/t_chat_template.sh: each conversation of a
// JSONL file ({"messages": [...]}) through a model's real chat_template with
// Hugging Face's Jinja engine for JavaScript, add_generation_prompt=true and the
// model's bos/eos tokens. One JSON string per line, or null where the template
// raises (as `rlhf template render --keep-going` prints null where it refuses).
// Usage: node chat_ref.mjs MODEL_DIR CONVERSATIONS.jsonl
// Where this engine departs from Python's Jinja (which transformers runs, and
// rlhf follows), the conversations stay clear: its lstrip(chars)/rstrip(chars)
// strip all whitespace whatever chars says (Qwen3's think handling), and it
// takes '' != false as false (Llama 2 with an empty system message).
import fs from 'node:fs';
import path from 'node:path';
import { Template } from './jinja/node_modules/@huggingface/jinja/dist/index.js';

const [dir, convPath] = process.argv.slice(2);
const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
const token = (t) => (t && typeof t === 'object' ? t.content : t ?? '');
let source = cfg.chat_template;
if (Array.isArray(source)) source = source.find((t) => t.name === 'default').template;
const template = new Template(source);
for (const line of fs.readFileSync(convPath, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const { messages } = JSON.parse(line);
  let out = null;
  try {
    out = template.render({
      messages,
      add_generation_prompt: true,
      bos_token: token(cfg.bos_token),
      eos_token: token(cfg.eos_token),
      // Llama 3.1/3.2 print today's date unless given one: rlhf renders the
      // template's own fallback date, so the reference is given the same
      date_string: '26 Jul 2024',
    });
  } catch (e) {
    out = null;
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
