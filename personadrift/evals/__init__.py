"""Misalignment evals: held-out prompts per family, sampled answers, judged rates."""
