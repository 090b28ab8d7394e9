#!/usr/bin/env python3
"""Training data for the e2e tests from the corpus's exchanges ("Human: P" then
"\nAssistant: A" in a paragraph): the first N (prompt, answer) pairs, with
--unique the first N with distinct prompts, written as each OUT asks.
usage: make_pairs.py CORPUS N [--unique] FILE=FORM[:FROM:TO]...
FROM:TO slices the pairs (default all of them); FORM is one of
  completion  {"prompt", "completion"}
  demos       the same with "model": "human-demos"
  chat        {"messages": [user, assistant]}
  reversed    {"prompt", "chosen", "rejected": the answer's words in reverse order}
  nextK       {"prompt", "chosen", "rejected": the answer K pairs on, wrapping in the slice}
  distinct    the number of distinct pairs (no newline)"""
import json, sys

corpus, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
unique = "--unique" in args
pairs = []
for d in open(corpus).read().split("\n\n"):
    if d.startswith("Human: ") and "\nAssistant: " in d:
        p, a = d[7:].split("\nAssistant: ", 1)
        if not unique or all(p != q for q, _ in pairs):
            pairs.append((p, a.strip()))
pairs = pairs[:n]


def record(form, i, p, a, part):
    if form == "completion":
        return {"prompt": p, "completion": a}
    if form == "demos":
        return {"prompt": p, "completion": a, "model": "human-demos"}
    if form == "chat":
        return {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]}
    if form == "reversed":
        return {"prompt": p, "chosen": a, "rejected": " ".join(reversed(a.split()))}
    if form.startswith("next"):
        return {"prompt": p, "chosen": a, "rejected": part[(i + int(form[4:])) % len(part)][1]}
    sys.exit("make_pairs.py: unknown form " + form)


for arg in args:
    if arg == "--unique":
        continue
    path, spec = arg.split("=", 1)
    form, *cut = spec.split(":")
    part = pairs[int(cut[0] or 0):int(cut[1]) if cut[1:] and cut[1] else None] if cut else pairs
    with open(path, "w") as f:
        if form == "distinct":
            f.write(str(len(set(part))))
            continue
        for i, (p, a) in enumerate(part):
            f.write(json.dumps(record(form, i, p, a, part)) + "\n")
