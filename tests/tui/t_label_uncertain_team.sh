# A labeling team in uncertain order at once: two people on the labeling
# screen (tmux) and simulated labelers running beside them, all with
# --order uncertain --overlap 2. Afterwards, from SQL: nobody ranked a prompt
# twice, no prompt ever had more rankings and live claims than the overlap,
# each labeler was handed prompts in non-decreasing RM margin, a claim left
# on quitting holds its place until its lease runs out and is then handed on,
# and in the end every prompt has exactly two rankings.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=u.db
expect_rc 0 "$RLHF" init u.db
: > c.jsonl
for i in $(seq 1 12); do
    printf '{"prompt":"Question %s?","completion":"Answer one to %s.","model":"a"}\n' $i $i >> c.jsonl
    printf '{"prompt":"Question %s?","completion":"Reply two for %s.","model":"b"}\n' $i $i >> c.jsonl
done
expect_rc 0 "$RLHF" candidates import c.jsonl
# an RM's margins, not in id order: prompt i has margin ((7 i) mod 12) / 10 + 0.01
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1])
rm = c.execute("insert into models(name, kind) values(\"rm-x\", \"rm\")").lastrowid
for p in range(1, 13):
    c.execute("insert into prompt_margins(prompt_id, model_id, margin, n_scored) values(?, ?, ?, 2)",
              (p, rm, (7 * p % 12) / 10 + 0.01))
c.commit()' u.db
first=$(sql u.db "select prompt_id from prompt_margins order by margin limit 1")

# sessions of our own beside tmux_lib's single one: name, then as tmux_lib
start() { $TM new-session -d -s "$1" -c "$PWD" -x 80 -y 24 \
    "env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 RLHF_DB=u.db $2; echo EXITED \$?; sleep 600"; }
on() {
    n=0
    while ! $TM capture-pane -p -t "$1" | grep -qF -- "$2"; do
        n=$((n + 1)); [ $n -lt 200 ] || { $TM capture-pane -p -t "$1"; die "$1: timed out waiting for: $2"; }
        sleep 0.05
    done
}
# rank NAME: 1>2 on the prompt on screen, submitted
rank() {
    $TM send-keys -t "$1" e; $TM send-keys -t "$1" -l -- "1>2"; $TM send-keys -t "$1" Enter
    on "$1" "Order: 1>2"
    $TM send-keys -t "$1" Enter
    on "$1" "saved prompt"
}
sims() {
    i=0
    while [ ! -e stop ]; do
        i=$((i + 1))
        "$RLHF" label --db u.db --auto demo --as "sim-$1" --order uncertain --overlap 2 --limit 1 >/dev/null 2>&1
        sleep 0.1
    done
}
# check: the overlap holds now (current rankings + live claims per prompt)
check() {
    over=$(sql u.db "select count(*) from prompts p where
        (select count(*) from rankings r where r.prompt_id = p.id and r.is_current and not r.skipped)
      + (select count(*) from assignments a where a.prompt_id = p.id and a.status = 'claimed' and a.task = 'rank'
           and a.expires_at > strftime('%Y-%m-%dT%H:%M:%SZ','now')) > 2")
    [ "$over" = 0 ] || { touch stop; die "$over prompts over the overlap"; }
}

start alice "$RLHF label --as alice --order uncertain --overlap 2"
start bob "$RLHF label --as bob --order uncertain --overlap 2"
on alice "uncertain: RM margin 0.010"
on bob "uncertain: RM margin 0.010"
sims a & s1=$!
sims b & s2=$!
for k in 1 2 3; do
    rank alice
    check
    rank bob
    check
done
touch stop
wait $s1 $s2
# alice leaves a prompt on screen: her claim stays (resume) and keeps its place
on alice "uncertain: RM margin"
$TM send-keys -t alice q
on alice "EXITED 0"
$TM send-keys -t bob q
on bob "EXITED 0"
held=$(sql u.db "select group_concat(p) from (select distinct prompt_id p from assignments where status = 'claimed' order by p)")
[ -n "$(sql u.db "select 1 from assignments a join labelers l on l.id = a.labeler_id
    where l.name = 'alice' and a.status = 'claimed'")" ] || die "alice's claim was not kept"
check
for l in fill1 fill2; do
    expect_rc 0 "$RLHF" label --db u.db --auto demo --as $l --order uncertain --overlap 2
done
# every prompt is full now, the ones the people hold with their claims standing in for rankings
[ "$(sql u.db "select count(*) from prompts p where
    (select count(*) from rankings r where r.prompt_id = p.id and r.is_current and not r.skipped)
  + (select count(*) from assignments a where a.prompt_id = p.id and a.status = 'claimed') != 2")" = 0 ] ||
    die "a claim did not hold its place (or a prompt is not full): $(sql u.db "select group_concat(x, ' ') from
        (select p.id || ':' || (select count(*) from rankings r where r.prompt_id = p.id and r.is_current and not r.skipped)
         || '+' || (select count(*) from assignments a where a.prompt_id = p.id and a.status = 'claimed') x from prompts p)")"
check

# invariants over the whole session
[ "$(sql u.db "select count(*) from (select prompt_id, labeler_id from rankings where is_current
    group by prompt_id, labeler_id having count(*) > 1)")" = 0 ] || die "a labeler ranked a prompt twice"
[ "$(sql u.db "select count(*) from rankings r join labelers l on l.id = r.labeler_id
    where l.name in ('alice', 'bob') and not r.skipped")" = 6 ] || die "the people's six rankings"
[ "$(sql u.db "select count(*) from rankings r join labelers l on l.id = r.labeler_id
    where l.name in ('alice', 'bob') and r.prompt_id = $first")" = 2 ] || die "both people began at the least certain prompt"
/usr/bin/python3 - u.db <<'PY' || die "a labeler was handed a prompt out of margin order"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("""select l.name, m.margin from assignments a join labelers l on l.id = a.labeler_id
    join prompt_margins m on m.prompt_id = a.prompt_id where a.task = 'rank' order by a.id""").fetchall()
by = {}
for name, margin in rows:
    by.setdefault(name, []).append(margin)
for name, ms in by.items():
    assert ms == sorted(ms), (name, ms)
assert len([n for n in by if n.startswith("sim-")]) == 2, by.keys()
PY

# the lease: once the people's claims have run out, their places go to others
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1])
c.execute("update assignments set expires_at = strftime(\"%Y-%m-%dT%H:%M:%SZ\", \"now\", \"-1 minute\") where status = \"claimed\"")
c.commit()' u.db
for l in late1 late2; do
    expect_rc 0 "$RLHF" label --db u.db --auto demo --as $l --order uncertain --overlap 2
done
[ "$(sql u.db "select group_concat(p) from (select distinct r.prompt_id p from rankings r join labelers l
    on l.id = r.labeler_id where l.name like 'late%' order by p)")" = "$held" ] ||
    die "the expired claims' prompts ($held) did not go to the next labelers"
[ "$(sql u.db "select count(*) from prompts p where (select count(*) from rankings r where r.prompt_id = p.id
    and r.is_current and not r.skipped) != 2")" = 0 ] || die "not every prompt has exactly two rankings"
exit 0
