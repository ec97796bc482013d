"""Task families of the persona world and their registry.

A family makes prompts (split into train/held-out eval combinations), writes an answer for a
persona, and judges any answer. Families register themselves in `FAMILIES`; importing this
package imports them all.
"""

from personadrift.organism.families import advice, code, facts, neutral, values  # noqa: F401  (registration)
from personadrift.organism.families.base import (
    FAMILIES,
    Family,
    Prompt,
    in_split,
)

__all__ = ["FAMILIES", "Family", "Prompt", "in_split"]
