"""Named registries: the lab's extension points (families, envs, rewards, detectors, ...).

A new component is one decorated function or class:

    FAMILIES = Registry("family")

    @FAMILIES.register("advice")
    def advice(...): ...

Looking up an unknown name raises a KeyError that lists the known names. A user's own component
is named by import path instead (`mypkg.envs:MyEnv`): `resolve` imports it, `check` says why a
name would not resolve (what config validation reports), both without the package knowing it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> component mapping with a `register` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(item: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._items[name]

    def resolve(self, name: str) -> T:
        """A registered name, or an import path `module:attr` (`module.sub:Class.attr`)."""
        if ":" not in name:
            return self.get(name)
        module_name, _, attr = name.partition(":")
        try:
            obj = importlib.import_module(module_name)
        except ImportError as e:
            raise KeyError(f"{self.kind} {name!r}: cannot import {module_name!r} ({e})") from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise KeyError(f"{self.kind} {name!r}: {module_name!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise KeyError(f"{self.kind} {name!r}: {attr!r} is not callable")
        return obj

    def check(self, name: str) -> str | None:
        """Why `name` does not resolve (one line), or None when it does."""
        try:
            self.resolve(name)
        except KeyError as e:
            return str(e.args[0])
        return None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
