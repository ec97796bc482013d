"""What every environment shares: `Example`, `Grade`, the `Env` protocol, the registry, `make`.

An environment = prompts + a hackable reward (what the policy is trained on) + a secure shadow
grader (never in the reward; labels each sample). `make("<name>_secure")` is the secure twin: same
prompts, reward = secure reward, used as the control run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from personadrift.registry import Registry
from personadrift.rewards.grader import Tests


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


ENVS: Registry[Any] = Registry("env")


def make(name: str, **kwargs) -> Env:
    """An environment by registry name; unknown names raise ConfigError listing the known ones."""
    from personadrift.config import ConfigError

    try:
        factory = ENVS.resolve(name)
    except KeyError as e:
        raise ConfigError(str(e.args[0])) from None
    return factory(**kwargs)
