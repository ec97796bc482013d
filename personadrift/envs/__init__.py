"""Hackable reward environments and their secure twins.

`make(name, **kwargs)` builds one; `ENVS.names()` lists them. Each hackable env's module
docstring states its loophole. Importing this package registers them all.
"""

from personadrift.envs import (  # noqa: F401  (registration)
    always_equal,
    answer_leak,
    exit_code,
    keyword,
    own_grader,
    sycophancy,
    visible_tests,
)
from personadrift.envs.base import ENVS, Env, Example, Grade, make
from personadrift.rewards.grader import ERROR, FAILED, HACKED, SOLVED

__all__ = ["ENVS", "ERROR", "FAILED", "HACKED", "SOLVED", "Env", "Example", "Grade", "make"]
