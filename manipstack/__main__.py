"""``python -m manipstack``: the same command line as ``manipstack``."""

from manipstack.cli import main

main()
