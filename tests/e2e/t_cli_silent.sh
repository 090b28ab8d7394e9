#!/bin/sh
# What used to succeed silently now fails with a message and a nonzero exit:
# a prompt that does not exist, dates that do not exist, a run kind no run
# has, a guidelines file that cannot be read, gold for a missing prompt; and
# report --help names --since once, range errors read as words.
. "$ROOT/tests/e2e/lib.sh"
DB=$TMP/p.db
"$RLHF" init $DB >/dev/null || die "init"
sky_candidates 2 > c.jsonl
"$RLHF" candidates import --db $DB c.jsonl >/dev/null || die "import"
expect_rc 1 "$RLHF" candidates list --db $DB --prompt 999; contains "$ERR" "no prompt with id 999"
expect_rc 0 "$RLHF" candidates list --db $DB --prompt 1; contains "$OUT" "sky is blue"
for d in 2026-13-45 2026-02-30 2025-02-29 2026-04-31 2026-00-10 2026-01-01T25:00; do
    expect_rc 2 "$RLHF" export --db $DB --format pairs --since $d; contains "$ERR" "is not a date"
    expect_rc 2 "$RLHF" export --db $DB --format pairs --until $d; contains "$ERR" "is not a date"
done
expect_rc 0 "$RLHF" export --db $DB --format pairs --since 2024-02-29 --until 2026-12-31T23:59
expect_rc 1 "$RLHF" report --db $DB --out r.html --kind bogus; contains "$ERR" "no run of kind 'bogus'"
[ -f r.html ] && die "a page was written for a bogus kind"
expect_rc 1 "$RLHF" label --db $DB --set-guidelines nofile.txt; contains "$ERR" "cannot read"
echo "Rank by the facts." > $TMP/guide.txt
expect_rc 0 "$RLHF" label --db $DB --set-guidelines guide.txt
expect_rc 1 "$RLHF" label --db $DB --add-gold '99:1>2'; contains "$ERR" "there is no prompt 99"
expect_rc 0 "$RLHF" label --db $DB --add-gold '1:1>2>3'
n=$("$RLHF" report --help | grep -c -- '^  --since')
[ "$n" = 1 ] || die "report --help lists --since $n times"
expect_rc 2 "$RLHF" candidates list --db $DB --prompt 0; contains "$ERR" "not a positive whole number"
not_contains "$ERR" "4611686018427387904"
echo "ok"
