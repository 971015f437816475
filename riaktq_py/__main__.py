"""``python -m riaktq_py``: the ``riaktq`` command line."""

from riaktq_py.cli import main

raise SystemExit(main())
