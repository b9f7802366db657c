"""The first-party package."""
