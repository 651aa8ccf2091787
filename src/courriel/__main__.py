"""Allow ``python -m courriel``."""

from courriel.cli.main import main

main()
