"""`python -m autoresearch` = the CLI."""

from autoresearch.cli.app import main

main()
