"""The speed probe: interpolation and scaling worked out on paper, and a table built on a machine whose speed
drifts linearly (a fake runner and clock), whose entries come out on one scale."""

import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from nse_hw.profilers import table_builder
from nse_hw.profilers.speed import PROBE_KEY, ProbeSettings, SpeedProbe, probe_at, rereference, scaled
from nse_hw.profilers.timing import NULL_KEY

from nse_hw.errors import NseError
from nse_hw.latency import load_table, space_keys


def test_probe_at_interpolates_between_samples_and_holds_outside():
    samples = [(0.0, 1.0), (10.0, 2.0), (20.0, 2.0)]
    assert probe_at(samples, 5.0) == 1.5
    assert probe_at(samples, 15.0) == 2.0
    assert probe_at(samples, -3.0) == 1.0 and probe_at(samples, 99.0) == 2.0
    assert probe_at([(4.0, 3.0)], 0.0) == 3.0
    with pytest.raises(NseError, match="never timed"):
        probe_at([], 1.0)


def test_scaled_and_rereference():
    # timed while the probe took 2 ms against a 1 ms reference: the machine ran at half speed, so halve
    assert scaled({"ms": 2.0, "p10": 1.0, "p90": 3.0, "n": 5}, probe_ms=2.0, reference_ms=1.0) == {
        "ms": 1.0, "p10": 0.5, "p90": 1.5, "n": 5}
    with pytest.raises(NseError):
        scaled({"ms": 1.0}, probe_ms=0.0, reference_ms=1.0)
    entries = {"a": {"ms": 1.0, "probe_ms": 3.0, "source": "measured"}, "b": {"ms": 1.0, "source": "imported"}}
    assert rereference(entries, old_ms=1.0, new_ms=1.5) == 1
    assert entries == {"a": {"ms": 1.5, "probe_ms": 3.0, "source": "measured"},
                       "b": {"ms": 1.0, "source": "imported"}}


def test_probe_ticks_when_due_and_times_at_the_middle():
    now = [0.0]

    def probe_ms():
        now[0] += 1.0  # the probe itself takes 1 s
        return 2.0

    probe = SpeedProbe(probe_ms, every_s=10.0, clock=lambda: now[0])
    assert probe.tick() and probe.samples == [(0.5, 2.0)]
    now[0] = 5.0
    assert not probe.tick()
    now[0] = 11.0
    out, mid = probe.timed(lambda: now.__setitem__(0, now[0] + 4.0) or "ran")  # due: ticks, then runs 4 s
    assert probe.samples[-1] == (11.5, 2.0) and (out, mid) == ("ran", 14.0)
    assert probe.record() == {"probe_ms": [2.0, 2.0], "min_over_median": 1.0, "max_over_median": 1.0}
    assert ProbeSettings.of({}) is None
    assert ProbeSettings.of({"warmup": 3, "runs": 7, "cpu_cache": "warm",
                             "speed": {"key": PROBE_KEY, "reference_ms": 1.25}}) == ProbeSettings(1.25, 3, 7, "warm")


# --- a machine whose speed drifts: 1x at clock 0, +2% per second after ------------------------------------

def _base(key: str) -> float:
    """A model's time at full speed (ms): the probe 1, the null model 0, every unit 1-5 by its key."""
    return 1.0 if key == PROBE_KEY else 0.0 if key == NULL_KEY else 1.0 + zlib.crc32(key.encode()) % 5


class _Machine:
    def __init__(self) -> None:
        self.now = 0.0

    def speed(self, t: float) -> float:
        return 1.0 + 0.02 * t

    def clock(self) -> float:
        return self.now


class _Session:
    def __init__(self, machine: _Machine, base: float) -> None:
        self.machine, self.base = machine, base

    def time(self, *, warmup: int, runs: int, before_each=None) -> np.ndarray:
        mid = self.machine.now + 1.0
        self.machine.now += 2.0  # every timing takes 2 s, and runs at the speed of its middle
        return np.full(runs, self.base * self.machine.speed(mid))


class _Runner:
    name, version, threads, kernels = "onnxruntime", "test", 1, None

    def __init__(self, machine: _Machine) -> None:
        self.machine = machine

    def load(self, path: Path) -> _Session:
        return _Session(self.machine, _base(path.name))


@pytest.fixture
def drifting(monkeypatch):
    machine = _Machine()
    monkeypatch.setattr(table_builder, "get_runner", lambda *a, **kw: _Runner(machine))
    monkeypatch.setattr(table_builder, "exported",
                        lambda jobs, **kw: ((j, Path(j.name)) for j in jobs))
    monkeypatch.setattr(table_builder, "SpeedProbe", partial(SpeedProbe, clock=machine.clock))
    return machine


@pytest.mark.parametrize("probe", [True, False])
def test_a_table_built_while_the_machine_slows_is_on_one_scale_with_the_probe(drifting, tiny_space, tmp_path, probe):
    out = tmp_path / "t.json"
    table_builder.profile_host(tiny_space, runtime="onnxruntime", out=out, cpu_cache="warm", warmup=0, runs=3,
                               progress=False, speed_probe=probe)
    t = load_table(out)
    units = t.entries
    assert len(units) == len(space_keys(tiny_space))
    ratios = [e["ms"] / _base(k) for k, e in units.items()]
    assert drifting.now > 50  # the machine slowed by > 2x while the table was built
    if not probe:  # as timed: each entry carries the speed of its moment
        assert max(ratios) / min(ratios) > 2
        assert "speed" not in t.meta
        return
    # every unit on one scale: its full-speed time x the median probe time (the probe's full-speed time is 1 ms)
    speed = t.meta["speed"]
    assert speed["reference_ms"] == pytest.approx(float(np.median(speed["runs"][0]["probe_ms"])))
    assert ratios == pytest.approx([speed["reference_ms"]] * len(ratios), rel=1e-5)
    assert all(e["probe_ms"] > 0 for e in units.values())
    assert speed["runs"][0]["max_over_median"] > 1.3


def test_networks_measured_while_the_machine_slows_are_put_on_the_tables_scale(monkeypatch, tiny_space):
    """Two networks, 4 rounds each, on the drifting machine: as timed they slow by round; on the table's scale
    (reference 1.5 ms probe) each is its full-speed time x 1.5, and probe_ratio says how slow the machine was."""
    from nse_hw.profilers import netbench

    machine = _Machine()
    monkeypatch.setattr(netbench, "get_runner", lambda *a, **kw: _Runner(machine))
    monkeypatch.setattr(netbench, "exported", lambda jobs, **kw: ((j, Path(j.name)) for j in jobs))
    monkeypatch.setattr(netbench, "SpeedProbe", partial(SpeedProbe, clock=machine.clock))
    archs = netbench.sample_archs(tiny_space, samples=2, seed=0)
    names = {netbench.ExportJob.for_arch(a).name for a in archs}
    assert len(names) == 2
    bench = netbench.Bench("onnxruntime", 1, warmup=0, runs=8, rounds=4, convert_cpus=set(), progress=False,
                           probe=ProbeSettings(1.5, 0, 3, "warm"))
    out = netbench.measure_archs(archs, bench)
    for a, m in zip(archs, out, strict=True):
        base = _base(netbench.ExportJob.for_arch(a).name)
        assert m["ms"] == pytest.approx(1.5 * base) and m["per_probe"] == pytest.approx(base)
        # as timed: slowed by the drift; the probe (1 ms at full speed) ran well under the 1.5 ms reference
        assert m["as_timed_ms"] > 1.1 * base and 0.7 < m["probe_ratio"] < 1.0
    assert machine.now > 20
    plain = netbench.measure_archs(archs, netbench.Bench("onnxruntime", 1, warmup=0, runs=8, rounds=4,
                                                         convert_cpus=set(), progress=False))
    assert "per_probe" not in plain[0] and plain[0]["ms"] > 1.5 * _base(netbench.ExportJob.for_arch(archs[0]).name)


def test_a_kill_loses_only_the_entries_since_the_last_probe_and_the_resume_puts_all_on_one_scale(
        drifting, tiny_space, tmp_path, monkeypatch):
    out = tmp_path / "t.json"
    real, calls = _Session.time, []

    def dies_on_the_12th_timing(self, **kw):
        calls.append(1)
        if len(calls) == 12:
            raise KeyboardInterrupt
        return real(self, **kw)

    monkeypatch.setattr(_Session, "time", dies_on_the_12th_timing)
    kw = {"runtime": "onnxruntime", "out": out, "cpu_cache": "warm", "warmup": 0, "runs": 3, "progress": False}
    with pytest.raises(KeyboardInterrupt):
        table_builder.profile_host(tiny_space, **kw)
    # timings of 2 s each, the probe's middle at clock 3: null, probe, 5 units (to clock 14), probe (due: 11 s
    # since its last middle), a unit (its entry waits; the 5 before the probe are saved), 2 more, then the kill
    saved = load_table(out)
    assert len(saved.entries) == 5 and saved.meta["speed"]["reference_ms"] > 0 and not saved.meta["speed"]["runs"]
    monkeypatch.setattr(_Session, "time", real)
    res = table_builder.profile_host(tiny_space, **kw)
    assert (res.skipped, res.measured) == (5, len(space_keys(tiny_space)) - 5)
    t = load_table(out)
    speed = t.meta["speed"]
    assert len(speed["runs"]) == 1  # the killed run recorded no run; its probe times are not in the median
    assert [e["ms"] / _base(k) for k, e in t.entries.items()] == pytest.approx([speed["reference_ms"]] * len(t.entries),
                                                                               rel=1e-5)


def test_a_table_begun_without_the_probe_goes_on_without_it(drifting, tiny_space, tmp_path):
    out = tmp_path / "t.json"
    kw = {"runtime": "onnxruntime", "out": out, "cpu_cache": "warm", "warmup": 0, "runs": 3, "progress": False}
    keys = space_keys(tiny_space)
    table_builder.profile_host(tiny_space, only_keys=keys[:3], speed_probe=False, **kw)
    table_builder.profile_host(tiny_space, **kw)  # the probe asked for (the default), the table has none
    t = load_table(out)
    assert len(t.entries) == len(keys) and "speed" not in t.meta
    assert not any("probe_ms" in e for e in t.entries.values())
