"""Task families of the persona world and their registry.

A family makes prompts (split into train/held-out eval combinations), writes an answer for a
persona, and judges any answer. Families register themselves in `FAMILIES`; importing this
package imports them all.
"""

from personadrift.organism.families import (  # noqa: F401  (registration)
    advice,
    claims,
    code,
    facts,
    neutral,
    values,
)
from personadrift.organism.families.base import (
    FAMILIES,
    Family,
    Prompt,
    in_split,
)

__all__ = ["FAMILIES", "Family", "Prompt", "in_split"]
