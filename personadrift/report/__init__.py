"""Reports: run curves in the terminal, plots and summaries."""
