"""``python -m contrastkit`` runs the command line."""

from contrastkit.cli import main

main()
