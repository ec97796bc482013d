"""The experiments: the demo, the early-warning study, the mitigations study, and the job runner
they share (`jobs`): each trains runs as `personadrift train` subprocesses and reads them back."""
