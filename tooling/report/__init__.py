"""The run report: a timeline picture, the summary, and comparisons of runs."""
