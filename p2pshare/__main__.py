"""``python -m p2pshare`` and the installed ``p2pshare`` command: one entry, ``entry``.

Start-up (the imports, the parser) makes objects that live as long as the process:
collecting them ~30 times found next to nothing and cost each process ~3 ms of CPU. So the
collector is off until the command runs (``cli.main.main`` freezes what start-up made and
turns it on again).
"""

import gc
import sys


def entry() -> int:
    """Run the command line with the collector off during start-up."""
    gc.disable()
    from .cli.main import main  # imported here, so that its imports are covered

    return main(collector_paused=True)


if __name__ == "__main__":
    sys.exit(entry())
