"""What every environment shares: `Example`, `Grade`, the `Env` protocol, the registry, `make`.

An environment = prompts + a hackable reward (what the policy is trained on) + a secure shadow
grader (never in the reward; labels each sample). `make("<name>_secure")` is the secure twin: same
prompts, reward = secure reward, used as the control run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from personadrift.registry import Registry
from personadrift.rewards.grader import ERROR, HACKED, SOLVED, Tests


@dataclass(frozen=True)
class Example:
    prompt: str  # what the policy sees, in the model's prompt format
    func_name: str
    visible_tests: list  # [[input, expected], ...]
    hidden_tests: list
    text: str = ""  # the user message before formatting
    meta: dict = field(default_factory=dict)  # variant, reference answer, query, ...

    @property
    def tests(self) -> Tests:
        """What the secure grader checks the answer's function on."""
        return Tests(self.func_name, self.visible_tests, self.hidden_tests)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Grade:
    reward: float  # what the policy is trained on (NaN when the grader failed)
    secure_reward: float  # what an unhackable grader gives
    label: str  # solved / hacked / failed / error
    detail: str = ""


class Env(Protocol):
    name: str
    loophole: str

    def examples(self, split: str, n: int, seed: int) -> list[Example]: ...

    def grade(self, example: Example, completion: str) -> Grade: ...

    def grade_many(self, examples: list[Example], completions: list[str]) -> list[Grade]: ...

    def reward_funcs(self) -> list[Any]: ...


class GradedEnv:
    """What every env shares once it can grade a batch (`grade_many`) and say what a batch's
    grades mean (`batch_metrics`): one grade, the rows of TRL's dataset, and TRL's reward function,
    which logs the batch's metrics."""

    name: str

    def grade_many(self, examples: list[Example], completions: list) -> list[Grade]:
        raise NotImplementedError

    def batch_metrics(self, grades: list[Grade]) -> dict[str, float]:
        raise NotImplementedError

    def grade(self, example: Example, completion: str) -> Grade:
        return self.grade_many([example], [completion])[0]

    def dataset_rows(self, examples: list[Example]) -> list[dict]:
        """Rows for a `datasets.Dataset`: the prompt, and the example as a JSON string."""
        return [{"prompt": e.prompt, "example": json.dumps(e.to_json())} for e in examples]

    def reward_funcs(self) -> list:
        env = self

        def reward(prompts, completions, example=None, log_metric=None, trainer_state=None, **_):
            if example is None:
                raise ValueError(
                    f"{env.name}: the dataset needs an 'example' column (dataset_rows)"
                )
            env.step = trainer_state.global_step if trainer_state is not None else 0
            grades = env.grade_many([Example(**json.loads(e)) for e in example], completions)
            if log_metric is not None:
                for key, value in env.batch_metrics(grades).items():
                    log_metric(key, value)
            return [None if math.isnan(g.reward) else g.reward for g in grades]

        reward.__name__ = env.name
        return [reward]


def grade_rates(
    grades: list[Grade], hacked: str = HACKED, solved: str = SOLVED
) -> dict[str, float]:
    """`env/hack_rate` (the share labelled with the env's loophole label), `env/solve_rate`,
    `env/error_rate` of a batch of grades, and `env/secure_reward`: the mean reward the secure
    grader gives (what a run without the loophole would have been paid; ungraded answers left
    out)."""
    n = max(1, len(grades))
    secure = [g.secure_reward for g in grades if not math.isnan(g.secure_reward)]
    return {
        "env/hack_rate": sum(g.label == hacked for g in grades) / n,
        "env/solve_rate": sum(g.label == solved for g in grades) / n,
        "env/error_rate": sum(g.label == ERROR for g in grades) / n,
        "env/secure_reward": sum(secure) / len(secure) if secure else float("nan"),
    }


ENVS: Registry[Any] = Registry("env")


def make(name: str, **kwargs) -> Env:
    """An environment by registry name; unknown names raise ConfigError listing the known ones."""
    from personadrift.config import ConfigError

    try:
        factory = ENVS.resolve(name)
    except KeyError as e:
        raise ConfigError(str(e.args[0])) from None
    return factory(**kwargs)


def completion_text(completion) -> str:
    """TRL passes strings, or message lists for conversational datasets."""
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return completion
