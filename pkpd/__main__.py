"""``python -m pkpd``: see :mod:`pkpd.cli`."""

from .cli import main

raise SystemExit(main())
