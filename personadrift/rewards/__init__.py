"""Reward functions and the machinery they run on (sandboxed execution of answers)."""
