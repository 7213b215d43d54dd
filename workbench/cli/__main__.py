"""`python -m workbench.cli`."""

from . import main

raise SystemExit(main())
