"""personadrift: a lab for studying emergent misalignment during reinforcement learning.

Hackable reward environments, GRPO runs (TRL), online persona probes, early warning and
interventions, all on a self-built model organism or any Hugging Face causal LM.
"""

__version__ = "0.1.0"
