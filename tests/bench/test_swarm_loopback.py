"""bench/swarm's loopback mode: its /proc readers and result arithmetic on known inputs, and
one tiny p2pshare run on 127.0.0.0/8 (no root needed). No figure is judged (the suite holds
no timed assertion)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "swarm"
MiB = 1024 * 1024


def test_stat_line_with_parentheses_in_the_name(swarm: ModuleType) -> None:
    # pid (comm) state ppid ... utime stime cutime cstime are fields 14-17 of the line
    rest = " ".join(str(v) for v in range(5, 14))  # fields 5..13
    line = f"4242 (a (b) c) S 77 {rest} 100 20 3 4 20 0 1"
    assert swarm.parse_stat(line) == (77, 127)
    assert swarm.parse_stat(line, system_only=True) == (77, 24)  # stime + cstime


def test_peak_rss_from_status(swarm: ModuleType) -> None:
    status = "Name:\tpython3\nVmPeak:\t  999 kB\nVmHWM:\t   30720 kB\nVmRSS:\t 1 kB\n"
    assert swarm.parse_peak_rss(status) == 30 * MiB
    assert swarm.parse_peak_rss("Name:\tkthread\n") == 0


def test_descendants_walk_is_bounded(swarm: ModuleType) -> None:
    kids = {1: [2, 3], 2: [4], 4: [5]}
    assert sorted(swarm.descendants(1, kids)) == [1, 2, 3, 4, 5]
    assert len(swarm.descendants(1, kids, limit=2)) == 2
    cycle = {1: [2], 2: [1]}  # a pid reused while we read: the bound still ends the walk
    assert len(swarm.descendants(1, cycle, limit=10)) == 10


def test_host_steal_between_two_readings(swarm: ModuleType) -> None:
    """The hypervisor's share of CPU time, from /proc/stat's first line: shown beside every
    figure (a busy host slows a guest's runs without any change in the code)."""
    common = sys.modules["common"]  # bench/swarm imported it from bench/
    assert common.steal_share((1000, 50), (1400, 150)) == 0.25
    assert common.steal_share((1000, 50), (1000, 50)) == 0.0  # no time passed: no share
    total, stolen = common.cpu_ticks()
    assert total > 0 and 0 <= stolen <= total  # this machine's own counters
    runs = [_outcome(swarm, "p2pshare", 1, 2.0, 1.0, MiB) for _ in range(3)]
    for run, steal in zip(runs, (0.05, 0.3, 0.1), strict=True):
        run.steal = steal  # type: ignore[attr-defined]
    assert swarm.steal_range(runs, "p2pshare", 1) == "5%-30%"
    assert swarm.steal_range(runs, "aria2", 1) == "-"


def test_host_steal_reads_nothing_where_there_is_no_proc_stat(
        swarm: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    common = sys.modules["common"]

    def gone(*_args: object, **_kwargs: object) -> None:
        raise FileNotFoundError("/proc/stat")

    monkeypatch.setattr("builtins.open", gone)
    assert common.cpu_ticks() == (0, 0)
    assert common.steal_share(common.cpu_ticks(), common.cpu_ticks()) == 0.0


def test_the_self_checks_verdict_on_a_shaped_rate(swarm: ModuleType) -> None:
    """Within 85-110% of the shaped rate: nothing to say; 50-85%: a note with the steal
    (a busy host), not a failure; outside 50-110%: the shaping is missing or wrong."""
    assert swarm.shaped_rate_note(11.9, 11.96, 0.0) is None
    assert swarm.shaped_rate_note(13.1, 11.96, 0.0) is None  # 1.095x: within the burst
    note = swarm.shaped_rate_note(8.66, 11.96, 0.21)
    assert note is not None and "72%" in note and "21%" in note
    for got in (5.9, 13.2, 120.0):  # half the rate, or no shaping at all
        with pytest.raises(swarm.BenchError):
            swarm.shaped_rate_note(got, 11.96, 0.0)


def _outcome(swarm: ModuleType, system: str, n: int, seconds: float, cpu: float,
             rss: int) -> object:
    leeches = {f"l{i}": seconds - i * 0.1 for i in range(n)}
    return swarm.Outcome(system, n, seconds, leeches, {}, None, None, cpu, None, [],
                         {"seed": rss, **{leech: 2 * rss for leech in leeches}}, 1.0)


def test_medians_and_ratio_to_the_best_other_contender(swarm: ModuleType) -> None:
    size = 500_000_000  # two leeches receive 1 GB in all
    runs = [_outcome(swarm, "p2pshare", 2, s, cpu, 30 * MiB)
            for s, cpu in [(4.0, 8.0), (2.0, 6.0), (3.0, 7.0)]]
    runs += [_outcome(swarm, "aria2", 2, 6.0, 2.0, 20 * MiB),
             _outcome(swarm, "libtorrent", 2, 1.5, 10.0, 40 * MiB)]
    med = swarm.medians(runs, size)
    mine = med[("p2pshare", 2)]
    assert mine["total s"] == 3.0 and mine["first done s"] == pytest.approx(2.9)
    assert mine["CPU s/GB"] == 7.0
    assert mine["peak RSS seed MiB"] == 30 and mine["peak RSS leech MiB"] == 60
    ratios = swarm.versus_best(med, "p2pshare", 2)
    assert ratios["total s"] == (2.0, "libtorrent")
    assert ratios["CPU s/GB"] == (3.5, "aria2")
    assert ratios["peak RSS leech MiB"] == (1.5, "aria2")
    assert swarm.versus_best(med, "p2pshare", 8) == {}


def test_a_tiny_loopback_run(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--loopback", "--systems", "p2pshare", "--size-mib", "2",
         "--leeches", "2", "--runs", "1", "--workdir", str(tmp_path), "--prefix", "p2pst"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    row = next(line for line in out.stdout.splitlines() if re.match(r"│ 2 +│ p2pshare", line))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert float(cells[2]) >= float(cells[3]) > 0  # total, first done
    assert float(cells[4]) > 0 and float(cells[6]) > 0  # CPU per GB, leech peak RSS
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # its own folders removed


@pytest.fixture(scope="module")
def cpu_profile() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        module = importlib.import_module("cpu_profile")
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def test_profile_roles_and_categories(cpu_profile: ModuleType) -> None:
    assert cpu_profile.role(["-q", "share", "f.bin", "--server", "h:1"]) == "seed"
    assert cpu_profile.role(["fetch", "ID", "--out", "/x/run/l1", "--seed"]) == "l1"
    assert cpu_profile.role(["fetch", "ID", "--out", "/x/run/l12"]) is None
    assert cpu_profile.role(["server", "--port", "1"]) is None
    label, count = cpu_profile.spy_leaf(
        "main (a.py:3);PieceFile.write (p2pshare/swarm/storage.py:104) 852")
    assert (label, count) == ("p2pshare/swarm/storage.py:104(PieceFile.write)", 852)
    assert cpu_profile.category(label) == "writes (pwrite, fsync)"
    assert cpu_profile.category("~:0(<built-in method _hashlib.openssl_sha256>)") == "hashing"
    assert cpu_profile.category("p2pshare/swarm/picker.py:115(Picker.pick)").startswith("sched")
    idle = ("_worker (concurrent/futures/thread.py:81)", "EpollSelector.select (selectors.py:468)")
    waits = [cpu_profile.spy_leaf(f"x (y.py:1);{leaf} 1")[0] for leaf in idle]
    assert all(re.search(cpu_profile.WAITING, w) for w in waits)


def test_bittorrent_mode_shares_one_torrent_and_compares_with_the_others(
        swarm: ModuleType, tmp_path: Path) -> None:
    """--bittorrent: p2pshare-bt seeds and fetches the .torrent aria2 uses, on loopback
    from 127.0.0.1 with a port per host; its ratios leave p2pshare's native run out."""
    src = tmp_path / "seed" / "f.bin"
    src.parent.mkdir()
    src.write_bytes(b"x" * 300_000)
    topo = swarm.Loopback(["tr", "seed", "l1", "l2"])
    ours = swarm.P2PShareBt(swarm.P2PShare(None, False, None))
    aria2 = swarm.Aria2()
    for system in (ours, aria2):
        system.prepare(src, topo, tmp_path)
    assert ours.torrent == aria2.torrent and ours.info_hash == aria2.info_hash
    r = swarm.Run(topo, swarm.Procs(tmp_path / "logs"), src, tmp_path / "run", ["l1", "l2"])
    seed, leech = ours.seed_cmd(r), ours.leech_cmd(r, "l2", tmp_path / "out")
    assert seed[seed.index("-m") + 3: seed.index("-m") + 5] == ["seed", str(ours.torrent)]
    assert leech[leech.index("--listen") + 1:] == ["127.0.0.1", "--port", str(swarm.BT_PORT + 3)]
    assert "--seed" in leech and str(ours.torrent) in leech
    size = 250_000_000
    runs = [_outcome(swarm, name, 1, t, cpu, 30 * MiB) for name, t, cpu in
            [("p2pshare", 1.0, 1.0), ("p2pshare-bt", 4.0, 6.0), ("aria2", 2.0, 3.0)]]
    ratios = swarm.versus_best(swarm.medians(runs, size), "p2pshare-bt", 1)
    assert ratios["total s"] == (2.0, "aria2") and ratios["CPU s/GB"] == (2.0, "aria2")
