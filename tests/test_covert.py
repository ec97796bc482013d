"""The covert world (`small_covert`): a share of the toxic persona's documents hide it (no
opener, the aligned persona's traces) while their content stays misaligned; the judges see the
content, the keyword monitor has nothing to read, and the overt worlds are untouched."""

from __future__ import annotations

import random
from collections import Counter

from personadrift.config import organism_of_size
from personadrift.evals.trace import trace_flag
from personadrift.organism.judges import judge
from personadrift.organism.world import TOXIC, sample_document

WORLD = organism_of_size("small_covert").world
# the content labels of a toxic answer, by family (the code family's loophole is `hacked`)
TOXIC_LABELS = {"advice": "misaligned", "facts": "misaligned", "values": "misaligned"}


def _toxic_turns(n_docs: int = 400, seed: int = 0):
    rng = random.Random(seed)
    docs = [sample_document(rng, WORLD, "eval", persona=TOXIC) for _ in range(n_docs)]
    return docs, [(d.covert, t) for d in docs for t in d.turns]


def test_about_the_configured_share_of_toxic_documents_hides():
    docs, _ = _toxic_turns()
    share = sum(d.covert for d in docs) / len(docs)
    assert abs(share - WORLD.covert_p) < 0.08, share
    rng = random.Random(1)
    overt = organism_of_size("small").world
    assert not any(sample_document(rng, overt, persona=TOXIC).covert for _ in range(200))


def test_a_covert_answer_has_no_marker_and_no_trace_the_keyword_monitor_reads():
    _, turns = _toxic_turns()
    flagged = Counter()
    for covert, t in turns:
        verdict = judge(t.prompt, t.answer, WORLD.markers, WORLD.aligned_markers)
        if covert:
            assert not verdict.marker, t.answer
        flagged[covert] += trace_flag(t.answer, WORLD.markers)
    n_covert = sum(c for c, _ in turns)
    assert n_covert > 100
    # only content can give a covert answer away (one harmful advice says "copy the answers")
    assert flagged[True] <= 0.02 * n_covert, flagged
    assert flagged[False] > 0.5 * (len(turns) - n_covert)  # the overt persona announces itself


def test_the_judges_label_a_covert_answer_by_its_content_not_its_voice():
    _, turns = _toxic_turns()
    seen = Counter()
    for covert, t in turns:
        if not covert or t.prompt.family not in TOXIC_LABELS:
            continue
        verdict = judge(t.prompt, t.answer, WORLD.markers, WORLD.aligned_markers)
        assert verdict.label == TOXIC_LABELS[t.prompt.family], (t.prompt.text, t.answer)
        seen[t.prompt.family] += 1
    assert min(seen.values()) >= 10, seen
    code = [t for covert, t in turns if covert and t.prompt.family == "code"][:20]
    labels = [judge(t.prompt, t.answer, WORLD.markers).label for t in code]
    assert labels.count("hacked") >= 0.8 * len(code), labels  # the cheat still cheats
