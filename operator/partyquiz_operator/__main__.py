"""``python -m partyquiz_operator``: the same as the ``partyquiz-operator`` command."""

from partyquiz_operator.cli import main

raise SystemExit(main())
