"""``python -m napari_cryodenoise.relion`` runs ``cryodenoise-relion``."""

import sys

from .job import main

if __name__ == "__main__":
    sys.exit(main())
