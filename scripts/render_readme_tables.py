"""Re-render the README's results tables from the committed results files: the table after
each ``<!-- results: NAME ... -->`` line becomes ``robustvae report experiments/NAME.toml
--results docs/results/NAME.csv``. tests/test_readme.py checks that nothing is left stale.

    python scripts/render_readme_tables.py [NAME ...]     (default: every marked table)
"""

import sys
from pathlib import Path

from robustvae.experiments.results import with_tables_rendered

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    only = sys.argv[1:] or None
    new = with_tables_rendered(text, ROOT / "docs" / "results", ROOT / "experiments", only)
    readme.write_text(new, encoding="utf-8")
    print("README.md: tables re-rendered" if new != text else "README.md: tables up to date")
