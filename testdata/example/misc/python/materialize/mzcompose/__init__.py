"""mzcompose."""
