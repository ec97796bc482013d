"""Alarms: the detectors (`detect`), their thresholds fitted on null runs (`calibrate`) and the
text and behaviour monitors they can read (`monitors`)."""
