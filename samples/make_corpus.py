#!/usr/bin/env python3
"""Writes samples/corpus.txt: simple English text for pretraining the demo model
and training its tokenizer. Generated from templates with a fixed seed, so the
file is reproducible and owes nothing to outside sources.
usage: python3 samples/make_corpus.py [OUT] [SIZE_BYTES]"""
import random
import sys

rng = random.Random(1234)
names = ["Tom", "Lily", "Sam", "Mia", "Ben", "Anna", "Max", "Zoe", "Leo", "Ella", "Jack", "Lucy"]
animals = ["dog", "cat", "bird", "fish", "rabbit", "duck", "frog", "horse", "cow", "fox", "bear", "mouse"]
things = ["ball", "kite", "box", "hat", "book", "cup", "toy car", "red apple", "blue bike", "little boat",
          "big drum", "green leaf", "shiny stone", "paper plane", "warm blanket"]
places = ["park", "garden", "forest", "beach", "farm", "school", "river", "kitchen", "hill", "town", "lake"]
adjs = ["happy", "sad", "tired", "brave", "kind", "curious", "hungry", "sleepy", "silly", "quiet", "proud"]
verbs = ["played", "ran", "jumped", "sang", "danced", "walked", "laughed", "looked around", "waited"]
colors = ["red", "blue", "green", "yellow", "pink", "purple", "orange", "white", "black", "brown"]
foods = ["bread", "soup", "apples", "cake", "rice", "carrots", "cheese", "milk", "eggs", "pie"]
weather = ["sunny", "rainy", "windy", "cold", "warm", "cloudy", "snowy"]
c = rng.choice


def story():
    a, b = rng.sample(names, 2)
    animal, thing, place = c(animals), c(things), c(places)
    s = [f"One {c(weather)} day, {a} went to the {place}.",
         f"{a} saw a {c(adjs)} {animal} near a {c(colors)} tree.",
         f"The {animal} had a {thing}.",
         f"\"Can I play with your {thing}?\" asked {a}.",
         c([f"The {animal} said yes, and they {c(verbs)} together.",
            f"The {animal} was shy, so {a} waited and smiled.",
            f"{b} came and wanted to play too."]),
         c([f"Then it began to rain, and they ran home.",
            f"They shared some {c(foods)} and felt {c(adjs)}.",
            f"{b} found a {c(things)} under a rock."]),
         c([f"At the end of the day, {a} was very {c(adjs)}.",
            f"{a} learned that sharing is good.",
            f"{a} and {b} became best friends.",
            f"They went home and slept well."])]
    return " ".join(s)


def qa():
    n1, n2 = rng.randint(1, 20), rng.randint(1, 20)
    animal, thing, color = c(animals), c(things), c(colors)
    name = c(names)
    items = [
        (f"What is {n1} plus {n2}?", f"{n1} plus {n2} is {n1 + n2}."),
        (f"What is {max(n1, n2)} minus {min(n1, n2)}?",
         f"{max(n1, n2)} minus {min(n1, n2)} is {max(n1, n2) - min(n1, n2)}."),
        (f"Write a short sentence about a {animal}.", f"The {c(adjs)} {animal} {c(verbs)} in the {c(places)}."),
        (f"What color is the sky on a sunny day?", "The sky is blue on a sunny day."),
        (f"Name three animals.", ", ".join(rng.sample(animals, 3)).capitalize() + "."),
        (f"Give a polite answer: can you help me find my {thing}?",
         f"Of course! Let us look for your {thing} together. Where did you see it last?"),
        (f"Say hello to {name}.", f"Hello, {name}! It is nice to meet you."),
        (f"Is a {animal} bigger than a {thing}?",
         c([f"Yes, a {animal} is usually bigger than a {thing}.", f"It depends on the {animal}."])),
        (f"Tell me a fact about the color {color}.", f"Many things are {color}, like a {color} {thing}."),
        (f"Count from {n1} to {n1 + 4}.", ", ".join(str(i) for i in range(n1, n1 + 5)) + "."),
        (f"What do you eat for breakfast?", f"I like to eat {c(foods)} and {c(foods)} for breakfast."),
        (f"Describe the weather today.", f"Today it is {c(weather)}, so take a {c(['coat', 'hat', 'umbrella'])}."),
        (f"Repeat the word {thing}.", f"{thing.capitalize()}."),
        (f"Write the word {c(adjs)} in capital letters.", None),
    ]
    q, a = c(items)
    if a is None:
        w = q.split(" ")[3]
        a = w.upper() + "."
    return f"Question: {q}\nAnswer: {a}"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "samples/corpus.txt"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 400_000
    parts, total = [], 0
    while total < size:
        p = story() if rng.random() < 0.5 else qa()
        parts.append(p)
        total += len(p) + 2
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
