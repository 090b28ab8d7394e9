# The foundation from a user's side: init, prompts import/list, status, help,
# exit codes, and every kind of bad input leaving the project as it was.
. "$ROOT/tests/e2e/lib.sh"

expect_rc 0 "$RLHF" --version; contains "$OUT" "rlhf "
expect_rc 0 "$RLHF" --help; contains "$OUT" "prompts"
expect_rc 0 "$RLHF" help prompts; contains "$OUT" "usage: rlhf prompts"
expect_rc 0 "$RLHF" prompts --help; contains "$OUT" "--split"
expect_rc 2 "$RLHF"
expect_rc 2 "$RLHF" no-such-command; contains "$ERR" "unknown command 'no-such-command'"

expect_rc 0 "$RLHF" init p.db; contains "$OUT" "created project p.db"
expect_rc 0 "$RLHF" init p.db; contains "$OUT" "opened project p.db"
export RLHF_DB=p.db

printf 'Write a haiku.\r\nExplain tides.\n\nWrite a haiku.\n' > plain.txt
expect_rc 0 "$RLHF" prompts import plain.txt
contains "$OUT" "imported 2 prompts (3 read, 1 duplicates skipped)"
printf '\357\273\277{"prompt":"你好，世界 🌍","id":"x1","split":"test"}\n{"instruction":"Sum 2+2","source":"hand"}\n{"text":"Explain tides."}\n' > data.jsonl
expect_rc 0 "$RLHF" prompts import data.jsonl
contains "$OUT" "imported 2 prompts"
expect_rc 0 "$RLHF" prompts import --split dev "$ROOT/samples/prompts.jsonl"
expect_rc 0 "$RLHF" prompts list --split test --json
contains "$OUT" '"prompt":"你好，世界 🌍"'
contains "$OUT" '"ext_id":"x1"'
expect_rc 0 "$RLHF" prompts list --contains haiku
contains "$OUT" "Write a haiku."
expect_rc 0 "$RLHF" status
ns=$(wc -l < "$ROOT/samples/prompts.jsonl")
contains "$OUT" "prompts      $((ns + 4))"
contains "$OUT" "dev $ns"
expect_rc 0 "$RLHF" status --json
/usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["prompts"]=='$((ns + 4))' and d["splits"]["test"]==1, d' "$OUT" || die "status --json"

before=$(sql p.db "SELECT count(*) FROM prompts")
# bad input: each import fails, names the place, and changes nothing
printf '{"prompt":"new one"}\n{"prompt": "unterminated\n' > malformed.jsonl
expect_rc 1 "$RLHF" prompts import malformed.jsonl; contains "$ERR" "malformed.jsonl:2: invalid JSON"
contains "$ERR" "nothing was imported"
printf '{"prompt":"ok"}\n{"id":3}\n' > missing.jsonl
expect_rc 1 "$RLHF" prompts import missing.jsonl
contains "$ERR" 'missing.jsonl:2: missing field "prompt" or "instruction" or "text"'
printf '{"prompt":["a"]}\n' > wrongtype.jsonl
expect_rc 1 "$RLHF" prompts import wrongtype.jsonl; contains "$ERR" 'wrongtype.jsonl:1: field "prompt" must be a string'
printf '{"prompt":"x","split":"no spaces allowed"}\n' > badsplit.jsonl
expect_rc 1 "$RLHF" prompts import badsplit.jsonl; contains "$ERR" 'badsplit.jsonl:1: field "split"'
: > empty.jsonl
expect_rc 1 "$RLHF" prompts import empty.jsonl; contains "$ERR" "empty.jsonl: no prompts"
head -c 4096 /dev/urandom > garbage.bin
expect_rc 1 "$RLHF" prompts import garbage.bin; contains "$ERR" "garbage.bin:"
/usr/bin/python3 -c 'import json; open("big.jsonl","w").write(json.dumps({"prompt":"y"*(10*1024*1024)})+"\n{bad\n")'
expect_rc 1 "$RLHF" prompts import big.jsonl; contains "$ERR" "big.jsonl:2: invalid JSON"
expect_rc 1 "$RLHF" prompts import plain.txt nosuchfile.txt; contains "$ERR" "nosuchfile.txt"
[ "$(sql p.db "SELECT count(*) FROM prompts")" = "$before" ] || die "a failed import changed the database"
# ... while a 10 MB prompt on its own is fine
/usr/bin/python3 -c 'import json; open("big1.jsonl","w").write(json.dumps({"prompt":"z"*(10*1024*1024)})+"\n")'
expect_rc 0 "$RLHF" prompts import big1.jsonl

# flags and databases
expect_rc 2 "$RLHF" prompts import --bogus plain.txt; contains "$ERR" "unknown option '--bogus'"
expect_rc 2 "$RLHF" prompts import --split; contains "$ERR" "needs a value"
expect_rc 2 "$RLHF" prompts list --limit abc; contains "$ERR" "--limit"
expect_rc 2 "$RLHF" status extra-arg
expect_rc 1 "$RLHF" status --db missing.db; contains "$ERR" "no such project database"
[ ! -e missing.db ] || die "status created a database"
(unset RLHF_DB; expect_rc 2 "$RLHF" status; contains "$ERR" "no database given")
cp p.db ro.db; chmod 444 ro.db
if [ "$(id -u)" != 0 ]; then
    expect_rc 1 "$RLHF" prompts import --db ro.db plain.txt; contains "$ERR" "read-only"
elif command -v setpriv >/dev/null; then
    # root writes anything: check as an unprivileged user instead
    chmod 755 . ; chmod 644 plain.txt
    expect_rc 1 setpriv --reuid=65534 --regid=65534 --clear-groups "$RLHF" prompts import --db ro.db plain.txt
    contains "$ERR" "read-only"
    expect_rc 0 setpriv --reuid=65534 --regid=65534 --clear-groups "$RLHF" status --db ro.db
fi
expect_rc 0 "$RLHF" status --db ro.db
/usr/bin/python3 -c 'import sqlite3; c=sqlite3.connect("new.db"); c.execute("PRAGMA user_version=1"); c.execute("PRAGMA application_id=1380730950"); c.execute("PRAGMA user_version=42"); c.commit()'
expect_rc 1 "$RLHF" status --db new.db; contains "$ERR" "newer than this rlhf supports"
expect_rc 1 "$RLHF" prompts import --db new.db plain.txt; contains "$ERR" "newer"
echo "not a database" > junk.db
expect_rc 1 "$RLHF" status --db junk.db; contains "$ERR" "not an rlhf project database"
exit 0
