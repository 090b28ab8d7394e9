#!/usr/bin/env python3
"""An example judge for `rlhf label --auto-cmd`: knows the facts of the demo task
(samples/make_corpus.py) and scores each candidate by whether it states the right
fact, plus a little for form (ends in a full stop, not too long, no repeated words).

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
from make_corpus import ANIMALS, CAPITALS, COLORS, NUMBERS, OPPOSITES, PLURALS, THINGS  # noqa: E402


def words(s):
    return re.findall(r"[a-z]+", s.lower())


def expected(prompt):
    """The words a right answer must contain, or None when the judge does not know."""
    p = prompt.lower()
    m = re.search(r"opposite of (?:the word )?([a-z]+)", p)
    if m:
        for a, b in OPPOSITES:
            if m.group(1) == a:
                return [b]
            if m.group(1) == b:
                return [a]
    m = re.search(r"(?:sound does a|does a|describe a) ([a-z]+)", p)
    if m:
        for an, sound, part in ANIMALS:
            if an == m.group(1):
                return [sound] + (words(part) if p.startswith("describe") else [])
    m = re.search(r"colou?r (?:is|of) the ([a-z]+)", p)
    if m:
        return [c for t, c in COLORS if t == m.group(1)][:1] or None
    m = re.search(r"capital (?:city )?of ([a-z ]+)", p)
    if m:
        return [w for co, ca in CAPITALS if co.lower() == m.group(1).strip() for w in words(ca)] or None
    m = re.search(r"plural of ([a-z]+)", p)
    if m:
        return [pl for w, pl in PLURALS if w == m.group(1)][:1] or None
    m = re.search(r"what is ([a-z]+) plus ([a-z]+)", p)
    if m and m.group(1) in NUMBERS and m.group(2) in NUMBERS:
        z = NUMBERS.index(m.group(1)) + NUMBERS.index(m.group(2))
        return [NUMBERS[z]] if z < len(NUMBERS) else None
    return None


def score(prompt, text):
    w = words(text)
    form = 0.0
    if text.rstrip().endswith((".", "!", "?")):
        form += 0.4
    if 3 <= len(w) <= 30:
        form += 0.3
    if w and len(set(w)) == len(w):
        form += 0.3
    want = expected(prompt)
    m = re.search(r"list ([a-z]+) ([a-z]+)", prompt.lower())
    if want is None and m and m.group(1) in NUMBERS:
        items = [i for name, its in THINGS if name == m.group(2) for i in its]
        got = len(set(w) & set(items))
        fact = 1.0 if got == NUMBERS.index(m.group(1)) else 0.5 * min(got, 1)
    elif want is None:
        fact = 0.5  # unknown prompt: judge form only
    else:
        fact = 1.0 if all(x in w for x in want) else 0.0
    return round(0.7 * fact + 0.3 * form, 4)


for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps({"scores": [score(req["prompt"], c["text"]) for c in req["candidates"]]}), flush=True)
