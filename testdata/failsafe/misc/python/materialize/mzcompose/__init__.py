"""mzcompose: compositions of services."""
