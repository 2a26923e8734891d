"""Subcommands of the `tinygrad-bn` command line, one module each."""
