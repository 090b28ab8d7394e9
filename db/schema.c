/* The schema as a list of forward migrations: migration i takes user_version
 * from i to i+1. Append, never edit a released step. */
#include "db/internal.h"

const char *const db_migrations[] = {
    /* 0 -> 1: the whole data model of DESIGN.md */
    "CREATE TABLE settings(\n"
    "  key TEXT PRIMARY KEY,\n"
    "  value TEXT NOT NULL);\n"
    "CREATE TABLE models(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  kind TEXT NOT NULL CHECK(kind IN ('base','sft','policy','ref','rm','external')),\n"
    "  path TEXT,\n"
    "  parent_id INTEGER REFERENCES models(id),\n"
    "  sha256 TEXT,\n"
    "  config TEXT,\n"
    "  template TEXT,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));\n"
    "CREATE TABLE prompts(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  text TEXT NOT NULL,\n"
    "  hash TEXT NOT NULL UNIQUE,\n"
    "  split TEXT NOT NULL DEFAULT 'train',\n"
    "  source TEXT,\n"
    "  ext_id TEXT,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));\n"
    "CREATE INDEX prompts_split ON prompts(split);\n"
    "CREATE TABLE candidates(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  model_id INTEGER NOT NULL REFERENCES models(id),\n"
    "  text TEXT NOT NULL,\n"
    "  hash TEXT NOT NULL,\n"
    "  n_tokens INTEGER,\n"
    "  sum_logprob REAL,\n"
    "  params TEXT,\n"
    "  seed INTEGER,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),\n"
    "  UNIQUE(prompt_id, model_id, hash));\n"
    "CREATE INDEX candidates_model ON candidates(model_id, prompt_id);\n"
    "CREATE TABLE labelers(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  simulated INTEGER NOT NULL DEFAULT 0,\n"
    "  rule TEXT,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));\n"
    /* a claim: a labeler holds a prompt until done or until expires_at passes */
    "CREATE TABLE assignments(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  labeler_id INTEGER NOT NULL REFERENCES labelers(id),\n"
    "  status TEXT NOT NULL DEFAULT 'claimed' CHECK(status IN ('claimed','done','skipped')),\n"
    "  is_gold INTEGER NOT NULL DEFAULT 0,\n"
    "  claimed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),\n"
    "  expires_at TEXT,\n"
    "  done_at TEXT,\n"
    "  UNIQUE(prompt_id, labeler_id));\n"
    "CREATE INDEX assignments_status ON assignments(status, prompt_id);\n"
    "CREATE INDEX assignments_labeler ON assignments(labeler_id, status);\n"
    /* prompts whose correct order is known, mixed into queues for quality control */
    "CREATE TABLE gold(\n"
    "  prompt_id INTEGER PRIMARY KEY REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  order_expr TEXT NOT NULL,\n"
    "  note TEXT);\n"
    /* one row per submitted ranking; a review adds a new version and keeps the old */
    "CREATE TABLE rankings(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  labeler_id INTEGER NOT NULL REFERENCES labelers(id),\n"
    "  version INTEGER NOT NULL DEFAULT 1,\n"
    "  supersedes INTEGER REFERENCES rankings(id),\n"
    "  is_current INTEGER NOT NULL DEFAULT 1,\n"
    "  simulated INTEGER NOT NULL DEFAULT 0,\n"
    "  skipped INTEGER NOT NULL DEFAULT 0,\n"
    "  skip_reason TEXT,\n"
    "  none_acceptable INTEGER NOT NULL DEFAULT 0,\n"
    "  note TEXT,\n"
    "  shown_order TEXT,\n"
    "  time_spent_ms INTEGER,\n"
    "  gold_agreement REAL,\n"
    "  source TEXT,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));\n"
    "CREATE INDEX rankings_prompt ON rankings(prompt_id, is_current);\n"
    "CREATE INDEX rankings_labeler ON rankings(labeler_id, is_current);\n"
    /* the current ranking of (prompt, labeler), looked up on every submit */
    "CREATE INDEX rankings_prompt_labeler ON rankings(prompt_id, labeler_id, is_current);\n"
    /* rank 1 is best; equal ranks are ties; NULL rank when skipped */
    "CREATE TABLE ranking_items(\n"
    "  ranking_id INTEGER NOT NULL REFERENCES rankings(id) ON DELETE CASCADE,\n"
    "  candidate_id INTEGER NOT NULL REFERENCES candidates(id),\n"
    "  rank INTEGER,\n"
    "  likert INTEGER CHECK(likert BETWEEN 1 AND 7),\n"
    "  flags TEXT,\n"
    "  shown_pos INTEGER,\n"
    "  PRIMARY KEY(ranking_id, candidate_id));\n"
    "CREATE INDEX ranking_items_candidate ON ranking_items(candidate_id);\n"
    "CREATE TABLE runs(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  kind TEXT NOT NULL,\n"
    "  config TEXT,\n"
    "  status TEXT NOT NULL DEFAULT 'running'\n"
    "    CHECK(status IN ('running','done','failed','interrupted')),\n"
    "  input_model_id INTEGER REFERENCES models(id),\n"
    "  output_model_id INTEGER REFERENCES models(id),\n"
    "  note TEXT,\n"
    "  started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),\n"
    "  finished_at TEXT);\n"
    "CREATE TABLE metrics(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  step INTEGER NOT NULL,\n"
    "  name TEXT NOT NULL,\n"
    "  value REAL NOT NULL,\n"
    "  PRIMARY KEY(run_id, name, step));\n",
    /* 1 -> 2: reward-model scores, one per (candidate, RM) */
    "CREATE TABLE scores(\n"
    "  candidate_id INTEGER NOT NULL REFERENCES candidates(id) ON DELETE CASCADE,\n"
    "  model_id INTEGER NOT NULL REFERENCES models(id),\n"
    "  score REAL NOT NULL,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),\n"
    "  PRIMARY KEY(candidate_id, model_id));\n"
    "CREATE INDEX scores_model ON scores(model_id, score);\n",
    /* 2 -> 3: the process running a run, so a run whose process died (kill -9,
     * an MPI rank taken down) is not shown as running */
    "ALTER TABLE runs ADD COLUMN pid INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN host TEXT;\n",
    /* 3 -> 4: every draw. Identical answers to a prompt are one candidate, so
     * a draw table says which candidate each sample (draw j of a prompt and
     * model) gave: evaluation counts samples, not distinct answers. A
     * candidate also keeps the token ids that were sampled (stop-string
     * tokens included, EOS when it ended the answer) and how it ended (eos,
     * stop, length), so KL and rewards see what was sampled. Candidates
     * sampled before count as one draw each, in id order. */
    "ALTER TABLE candidates ADD COLUMN tokens TEXT;\n"
    "ALTER TABLE candidates ADD COLUMN finish TEXT;\n"
    "CREATE TABLE draws(\n"
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  model_id INTEGER NOT NULL REFERENCES models(id),\n"
    "  draw INTEGER NOT NULL,\n"
    "  candidate_id INTEGER NOT NULL REFERENCES candidates(id) ON DELETE CASCADE,\n"
    "  seed INTEGER,\n"
    "  PRIMARY KEY(prompt_id, model_id, draw));\n"
    "CREATE INDEX draws_candidate ON draws(candidate_id);\n"
    "INSERT INTO draws(prompt_id, model_id, draw, candidate_id, seed)\n"
    "  SELECT prompt_id, model_id,\n"
    "         row_number() OVER (PARTITION BY prompt_id, model_id ORDER BY id) - 1, id, seed\n"
    "  FROM candidates WHERE seed IS NOT NULL;\n",
    /* 4 -> 5: people write, not only rank. A demonstration is a candidate of
     * the model human:NAME written (or edited from another candidate) by a
     * labeler; prompts written by labelers keep their kind, author and
     * few-shot examples, and other labelers' flags on them hold them back.
     * Claims gain a task (rank, write), so one labeler may both write an
     * answer to a prompt and be handed prompts to rank (never one holding
     * her own answer): the table is rebuilt with the wider unique key. */
    "CREATE TABLE demonstrations(\n"
    "  candidate_id INTEGER PRIMARY KEY REFERENCES candidates(id) ON DELETE CASCADE,\n"
    "  labeler_id INTEGER NOT NULL REFERENCES labelers(id),\n"
    "  edited_from INTEGER REFERENCES candidates(id),\n"
    "  time_spent_ms INTEGER,\n"
    "  edit_distance INTEGER,\n"
    "  simulated INTEGER NOT NULL DEFAULT 0,\n"
    "  source TEXT,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));\n"
    "CREATE INDEX demonstrations_labeler ON demonstrations(labeler_id);\n"
    "ALTER TABLE prompts ADD COLUMN kind TEXT;\n"
    "ALTER TABLE prompts ADD COLUMN author_id INTEGER REFERENCES labelers(id);\n"
    "ALTER TABLE prompts ADD COLUMN examples TEXT;\n"
    "CREATE TABLE prompt_flags(\n"
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  labeler_id INTEGER NOT NULL REFERENCES labelers(id),\n"
    "  flag TEXT NOT NULL CHECK(flag IN ('unclear','unsafe','duplicate')),\n"
    "  note TEXT,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),\n"
    "  PRIMARY KEY(prompt_id, labeler_id, flag));\n"
    "CREATE TABLE assignments_new(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  labeler_id INTEGER NOT NULL REFERENCES labelers(id),\n"
    "  task TEXT NOT NULL DEFAULT 'rank' CHECK(task IN ('rank','write')),\n"
    "  status TEXT NOT NULL DEFAULT 'claimed' CHECK(status IN ('claimed','done','skipped')),\n"
    "  is_gold INTEGER NOT NULL DEFAULT 0,\n"
    "  claimed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),\n"
    "  expires_at TEXT,\n"
    "  done_at TEXT,\n"
    "  UNIQUE(prompt_id, labeler_id, task));\n"
    "INSERT INTO assignments_new(id, prompt_id, labeler_id, status, is_gold, claimed_at, expires_at, done_at)\n"
    "  SELECT id, prompt_id, labeler_id, status, is_gold, claimed_at, expires_at, done_at FROM assignments;\n"
    "DROP TABLE assignments;\n"
    "ALTER TABLE assignments_new RENAME TO assignments;\n"
    "CREATE INDEX assignments_status ON assignments(task, status, prompt_id);\n"
    "CREATE INDEX assignments_labeler ON assignments(labeler_id, task, status);\n",
    /* 5 -> 6: how sure each reward model is about each prompt, computed by
     * `rlhf score` from the stored scores: the margin between the prompt's
     * two best-scored candidates. Labeling in uncertain order hands out the
     * smallest margins first; export filters and sorts by it. */
    "CREATE TABLE prompt_margins(\n"
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  model_id INTEGER NOT NULL REFERENCES models(id),\n"
    "  margin REAL NOT NULL,\n"
    "  n_scored INTEGER NOT NULL,\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),\n"
    "  PRIMARY KEY(model_id, prompt_id));\n"
    "CREATE INDEX prompt_margins_order ON prompt_margins(model_id, margin);\n",
    /* 6 -> 7: tags a prompt carries for what uses it ("safety": the prompts
     * the safety RM of a combination judges, Llama 2's gate). Unlike a
     * labeler's flag, a tag holds nothing back. */
    "CREATE TABLE prompt_tags(\n"
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,\n"
    "  tag TEXT NOT NULL,\n"
    "  PRIMARY KEY(tag, prompt_id));\n",
    /* 7 -> 8: the sampling configuration of each draw (gen_draw_config: the
     * parameters and the base seed), so a rerun reuses only the draws made
     * the way it would make them; eval at another temperature or seed draws
     * its own. Earlier draws' configuration is unknown (NULL): never reused. */
    "ALTER TABLE draws ADD COLUMN config TEXT;\n",
};

const int db_n_migrations = (int)(sizeof db_migrations / sizeof db_migrations[0]);

_Static_assert(sizeof db_migrations / sizeof db_migrations[0] == DB_SCHEMA_VERSION,
               "one migration per schema version");
