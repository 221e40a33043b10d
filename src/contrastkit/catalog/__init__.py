"""The seed papers as a registry: every paper the library was created from, what implements it, and its check.

``contrastkit list --papers`` prints it; ``docs/methods.md`` is generated from it by
``scripts/generate_methods_doc.py`` (a test fails when the committed file is stale).
"""

from contrastkit.catalog.papers import PAPERS, Paper, paper, paper_names
from contrastkit.catalog.render import check_summary, methods_markdown, papers_table

__all__ = ["PAPERS", "Paper", "check_summary", "methods_markdown", "paper", "paper_names", "papers_table"]
