#!/bin/sh
# What a reliability pass (fuzzing, fault injection, hostile input) found, one
# block per defect: each must fail cleanly with a message naming the place.
. "$ROOT/tests/e2e/lib.sh"
py() { /usr/bin/python3 -c "$@"; }
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" model-dump --out m --vocab 300 --seed 4

# --- a checkpoint of NaNs: an error naming the model, never a token (top-p once read ix[-1])
py 'import struct,sys
d=bytearray(open("m/model.bin","rb").read())
nan=struct.pack("<f",float("nan"))
for i in range(28,len(d)-3,4): d[i:i+4]=nan
open("nan.bin","wb").write(d)'
for extra in "--top-p 0.9" "" "--temperature 0" "--top-k 5 --top-p 0.5"; do
    expect_rc 1 "$RLHF" sample --model nan.bin --tokenizer tok.bin $extra --max-tokens 5 Hello
    contains "$ERR" "nan.bin"
    contains "$ERR" "not finite"
    expect_rc 1 "$RLHF" sample --model nan.bin --tokenizer tok.bin $extra --json --max-tokens 5 Hello
    not_contains "$OUT" "nan"
done
expect_rc 0 "$RLHF" init g.db
printf '{"prompt":"Hello"}\n' >p.jsonl
expect_rc 0 "$RLHF" prompts import --db g.db p.jsonl
expect_rc 1 "$RLHF" gen --db g.db --model nan.bin --tokenizer tok.bin -k 2 --top-p 0.9 --max-tokens 4
contains "$ERR" "nan.bin"
[ "$(sql g.db 'select count(*) from candidates')" = 0 ] || die "a NaN model wrote candidates"

# --- a negative PRAGMA user_version indexed the migrations table (SIGSEGV, or SQL from elsewhere)
for v in -1 -3 -1000000; do
    cp g.db v.db
    py 'import sqlite3,sys; c=sqlite3.connect("v.db"); c.execute("PRAGMA user_version=%d" % int(sys.argv[1])); c.commit()' "$v"
    for cmd in status "prompts list" "label --auto length --as bot"; do
        expect_rc 1 "$RLHF" $cmd --db v.db
        contains "$ERR" "schema version $v is not one rlhf knows"
    done
done

# --- read-only fallback: commits in a -wal left by a killed writer are read, or
# the open is refused; never a stale project shown as whole (immutable=1 skipped them)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    mkdir ro && cp g.db ro/a.db
    py 'import sqlite3,os
c=sqlite3.connect("ro/a.db"); c.execute("PRAGMA wal_autocheckpoint=0")
for i in range(3): c.execute("INSERT INTO prompts(text,hash) VALUES(?,?)", ("wal %d" % i, "h%d" % i))
c.commit(); os._exit(0)'
    [ -s ro/a.db-wal ] || die "the writer left no WAL"
    chmod 444 ro/a.db ro/a.db-wal ro/a.db-shm; chmod 555 ro; chmod 755 .
    expect_rc 0 nobody "$RLHF" status --db ro/a.db --json
    contains "$OUT" '"prompts":4'
    expect_rc 0 nobody "$RLHF" prompts list --db ro/a.db
    contains "$OUT" "wal 2"
    # without -shm in a folder it cannot write, the WAL cannot be read: refuse
    chmod 755 ro; rm ro/a.db-shm; chmod 555 ro
    expect_rc 1 nobody "$RLHF" status --db ro/a.db
    contains "$ERR" "a.db-wal"
    expect_rc 1 nobody "$RLHF" export --db ro/a.db --format pairs
    chmod 755 ro
fi

# --- terminal escapes in stored text never reach the terminal in plain-text output
no_ctl() { py 'import sys; d=open("out.txt","rb").read(); sys.exit(any(b in d for b in (b"\x1b", b"\x07", b"\xc2\x9b")))' || die "control characters reach the terminal: $*"; }
export RLHF_DB=esc.db
expect_rc 0 "$RLHF" init esc.db
cat >esc.jsonl <<'J'
{"prompt":"title \u001b]0;pwned\u0007 clip \u001b]52;c;aGVsbG8=\u0007 clear \u001b[2J csi \u009b2J end","completion":"ok \u001b[31mred\u001b[0m","model":"m\u001b[2J"}
{"prompt":"title \u001b]0;pwned\u0007 clip \u001b]52;c;aGVsbG8=\u0007 clear \u001b[2J csi \u009b2J end","completion":"longer answer","model":"plain"}
J
expect_rc 0 "$RLHF" candidates import esc.jsonl
expect_rc 0 "$RLHF" label --auto length --as bot
py 'import sqlite3; c=sqlite3.connect("esc.db"); c.execute("UPDATE labelers SET name=?", ("bot\x1b]52;c;aGk=\x07",)); c.execute("UPDATE prompts SET split=?", ("tr\x1b[2Jain",)); c.commit()'
for cmd in "prompts list" "candidates list --prompt 1" status models agreement elo; do
    expect_rc 0 "$RLHF" $cmd
    no_ctl $cmd
done
expect_rc 0 "$RLHF" prompts list
contains "$OUT" 'title \x1b]0;pwned\x07 clip'
contains "$OUT" 'csi \u009b2J end'
expect_rc 0 "$RLHF" candidates list --prompt 1
contains "$OUT" 'm\x1b[2J'
unset RLHF_DB

# --- NULL text or names in a hand-edited database (NOT NULL dropped from the schema): a
# clear error naming the row, never a crash (export hh, label --auto length and elo crashed)
export RLHF_DB=null.db
expect_rc 0 "$RLHF" init null.db
printf '{"prompt":"p1","completion":"a","model":"m1"}\n{"prompt":"p1","completion":"bbbb bbb bbbbbbbbbb bbb","model":"m2"}\n{"prompt":"p2","completion":"aa","model":"m1"}\n{"prompt":"p2","completion":"bbbb bbbb bbbbbbbb bbbbbb","model":"m2"}\n' >c.jsonl
expect_rc 0 "$RLHF" candidates import c.jsonl
cp null.db fresh.db
expect_rc 0 "$RLHF" label --auto length --as bot
cp null.db labeled.db
nullify() {
    cp "$1" null.db
    py 'import sqlite3,sys
c=sqlite3.connect("null.db"); c.isolation_level=None
c.execute("PRAGMA writable_schema=ON")
for col in ("text TEXT NOT NULL","name TEXT NOT NULL UNIQUE"):
    c.execute("UPDATE sqlite_master SET sql=replace(sql,?,?) WHERE type=?", (col, col.replace(" NOT NULL",""), "table"))
c.execute("PRAGMA writable_schema=OFF"); c.close()
c=sqlite3.connect("null.db"); c.execute(sys.argv[1]); c.commit()' "$2"
}
for q in "candidates SET text=NULL WHERE id=2|candidate 2 has no text" \
         "prompts SET text=NULL WHERE id=1|prompt 1 has no text" \
         "models SET name=NULL WHERE id=1|model 1 has no name" \
         "labelers SET name=NULL|labeler 1 has no name"; do
    for cmd in "export --format hh" "export --format pairs" elo "elo --json" agreement; do
        nullify labeled.db "UPDATE ${q%%|*}"
        expect_rc 1 "$RLHF" $cmd
        contains "$ERR" "${q#*|}"
    done
done
for q in "candidates SET text=NULL WHERE id=2|candidate 2 has no text" \
         "prompts SET text=NULL WHERE id=1|prompt 1 has no text" \
         "models SET name=NULL WHERE id=1|model 1 has no name"; do
    nullify fresh.db "UPDATE ${q%%|*}"
    expect_rc 1 "$RLHF" label --auto length --as bot
    contains "$ERR" "${q#*|}"
done
nullify fresh.db "UPDATE models SET name=NULL WHERE id=1"
expect_rc 1 "$RLHF" models
contains "$ERR" "model 1 has no name"
unset RLHF_DB

# --- a damaged assignments index handing out the same prompt again: the labeler stops
# with an error instead of ranking it forever (a stale index emulated by a trigger)
cp fresh.db loop.db
py 'import sqlite3; c=sqlite3.connect("loop.db"); c.execute("CREATE TRIGGER stale AFTER UPDATE OF status ON assignments WHEN new.status = '"'done'"' BEGIN UPDATE assignments SET status = '"'claimed'"' WHERE id = new.id; END"); c.commit()'
expect_rc 1 timeout 20 "$RLHF" label --db loop.db --auto length --as bot
contains "$ERR" "prompt 1 was handed out again"
[ "$(sql loop.db 'select count(*) from rankings')" = 1 ] || die "the same prompt was ranked twice in one session"

# --- checkpoint headers that ask for more than the file holds: refused by size, naming the
# file, before anything is allocated (a 28-byte llama2.c header asked for 70 trillion
# parameters, a 158-byte rlhf header for a 27 GB calloc); INT32_MIN vocab overflowed
py 'import struct
open("huge2c.bin","wb").write(struct.pack("<7i", 65536, 262144, 1024, 64, 64, 1 << 22, 1 << 20))
open("minvocab.bin","wb").write(struct.pack("<7i", 64, 128, 2, 4, 4, -2**31, 64) + bytes(4096))
C,H,L,nh,kv,V,T = 4096, 11008, 32, 32, 32, 32000, 2048
n = V*C + L*C + L*C*C + 2*L*C*C + L*C*C + L*C + 3*L*H*C + C
hdr = struct.pack("<8sII8iIIQQQqffff", b"RLHFCKPT", 1, 104, C, H, L, nh, kv, V, T, 1, 0, 0, n, 0, 0, 0, .9, .95, 1e-8, 0)
open("huge.bin","wb").write(hdr + bytes(54))'
lim() { if [ -n "${RLHF_SAN:-}" ]; then "$@"; else (ulimit -v 3000000; "$@"); fi; }
for f in huge2c.bin huge.bin; do
    expect_rc 1 lim "$RLHF" sample --model $f --tokenizer tok.bin x
    contains "$ERR" "$f: "
    contains "$ERR" "truncated"
done
expect_rc 1 "$RLHF" sample --model minvocab.bin --tokenizer tok.bin x
contains "$ERR" "minvocab.bin: bad config"

# --- write errors on standard output fail the command (they exited 0 on /dev/full)
if [ -w /dev/full ]; then
    full() { "$@" >/dev/full 2>err.txt; _rc=$?; ERR=$(cat err.txt); [ $_rc -eq 1 ] || die "exit $_rc on /dev/full: $*"; }
    for cmd in "prompts list" "candidates list --prompt 1" "status --json" status elo models agreement \
               "export --format pairs"; do
        full "$RLHF" $cmd --db labeled.db
        contains "$ERR" "No space left on device"
    done
    full "$RLHF" export --format pairs --db labeled.db
    contains "$ERR" "standard output"
    full "$RLHF" sample --model m/model.bin --tokenizer tok.bin --max-tokens 3 Hello
    contains "$ERR" "No space left on device"
    full "$RLHF" tokenizer encode --tokenizer tok.bin "Hello there"
    contains "$ERR" "No space left on device"
fi

# --- options after file names are options (as getopt permutes by default); -- ends them
expect_rc 0 "$RLHF" init opt.db
printf '{"prompt":"after"}\n' >f.jsonl
printf '{"prompt":"dashes"}\n' >./--split
expect_rc 0 "$RLHF" prompts import f.jsonl --split test --db opt.db
[ "$(sql opt.db "select split from prompts where text = 'after'")" = test ] || die "--split after the file was not taken"
expect_rc 0 "$RLHF" prompts import --db opt.db -- --split
[ "$(sql opt.db "select count(*) from prompts where text = 'dashes'")" = 1 ] || die "-- did not end the options"
expect_rc 0 "$RLHF" prompts list --db opt.db --split test
contains "$OUT" after
not_contains "$OUT" dashes

# --- labeler names are validated: no newlines, escapes, or 100 KB
for bad in "$(printf 'two\nlines')" "$(printf 'esc\033[2J')" "$(py 'print("x" * 100000)')" "$(printf 'c1\302\233x')"; do
    expect_rc 2 "$RLHF" label --db fresh.db --auto length --as "$bad"
    contains "$ERR" "labeler name"
done
[ "$(sql fresh.db 'select count(*) from labelers')" = 0 ] || die "a bad labeler name was stored"
expect_rc 0 "$RLHF" label --db fresh.db --auto length --as "José Müller-Łukasz 名前" --limit 1

# --- temporaries are mkstemp names next to the target, gone after the commit
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok2.bin "$ROOT/samples/corpus.txt"
ls tok2.bin.tmp.* >/dev/null 2>&1 && die "a temporary was left behind"

# --- an import holds no write lock while it reads its files (a 17 s import made every
# labeler exit with "database is locked"): fed through a pipe, it waits half-way while
# another writer commits; then it finishes, all or nothing
expect_rc 0 "$RLHF" init imp.db
mkfifo feed.jsonl
"$RLHF" prompts import --db imp.db feed.jsonl >imp.out 2>imp.err &
pid=$!
py 'import sqlite3, json, time
f = open("feed.jsonl", "w")
for i in range(500): f.write(json.dumps({"prompt": "staged %d" % i}) + "\n")
f.flush(); time.sleep(0.5)
c = sqlite3.connect("imp.db", timeout=2, isolation_level=None)
c.execute("BEGIN IMMEDIATE"); c.execute("INSERT INTO labelers(name) VALUES(?)", ("writer",)); c.execute("COMMIT")
n = c.execute("select count(*) from prompts").fetchone()[0]
assert n == 0, "prompts visible before the import ended: %d" % n
for i in range(500, 1000): f.write(json.dumps({"prompt": "staged %d" % i}) + "\n")
f.write(json.dumps({"prompt": "staged 3"}) + "\n")
f.close()' || { kill $pid; die "a writer was locked out by an import reading its file"; }
wait $pid || die "the import failed: $(cat imp.err)"
contains "$(cat imp.out)" "imported 1000 prompts (1001 read, 1 duplicates skipped)"
[ "$(sql imp.db 'select count(*) from prompts')" = 1000 ] || die "not all prompts imported"
[ "$(sql imp.db "select min(id) from prompts where text = 'staged 0'")" = 1 ] || die "file order lost"
# a bad line anywhere: nothing imported, and the staging left nothing behind
printf '{"prompt":"good"}\n{"prompt":""}\n' >bad.jsonl
expect_rc 1 "$RLHF" prompts import --db imp.db bad.jsonl
contains "$ERR" "bad.jsonl:2"
[ "$(sql imp.db 'select count(*) from prompts')" = 1000 ] || die "a failed import left prompts"

exit 0
