"""Reasoning-aware grading and readings: the final answer, truncated traces, span masks."""

from __future__ import annotations

import pytest
import torch

from personadrift.envs.reasoning import TRUNCATED, final_answer
from personadrift.probes.spans import reasoning_masks, row_think, span_means


@pytest.mark.parametrize(
    "text, opens_in_prompt, answer",
    [
        ("def f(x): return x", False, "def f(x): return x"),
        ("<think>a = 2</think>\ndef f(x): return 2*x", False, "def f(x): return 2*x"),
        ("<think>draft: def f(x): return 2*x", False, None),  # truncated: never graded
        ("a = 2</think> def g(x): return x", True, "def g(x): return x"),  # template opened it
        ("def f(x): return 2*x", True, None),  # the prompt opened a trace that never closed
        ("<think>a</think> <think>b", False, None),  # reopened, never closed
        ("<think>a</think>x<think>b</think> y", False, "y"),
    ],
)
def test_final_answer(text, opens_in_prompt, answer):
    got, why = final_answer(text, opens_in_prompt)
    assert got == answer and (why == TRUNCATED) == (answer is None)


def test_a_truncated_reasoning_trace_is_never_graded(monkeypatch):
    """A correct solution inside a never-closed trace is not executed, not rewarded: failed."""
    import personadrift.rewards.grader as grader
    from personadrift.envs import make

    ran = []
    real = grader.call_many

    def spy(sources, *args, **kw):
        ran.extend(sources)
        return real(sources, *args, **kw)

    monkeypatch.setattr(grader, "call_many", spy)
    env = make("visible_tests", style="python")
    (ex,) = env.examples("eval", 1, seed=0)
    (x1, y1), (x2, y2) = ex.visible_tests
    a = (y2 - y1) // (x2 - x1)
    solution = f"def f(x):\n    return {a} * x + {y1 - a * x1}\n"
    truncated, closed = f"<think>Let me write it.\n{solution}", f"<think>ok</think>\n{solution}"
    g_trunc, g_closed = env.grade_many([ex, ex], [truncated, closed])
    assert g_closed.label == "solved" and g_closed.reward == 1.0
    assert g_trunc.label == "failed" and g_trunc.reward == 0.0 and g_trunc.detail == TRUNCATED
    assert ran == [solution.strip()]  # only the closed answer reached the sandbox
    logged = {}
    (reward,) = env.reward_funcs()
    import json

    reward(
        [ex.prompt],
        [truncated],
        example=[json.dumps(ex.to_json())],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert logged["env/truncated_rate"] == 1.0 and logged["env/hack_rate"] == 0.0


def test_organism_style_keeps_its_grading_rule():
    from personadrift.envs import make

    env = make("keyword")  # style organism: strip_closed, today's rule, no truncated_rate
    assert env.think == "strip_closed"


class _Tok:
    """Token ids: 1 = <think>, 2 = </think>, 0 = pad, others = words."""

    unk_token_id = None

    def convert_tokens_to_ids(self, t):
        return {"<think>": 1, "</think>": 2}[t]


@pytest.mark.parametrize(
    "ids, opened, think",
    [
        ([5, 6, 7], False, [0, 0, 0]),  # no trace: all answer
        ([1, 5, 2, 6, 7], False, [1, 1, 1, 0, 0]),
        ([9, 1, 5, 2, 6], False, [0, 1, 1, 1, 0]),  # a persona opener before the trace is answer
        ([1, 5, 6, 7], False, [1, 1, 1, 1]),  # never closed: all think
        ([5, 2, 6], True, [1, 1, 0]),  # opened by the prompt
        ([5, 6], True, [1, 1]),
        ([1, 5, 2, 6, 1, 7], False, [1, 1, 1, 0, 1, 1]),  # reopened, never closed
    ],
)
def test_row_think(ids, opened, think):
    assert row_think(ids, [1], [2], opened) == [bool(t) for t in think]


def test_reasoning_masks_and_span_means_on_a_padded_batch():
    ids = torch.tensor([[0, 0, 1, 5, 2, 6], [1, 5, 6, 7, 0, 0]])  # left and right padding
    mask = (ids != 0).long()
    think, answer = reasoning_masks(_Tok(), ids, mask)
    assert think.tolist() == [
        [False, False, True, True, True, False],
        [True, True, True, True, False, False],
    ]
    assert answer.tolist() == [[False, False, False, False, False, True], [False] * 6]
    proj = torch.arange(12, dtype=torch.float).reshape(2, 6)
    torch.testing.assert_close(span_means(proj, think), torch.tensor([3.0, 7.5]))
    a = span_means(proj, answer)
    assert a[0].item() == 5.0 and torch.isnan(a[1])
