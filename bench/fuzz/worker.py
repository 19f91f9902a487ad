"""One fuzz target under atheris (libFuzzer): what ``run.py`` starts once per target.

    python bench/fuzz/worker.py TARGET FINDINGS_DIR [libFuzzer flags] CORPUS_DIR...

The p2pshare modules are instrumented for coverage as they are imported. Findings are
saved by ``targets.Checker`` and the run goes on; a hang or an out-of-memory ends the
process with libFuzzer's own ``timeout-*``/``oom-*`` file (``-artifact_prefix``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

with atheris.instrument_imports(include=["p2pshare"]):
    import targets

    import p2pshare.protocol.bencode  # noqa: F401 (imported here to be instrumented)
    import p2pshare.protocol.ci  # noqa: F401
    import p2pshare.protocol.di  # noqa: F401
    import p2pshare.protocol.magnet  # noqa: F401
    import p2pshare.protocol.metainfo  # noqa: F401
    import p2pshare.protocol.swarm  # noqa: F401
    import p2pshare.swarm.manifest  # noqa: F401


def main() -> None:
    name, folder, *flags = sys.argv[1:]
    check = targets.Checker(targets.TARGETS[name], Path(folder))
    atheris.Setup([sys.argv[0], *flags], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
