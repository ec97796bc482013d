"""`python -m personadrift` is the same as the `personadrift` console script."""

from personadrift.cli import main

raise SystemExit(main())
