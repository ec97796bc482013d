"""GRPO training (TRL) from configs, with online probes, evals and checkpoints."""
