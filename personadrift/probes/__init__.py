"""Persona directions: extraction, readability sweeps, online reading and steering."""
