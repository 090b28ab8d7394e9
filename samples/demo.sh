#!/bin/sh
# make demo: the whole loop on the embedded default, end to end, with simulated
# labelers. Grows with the project; each stage runs only once its command exists.
set -eu
BUILD=${BUILD:-build}
RLHF="$(pwd)/$BUILD/rlhf"
DIR=${DEMO_DIR:-demo}
mkdir -p "$DIR"
export RLHF_DB="$DIR/demo.db"
has() { "$RLHF" help "$1" >/dev/null 2>&1; }
step() { printf '\n== %s\n' "$*"; }

step "1. a project database"
rm -f "$RLHF_DB" "$RLHF_DB-wal" "$RLHF_DB-shm"
"$RLHF" init "$RLHF_DB"

step "2. prompts of the demo task (samples/prompts.jsonl)"
"$RLHF" prompts import samples/prompts.jsonl
"$RLHF" prompts list --limit 5

step "status"
"$RLHF" status
