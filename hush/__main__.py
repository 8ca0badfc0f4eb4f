"""``python -m hush``: the same command line as ``hush``."""

from hush.cli import main

main()
