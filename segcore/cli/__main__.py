"""``python -m segcore.cli`` (and ``torchrun -m segcore.cli``)."""

import sys

from .parser import main

sys.exit(main())
