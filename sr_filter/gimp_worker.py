"""Old worker entry point, ``python -m sr_filter.gimp_worker``, kept for plug-ins installed by an
earlier sr-filter: they still start this module. It runs :mod:`sr_filter.gimp.worker`, which
answers their older protocol version with one line telling the user to run the installer again.
"""

import sys

from sr_filter.gimp.worker import main

if __name__ == "__main__":
    sys.exit(main())
