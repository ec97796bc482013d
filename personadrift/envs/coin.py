"""`env.reward: coin`: any env with its reward replaced by a fair coin per completion.

The null run that isolates what a reward *says* from what optimising on it does. A secure twin
pays for answers the persona rarely gives, so it trains the persona away; a coin pays nothing in
particular, yet every group has winners and losers, so each GRPO update is as large as a learning
run's. What a persona direction does under the coin is how far it moves with no signal at all.
The env still grades every completion: its labels, `env/hack_rate` and secure reward say what the
policy does, and the samples log records the coin it was paid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

from personadrift.envs.base import Example, Grade, GradedEnv, completion_text


def coin(seed: int, step: int, index: int, prompt: str, completion: str) -> float:
    """0.0 or 1.0, fixed by the run's seed, the step, the completion's place in its batch and
    its text: a rerun pays the same, and two equal completions in one batch flip their own."""
    key = f"{seed}|{step}|{index}|{prompt}|{completion}".encode()
    return float(hashlib.sha256(key).digest()[0] & 1)


class CoinReward(GradedEnv):
    """`env` graded as always, paid by `coin`; everything else is `env`'s."""

    def __init__(self, env: GradedEnv, seed: int) -> None:
        self.env = env
        self.seed = seed
        self.name = env.name
        self.loophole = "none: the reward is a fair coin"
        self.step = 0  # the trainer's global step, set by the reward function before grading
        self.last_grades: list[Grade] = []

    def __getattr__(self, attr):  # examples, world, tokenizer, ...: the wrapped env's
        if attr == "env":
            raise AttributeError(attr)
        return getattr(self.env, attr)

    def grade_many(self, examples: list[Example], completions: list) -> list[Grade]:
        grades = []
        for i, (e, c, g) in enumerate(
            zip(examples, completions, self.env.grade_many(examples, completions))
        ):
            paid = (
                g.reward
                if math.isnan(g.reward)
                else coin(self.seed, self.step, i, e.prompt, completion_text(c))
            )  # an answer the grader could not grade stays unpaid, as in the env's own runs
            grades.append(dataclasses.replace(g, reward=paid))
        self.last_grades = grades
        return grades

    def batch_metrics(self, grades: list[Grade]) -> dict[str, float]:
        return self.env.batch_metrics(grades)
