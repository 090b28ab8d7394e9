#!/usr/bin/env python3
"""An example judge for `rlhf label --auto-cmd`: the rule `demo` of
annotator/rules.c written in Python. It knows the facts of the demo task (it
imports the tables of samples/make_corpus.py) and scores each answer as

  0.6 right fact (the right value, and no other value of that kind)
  + 0.15 polite + 0.1 on topic (names the question's subject) + 0.15 form
  (one clean sentence of at most 12 words ending in '.', '!' or '?')

so its rankings match `rlhf label --auto demo --noise 0`.

Protocol: one JSON object per line on stdin,
  {"prompt_id": 7, "prompt": "...", "candidates": [{"id": 12, "model": "m", "text": "..."}]}
and one JSON line back per prompt: {"scores": [...]} (higher is better).
Run: rlhf label --auto-cmd "python3 samples/judge_demo.py" --as fact-judge
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_corpus import (ANIMALS, CAPITALS, COLOR_OTHER, COLOR_WORDS, COLORS, NUMBERS,  # noqa: E402
                         OPPOSITES, PLURALS)

RUDE = {"dumb", "stupid", "ugh", "obviously", "whatever", "figure", "idiot", "duh", "silly",
        "annoying", "shut", "moron"}
STOP = {"the", "and", "for", "are", "you", "how", "why", "who", "was", "its", "can", "did", "not", "but",
        "any", "all", "about", "what", "which", "with", "that", "this", "these", "those", "from", "your",
        "have", "does", "into", "when", "where", "would", "could", "should", "there", "their", "them",
        "they", "than", "then", "give", "tell", "write", "explain", "describe", "please", "some", "will",
        "were"}
MAX_WORDS = 12
LOW = lambda pairs: [(a.lower(), b.lower()) for a, b in pairs]  # noqa: E731
VALUES = {"sum": set(NUMBERS), "color": set(COLOR_WORDS + COLOR_OTHER),
          "capital": {c.lower() for _, c in CAPITALS}, "opposite": {w for p in OPPOSITES for w in p},
          "animal": {s for _, s in ANIMALS}, "plural": {w for row in PLURALS for w in row}}


def words(s):
    return re.findall(r"[a-z0-9]+", s.lower())


def task(prompt):
    """(kind, subject words, right value) of a question of the task, or None."""
    w = words(prompt)
    find = lambda table: next((r for x in w for r in LOW(table) if r[0] == x), None)  # noqa: E731
    if {"plus", "add", "sum"} & set(w):
        xs = [NUMBERS.index(x) for x in w if x in NUMBERS][:2]
        if len(xs) == 2 and sum(xs) < len(NUMBERS):
            return "sum", [NUMBERS[xs[0]], NUMBERS[xs[1]]], NUMBERS[sum(xs)]
    elif "opposite" in w:
        for x in w:
            for a, b in OPPOSITES:
                if x in (a, b):
                    return "opposite", [x], b if x == a else a
    elif "capital" in w:
        r = find(CAPITALS)
        return ("capital", [r[0]], r[1]) if r else None
    elif "plural" in w or ("more" in w and "than" in w):
        r = find([(s, p) for s, p, _ in PLURALS])
        return ("plural", [r[0]], r[1]) if r else None
    elif "color" in w or "colour" in w:
        r = find(COLORS)
        return ("color", [r[0]], r[1]) if r else None
    elif {"sound", "say", "noise"} & set(w):
        r = find(ANIMALS)
        return ("animal", [r[0]], r[1]) if r else None
    return None


def correct(t, prompt, answer):
    """1 when the answer names the right value and no other value of its kind
    (words the question itself used do not count)."""
    kind, _, value = t
    pw, aw = words(prompt), words(answer)
    right = False
    for x in set(aw) & VALUES[kind]:
        if aw.count(x) - pw.count(x) <= 0:
            continue
        if x != value:
            return 0.0
        right = True
    return 1.0 if right else 0.0


def keyword(prompt, answer):
    keys = {x for x in words(prompt) if len(x) >= 3 and x not in STOP}
    return len(keys & set(words(answer))) / len(keys) if keys else 0.5


def form(answer):
    w = words(answer)
    if not w:
        return 0.0
    s = 1.0
    if "\ufffd" in answer:
        s -= 0.5
    if "Human" in answer or "Assistant" in answer:
        s -= 0.5
    if re.search(r"[.!?][A-Za-z]", answer):
        s -= 0.3
    if len(re.findall(r"[.!?](?:\s|$)", answer)) > 1:
        s -= 0.4
    if not answer.rstrip().endswith((".", "!", "?")):
        s -= 0.4
    if len(w) > MAX_WORDS:
        s -= 0.5
    if len(set(w)) / len(w) < 0.6:
        s -= 0.3
    return max(s, 0.0)


def score(prompt, answer):
    t = task(prompt)
    aw = set(words(answer))
    fact = correct(t, prompt, answer) if t else keyword(prompt, answer)
    polite = 0.0 if aw & RUDE else 1.0
    topic = sum(x in aw for x in t[1]) / len(t[1]) if t else keyword(prompt, answer)
    return 0.6 * fact + 0.15 * polite + 0.1 * topic + 0.15 * form(answer)  # as rules.c computes it


if __name__ == "__main__":
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps({"scores": [score(req["prompt"], c["text"]) for c in req["candidates"]]}), flush=True)
