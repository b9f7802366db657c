"""The materialize package."""
