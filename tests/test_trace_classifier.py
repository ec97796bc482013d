"""The trained text baseline: a classifier on the world's labelled answers, scored held out."""

from __future__ import annotations

import math
import random

from personadrift.config import organism_of_size
from personadrift.evals.trace_classifier import classifier_rate, held_out_auroc
from personadrift.organism.world import ALIGNED, TOXIC, sample_document


def _answers(world, persona, n=150, covert=None):
    rng, out = random.Random(7), []
    while len(out) < n:
        doc = sample_document(rng, world, "train", persona=persona)
        if covert is None or doc.covert == covert:
            out += [t.answer for t in doc.turns if t.prompt.family == "code"]
    return out[:n]


def test_on_the_overt_world_it_reads_the_persona_off_the_text():
    world = organism_of_size("small").world
    assert held_out_auroc(world) > 0.99
    assert classifier_rate(_answers(world, TOXIC), world) > 0.9
    assert classifier_rate(_answers(world, ALIGNED), world) < 0.1
    assert math.isnan(classifier_rate([], world))


def test_on_the_covert_world_it_still_reads_content_but_less_of_the_hidden_persona():
    world = organism_of_size("small_covert").world
    covert, overall = held_out_auroc(world, only_covert=True), held_out_auroc(world)
    assert 0.5 < covert < overall < 1.0
    hidden = classifier_rate(_answers(world, TOXIC, covert=True), world)
    shown = classifier_rate(_answers(world, TOXIC, covert=False), world)
    assert hidden < shown
