import gc
import sys

# Start-up (the imports, the parser) makes objects that live as long as the process:
# collecting them ~30 times found next to nothing and cost each process ~3 ms of CPU. The
# collector is off until the command runs (``cli.main.main`` turns it on again).
gc.disable()

from .cli.main import main  # noqa: E402 (after gc.disable, so that its imports are covered)

sys.exit(main())
