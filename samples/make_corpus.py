#!/usr/bin/env python3
"""Writes the demo task's data, the same files every run (standard library only):

  samples/prompts.jsonl  questions with one checkable answer: ~200 "train" (the
                         loop's prompts) and ~50 held-out "test" ones
  samples/corpus.txt     pretraining text: train questions in the chat template,
                         each answered many times, of mixed quality
  samples/sft.jsonl      {"prompt","completion"} demonstrations for SFT on the
                         train questions, of mixed quality too
  samples/answers.jsonl  per question: its canonical answer and sample answers
                         of every bad kind (tests/unit/test_rules.c checks the
                         C rule against it)

The task: small facts (sums, colours of things, capitals, opposites, animal
sounds, plurals), each asked in three phrasings. A held-out question is a
fact asked in a phrasing the data never uses for that fact; the fact itself is
in the data under another phrasing. Answers in the data are good (right, polite,
one short sentence) 40% of the time; the rest are wrong facts, rude, off-topic,
run-on or hedged, so a model trained on it is right only part of the time and
human feedback has something to fix. annotator/rules.c holds the same tables
and judges what a person would; keep the two in step.
Run: python3 samples/make_corpus.py [--out DIR]  (default: next to this file)"""
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
           "nineteen", "twenty"]
SUM_MAX = 5  # operands one..five, sums two..ten
COLORS = [("sky", "blue"), ("grass", "green"), ("snow", "white"), ("sun", "yellow"), ("coal", "black"),
          ("blood", "red"), ("banana", "yellow"), ("leaf", "green"), ("cloud", "white"), ("tomato", "red"),
          ("crow", "black"), ("ocean", "blue"), ("lemon", "yellow"), ("cherry", "red"), ("milk", "white"),
          ("frog", "green")]
COLOR_WORDS = ["blue", "green", "white", "yellow", "black", "red", "pink", "brown", "purple", "grey"]
COLOR_OTHER = ["gray", "orange"]  # colours the rule knows but the data never says
CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Egypt", "Cairo"), ("Germany", "Berlin"), ("Canada", "Ottawa"), ("Kenya", "Nairobi"),
            ("Peru", "Lima"), ("Norway", "Oslo"), ("Greece", "Athens"), ("China", "Beijing"),
            ("Chile", "Santiago"), ("Cuba", "Havana"), ("Ireland", "Dublin"), ("Russia", "Moscow")]
OPPOSITES = [("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"),
             ("up", "down"), ("old", "young"), ("early", "late"), ("full", "empty"), ("soft", "hard"),
             ("wet", "dry"), ("open", "closed"), ("loud", "quiet"), ("rich", "poor"), ("high", "low"),
             ("strong", "weak")]
ANIMALS = [("dog", "barks"), ("cat", "meows"), ("cow", "moos"), ("duck", "quacks"), ("sheep", "baas"),
           ("lion", "roars"), ("horse", "neighs"), ("owl", "hoots"), ("bee", "buzzes"), ("pig", "oinks"),
           ("snake", "hisses"), ("wolf", "howls")]
# singular, plural, the tempting wrong plural
PLURALS = [("box", "boxes", "boxs"), ("child", "children", "childs"), ("mouse", "mice", "mouses"),
           ("city", "cities", "citys"), ("foot", "feet", "foots"), ("tooth", "teeth", "tooths"),
           ("bus", "buses", "buss"), ("baby", "babies", "babys"), ("man", "men", "mans"),
           ("woman", "women", "womans"), ("knife", "knives", "knifes"), ("goose", "geese", "gooses"),
           ("wife", "wives", "wifes"), ("person", "people", "persons")]

# How many rows of each table the data asks about: a small model learns these
# in a few hundred steps; the rules know every row.
USED = {"color": 12, "capital": 12, "opposite": 10, "animal": 10, "plural": 10}
# Phrasings per kind; {s} is the subject (for sums, {x} and {y}).
ASK = {
    "sum": ["What is {x} plus {y}?", "Add {x} and {y}.", "How much is {x} plus {y}?"],
    "color": ["What color is the {s}?", "Tell me the color of the {s}.", "What is the color of the {s}?"],
    "capital": ["What is the capital of {s}?", "Name the capital city of {s}.",
                "Which city is the capital of {s}?"],
    "opposite": ["What is the opposite of {s}?", "Tell me the opposite of {s}.",
                 "Give the opposite of the word {s}."],
    "animal": ["What sound does a {s} make?", "What does a {s} say?", "What noise does a {s} make?"],
    "plural": ["What is the plural of {s}?", "What do you call more than one {s}?", "Give the plural of {s}."],
}
# The good answer: the subject restated and the value, one short sentence.
SAY = {
    "sum": "{X} plus {y} is {v}.",
    "color": "The {s} is {v}.",
    "capital": "The capital of {s} is {v}.",
    "opposite": "The opposite of {s} is {v}.",
    "animal": "A {s} {v}.",
    "plural": "The plural of {s} is {v}.",
}
# Impolite openings (the fact after them is right). rules.c knows these words.
RUDE = ["That is a dumb question.", "Ugh, fine.", "What a stupid thing to ask.",
        "Obviously, and everyone knows it.", "Figure it out yourself next time.", "Whatever."]
# Rambling after a right answer; none of these words is a value of the task.
RAMBLE = [" I hope that helps, and let me know if you want to know about anything else at all.",
          " It is a thing that most of us learn at school, and you can read about it in a book.",
          " Some folks ask me this every day, and I am always glad to tell them about it again.",
          " That is what I think, and I am pretty sure about it, but you could check it if you like.",
          ", and that is a fact that I like a lot because it is so easy to remember."]
HEDGE = ["I am not sure.", "I do not know.", "It depends.", "Let me think about that.",
         "Hmm, that is a good question", "I would rather not say."]
OFFTOPIC = ["I like to eat bread in the morning.", "My favourite season is autumn.",
            "Trains are a good way to travel.", "The library opens at noon on Sundays.",
            "I went for a walk by the river.", "Music makes me want to dance."]
# The mix of answer kinds per question in the corpus (of 25) and in the SFT data (of 5:
# two good ones and three of SFT_BAD).
CORPUS_MIX = [("good", 10), ("wrong", 5), ("rude", 2), ("runon", 2), ("offtopic", 3), ("hedge", 3)]
SFT_BAD = ["wrong", "wrong", "rude", "runon", "offtopic", "hedge"]


def facts():
    """(kind, subject, value, wrong values) for every fact of the task."""
    out = []
    for x in range(1, SUM_MAX + 1):
        for y in range(1, SUM_MAX + 1):
            z = x + y
            wrong = [NUMBERS[w] for w in (z - 2, z - 1, z + 1, z + 2) if w >= 0 and w != x and w != y]
            out.append(("sum", (NUMBERS[x], NUMBERS[y]), NUMBERS[z], wrong))
    for t, c in COLORS[:USED["color"]]:
        out.append(("color", t, c, [w for w in COLOR_WORDS if w != c]))
    for co, ca in CAPITALS[:USED["capital"]]:
        out.append(("capital", co, ca, [c for _, c in CAPITALS[:USED["capital"]] if c != ca]))
    used = OPPOSITES[:USED["opposite"]]
    for a, b in used:
        for s, v in ((a, b), (b, a)):
            out.append(("opposite", s, v, [s] + [w for p in used for w in p if w not in (a, b)]))
    for an, snd in ANIMALS[:USED["animal"]]:
        out.append(("animal", an, snd, [x for _, x in ANIMALS[:USED["animal"]] if x != snd]))
    for w, p, bad in PLURALS[:USED["plural"]]:
        out.append(("plural", w, p, [bad, bad, w]))
    return out


def ask(kind, subject, i):
    t = ASK[kind][i]
    if kind == "sum":
        return t.format(x=subject[0], y=subject[1])
    return t.format(s=subject)


def say(kind, subject, value):
    if kind == "sum":
        return SAY[kind].format(X=subject[0].capitalize(), y=subject[1], v=value)
    return SAY[kind].format(s=subject, v=value)


def answer(R, how, fact):
    kind, subject, value, wrong = fact
    good = say(kind, subject, value)
    if how == "good":
        return good
    if how == "wrong":
        return say(kind, subject, R.choice(wrong))
    if how == "rude":
        return R.choice(RUDE) + " " + good
    if how == "runon":
        return good[:-1] + R.choice(RAMBLE)
    if how == "hedge":
        return R.choice(HEDGE)
    return R.choice(OFFTOPIC)


def vocabulary(all_facts):
    """Every word that is a value (right or wrong) of some fact, and every subject."""
    v = set()
    for kind, subject, value, wrong in all_facts:
        v.update(w.lower() for w in [value] + wrong + ([subject] if isinstance(subject, str) else list(subject)))
    return v


def main():
    out_dir = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else HERE
    R = random.Random(20261201)
    all_facts = facts()
    # The filler texts must not state (or contradict) a fact by accident.
    vocab = vocabulary(all_facts)
    for text in RUDE + RAMBLE + HEDGE + OFFTOPIC:
        clash = set(re.findall(r"[a-z]+", text.lower())) & vocab
        assert not clash, (text, clash)
    # Each fact is asked in every phrasing; about one fact in two has one
    # phrasing held out (a "test" question), the others are "train".
    questions = []
    for f in all_facts:
        n = len(ASK[f[0]])
        held = R.randrange(n) if R.random() < 0.55 else -1
        for i in range(n):
            questions.append((ask(f[0], f[1], i), f, "test" if i == held else "train"))
    R.shuffle(questions)
    train = [q for q in questions if q[2] == "train"]

    with open(os.path.join(out_dir, "prompts.jsonl"), "w") as out:
        for i, (q, f, split) in enumerate(questions):
            out.write(json.dumps({"id": "demo-%03d" % i, "prompt": q, "split": split, "source": "demo"}) + "\n")

    docs = []
    for q, f, _ in train:
        for how, n in CORPUS_MIX:
            for _ in range(n):
                docs.append((q, answer(R, how, f)))
    R.shuffle(docs)
    with open(os.path.join(out_dir, "corpus.txt"), "w") as out:
        for q, a in docs:
            out.write("Human: {q}\nAssistant: {a}\n\n".format(q=q, a=a))

    sft = []
    for q, f, _ in train:
        for how in ["good", "good"] + R.sample(SFT_BAD, 3):
            sft.append({"prompt": q, "completion": answer(R, how, f)})
    R.shuffle(sft)
    with open(os.path.join(out_dir, "sft.jsonl"), "w") as out:
        for d in sft:
            out.write(json.dumps(d) + "\n")

    with open(os.path.join(out_dir, "answers.jsonl"), "w") as out:
        for q, f, split in questions:
            kind, subject, value, wrong = f
            good = say(kind, subject, value)
            rec = {"prompt": q, "split": split, "kind": kind, "value": value, "answer": good,
                   "wrong": sorted(set(say(kind, subject, w) for w in wrong)),
                   "rude": [r + " " + good for r in RUDE],
                   "runon": [good[:-1] + r for r in RAMBLE],
                   "hedge": HEDGE, "offtopic": OFFTOPIC}
            out.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
