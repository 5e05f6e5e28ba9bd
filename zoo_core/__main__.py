"""``python -m zoo_core ...`` runs the ``zoo`` command line (also under ``torchrun -m zoo_core``)."""

import sys

from zoo_core.cli import main

sys.exit(main())
