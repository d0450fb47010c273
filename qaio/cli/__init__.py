"""The `qaio` command line."""
