"""``python -m robustvae``: the same as the ``robustvae`` command."""

from robustvae.cli import main

raise SystemExit(main())
