"""The README's configuration table is the settings table.

Regenerate it with ``python -m web.platform.settings``.
"""

from __future__ import annotations

from tests.support.processes import REPO_ROOT
from web.platform.settings import markdown_table

README = REPO_ROOT / "README.md"


def test_readme_configuration_table_matches_the_settings() -> None:
    assert markdown_table() in README.read_text(), (
        "README.md's configuration table is stale: "
        "paste the output of `python -m web.platform.settings`"
    )
