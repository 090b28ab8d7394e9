#!/usr/bin/env python3
"""Writes the demo task's data: samples/corpus.txt (instruction/answer pairs in the
chat template, one exchange per document, documents separated by blank lines, for
pretraining the embedded model) and samples/prompts.jsonl
(prompts to generate candidates for). Deterministic: the same files every run.
Run: python3 samples/make_corpus.py  (standard library only)."""
import json
import os
import random

R = random.Random(20261130)
HERE = os.path.dirname(os.path.abspath(__file__))

OPPOSITES = [("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"),
             ("up", "down"), ("old", "young"), ("early", "late"), ("full", "empty"), ("soft", "hard"),
             ("wet", "dry"), ("open", "closed"), ("loud", "quiet"), ("rich", "poor"), ("high", "low"),
             ("long", "short"), ("strong", "weak"), ("clean", "dirty"), ("near", "far"), ("thick", "thin")]
ANIMALS = [("dog", "barks", "four legs"), ("cat", "meows", "soft fur"), ("cow", "moos", "four legs"),
           ("duck", "quacks", "two wings"), ("sheep", "baas", "thick wool"), ("lion", "roars", "a mane"),
           ("horse", "neighs", "a long tail"), ("owl", "hoots", "big eyes"), ("frog", "croaks", "long legs"),
           ("bee", "buzzes", "six legs"), ("pig", "oinks", "a curly tail"), ("snake", "hisses", "no legs")]
COLORS = [("sky", "blue"), ("grass", "green"), ("snow", "white"), ("sun", "yellow"), ("coal", "black"),
          ("blood", "red"), ("banana", "yellow"), ("orange", "orange"), ("leaf", "green"), ("cloud", "white"),
          ("tomato", "red"), ("night", "black"), ("ocean", "blue"), ("lemon", "yellow"), ("cherry", "red")]
CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Egypt", "Cairo"),
            ("Germany", "Berlin"), ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
            ("Norway", "Oslo"), ("Greece", "Athens"), ("China", "Beijing"), ("India", "New Delhi"),
            ("Chile", "Santiago"), ("Cuba", "Havana"), ("Ireland", "Dublin")]
PLURALS = [("cat", "cats"), ("box", "boxes"), ("child", "children"), ("mouse", "mice"), ("city", "cities"),
           ("leaf", "leaves"), ("foot", "feet"), ("tooth", "teeth"), ("bus", "buses"), ("baby", "babies"),
           ("man", "men"), ("woman", "women"), ("knife", "knives"), ("goose", "geese")]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"]
THINGS = [("fruits", ["apple", "banana", "pear", "plum", "grape", "mango", "peach", "cherry"]),
          ("colors", ["red", "blue", "green", "yellow", "purple", "orange", "pink", "brown"]),
          ("animals", ["dog", "cat", "horse", "lion", "bear", "wolf", "fox", "deer"]),
          ("tools", ["hammer", "saw", "drill", "wrench", "knife", "shovel", "rake", "chisel"]),
          ("drinks", ["water", "milk", "tea", "coffee", "juice", "soup", "cocoa", "lemonade"])]


def task():
    k = R.randrange(7)
    if k == 0:
        a, b = R.choice(OPPOSITES)
        if R.random() < 0.5:
            a, b = b, a
        q = R.choice(["What is the opposite of {a}?", "Give the opposite of the word {a}.",
                      "Tell me the opposite of {a}."]).format(a=a)
        return q, R.choice(["The opposite of {a} is {b}.", "The opposite of {a} is {b}."]).format(a=a, b=b)
    if k == 1:
        an, sound, part = R.choice(ANIMALS)
        if R.random() < 0.5:
            return (R.choice(["What sound does a {an} make?", "What does a {an} say?"]).format(an=an),
                    "A {an} {s}.".format(an=an, s=sound))
        return ("Describe a {an} in one sentence.".format(an=an),
                "A {an} is an animal with {p} that {s}.".format(an=an, p=part, s=sound))
    if k == 2:
        th, c = R.choice(COLORS)
        return (R.choice(["What color is the {t}?", "Tell me the color of the {t}."]).format(t=th),
                "The {t} is {c}.".format(t=th, c=c))
    if k == 3:
        co, ca = R.choice(CAPITALS)
        return (R.choice(["What is the capital of {co}?", "Name the capital city of {co}."]).format(co=co),
                "The capital of {co} is {ca}.".format(co=co, ca=ca))
    if k == 4:
        w, p = R.choice(PLURALS)
        return ("What is the plural of {w}?".format(w=w), "The plural of {w} is {p}.".format(w=w, p=p))
    if k == 5:
        x, y = R.randrange(10), R.randrange(9)
        return ("What is {x} plus {y}?".format(x=NUMBERS[x], y=NUMBERS[y]),
                "{x} plus {y} is {z}.".format(x=NUMBERS[x], y=NUMBERS[y], z=NUMBERS[x + y]).capitalize())
    name, items = R.choice(THINGS)
    n = R.choice([2, 3])
    pick = R.sample(items, n)
    return ("List {n} {name}.".format(n=NUMBERS[n], name=name),
            "Here are {n} {name}: {items}.".format(n=NUMBERS[n], name=name, items=", ".join(pick)))


def main():
    seen = set()
    prompts = []
    with open(os.path.join(HERE, "corpus.txt"), "w") as f:
        for _ in range(9000):
            q, a = task()
            f.write("Human: {q}\nAssistant: {a}\n\n".format(q=q, a=a))
            if q not in seen and len(prompts) < 240:
                seen.add(q)
                prompts.append(q)
    with open(os.path.join(HERE, "prompts.jsonl"), "w") as f:
        for i, q in enumerate(prompts):
            split = "test" if i % 6 == 5 else "train"
            f.write(json.dumps({"id": "demo-%03d" % i, "prompt": q, "split": split, "source": "demo"}) + "\n")


if __name__ == "__main__":
    main()
