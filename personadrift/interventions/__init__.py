"""Interventions during training: steering hooks (`steer`), advantage shaping and screening
(`mitigate`) and the persona penalty on the reward (`penalty`); `realign` (SFT after the run) is a
run of its own, in `rl/realign.py`."""
