"""``python -m dp3_field``: the same as the ``dp3-field`` command."""

from dp3_field.cli import main

raise SystemExit(main())
