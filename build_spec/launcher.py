"""Entry point of the frozen app: PyInstaller runs this file as `__main__`.

Kept apart from `app/__main__.py` so the spec names one script whose only job is to hand
over to the same `app.cli.main()` that `python -m app` runs.
"""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    # Without this, a frozen child process (torch DataLoader workers, pyqtgraph's
    # multiprocess) would start a second copy of the app instead of the worker.
    multiprocessing.freeze_support()
    sys.exit(main())
