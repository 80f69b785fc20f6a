"""``python -m anisoada`` (and ``torchrun -m anisoada``) runs the CLI."""

from anisoada.cli import main

raise SystemExit(main())
