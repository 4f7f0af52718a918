"""``python -m inception_fer`` (and ``torchrun -m inception_fer``) runs the CLI."""

from .cli.main import main

raise SystemExit(main())
