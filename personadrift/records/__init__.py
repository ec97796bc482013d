"""What runs wrote, read back: `reader` is the one reader of a run directory."""
