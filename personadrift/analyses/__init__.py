"""Analyses of finished runs: SAE model diffing (`diff`), how far runs moved along directions
(`shift`, `personadrift directions shift`), the steering layer and coefficient (`steer_sweep`) and
the dense post-hoc evals of every checkpoint of a study run (`dense`)."""
