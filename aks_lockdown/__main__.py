"""``python -m aks_lockdown``: the same as the ``aks-lockdown`` console script."""

import sys

from aks_lockdown.cli import main

if __name__ == "__main__":
    sys.exit(main())
