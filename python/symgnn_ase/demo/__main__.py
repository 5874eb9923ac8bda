"""``python -m symgnn_ase.demo -o FOLDER``: the same as ``symgnn demo -o FOLDER``."""

import sys

from . import main

sys.exit(main())
