"""Faults injected into every path on which zoo writes: a kill -9 before a step of the write, a full disk
(ENOSPC) and a folder zoo may not write (EACCES), from outside zoo's code (tests/support/fault_injection.py).

The write paths: the publish that ends `zoo train` (staging, fsync, the renames that put the weights in place,
the run record), `zoo pull` from the test Hub, the push record `zoo push` keeps, `.default`, and the caches
(catalogue, parameter counts, decoded datasets). The steps are those a clean run's trace shows; the default
suite strikes at one step before the weights are in place and one after, `-m slow` at each distinct step (the
weights written, each rename) and, for the train, at every step.

After each fault: the command ended in one error line and a non-zero exit (or was killed), `zoo doctor` finds
the registry healthy (or repairs only what its docs say it repairs: never a quarantine), the weights published
before are byte for byte what they were and `zoo eval` gives their accuracy, a tag that was being replaced
holds its old weights or its new ones, whole, and running the command again (or what the error line says)
succeeds. Everything is asked through the CLI, never the store's internals.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fault_injection import ENV, Fault, injected, read_trace

from zoo_core import plugins
from zoo_core.cli import main

SUPPORT = Path(__file__).resolve().parent / "support"
TRAIN = ["train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--batch-size", "64"]
RETRAIN = [*TRAIN, "--tag", "t", "--overwrite", "--seed", "3"]  # new weights for a published tag
RESUME = [*TRAIN, "--tag", "t", "--resume"]
KILLED = -signal.SIGKILL
# `zoo doctor --fix` quarantines damaged entries: after a fault there must be none (the writes are atomic); what
# it repairs otherwise (leftovers, a stale default, a lost card) its docs list.
QUARANTINE = "quarantine"


# -- running zoo -----------------------------------------------------------------------------------------------


def zoo(*args: str) -> tuple[int, str, str]:
    """``zoo ARGS`` in this process (exit code, stdout, stderr), with the catalogue read afresh."""
    plugins.reset()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def zoo_child(*args: str, fault: Fault | None = None, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``zoo ARGS`` in a child process, with ``fault`` injected."""
    extra = {ENV: fault.to_env()} if fault else {}
    paths = [str(SUPPORT), os.environ.get("PYTHONPATH", "")]
    full = {**os.environ, **(env or {}), **extra, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    if not fault:
        full.pop(ENV, None)
    return subprocess.run([sys.executable, "-m", "fault_injection", *args], env=full, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def error_line(err: str) -> str:
    """The one error line of a failed command (warnings may come before it), never a traceback."""
    lines = [line for line in err.splitlines() if line.startswith("zoo: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def trace_of(*args: str, base: Path, roots: list[str], env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The steps ``zoo ARGS`` takes under the folders ``roots`` of ``base`` when nothing goes wrong (it must
    succeed), their paths relative to ``base``."""
    out = base / f"trace-{time.monotonic_ns()}.jsonl"
    result = zoo_child(*args, fault=Fault("trace", [str(base / r) for r in roots], trace=str(out)), env=env)
    assert result.returncode == 0, result.stderr
    steps = read_trace(out)
    assert steps, "the trace saw no step: the fault injection no longer reaches zoo's writes"
    for step in steps:
        for key in ("path", "to"):
            step[key] = step[key] and os.path.relpath(step[key], os.path.realpath(base))
    return steps


@dataclass(frozen=True)
class At:
    """The ``k``-th step of kind ``op`` under the folder ``under`` (k < 0 counts from the last one)."""

    under: str  # relative to the folder the trace's paths are relative to
    op: str
    k: int

    def fault(self, action: str, base: Path, trace: list[dict[str, Any]]) -> Fault | None:
        """The fault that strikes there in a copy of the traced folders at ``base``; None where the trace has no
        such step."""
        inside = [s for s in trace if s["op"] == self.op and any(
            p and (p == self.under or p.startswith(self.under + "/")) for p in (s["path"], s["to"]))]  # fmt: skip
        if not inside or abs(self.k) > len(inside):
            return None
        at = self.k if self.k > 0 else len(inside) + 1 + self.k
        return Fault(action, [str(base / self.under)], at=at, ops=[self.op])


def strike(selectors: dict[str, At], name: str, action: str, base: Path, trace: list[dict[str, Any]]) -> Fault:
    """The fault of selector ``name``; the test is skipped where the write has no such step, or where an
    earlier selector names the very same step (the write has fewer distinct steps than selectors)."""
    fault = selectors[name].fault(action, base, trace)
    if fault is None:
        pytest.skip(f"this write has no step {selectors[name]}")
    for other, selector in selectors.items():
        if other == name:
            break
        if selector.fault(action, base, trace) == fault:
            pytest.skip(f"the same step as {other}")
    return fault


def marked_slow(names: list[str], slow: tuple[str, ...]) -> list[Any]:
    """Parameters for ``names``, those in ``slow`` marked slow (the default suite strikes at fewer steps)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


# -- what must hold after a fault ------------------------------------------------------------------------------


def facts(ref: str, dataset: str = "digits") -> dict[str, Any]:
    """What a user can see of published weights: their sha256 (re-hashed: `show --verify`) and accuracy."""
    code, out, err = zoo("registry", "show", ref, "--verify", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["problems"] == [], shown["problems"]
    code, out, err = zoo("eval", ref, "--dataset", dataset, "--json")
    assert code == 0, err
    return {"sha256": shown["sha256"], "top1": json.loads(out)["top1"], "created": shown["created"]}


def assert_doctor_healthy() -> list[dict[str, Any]]:
    """`zoo doctor` finds nothing, or only what `--fix` repairs without quarantining; after the fix, nothing."""
    code, out, err = zoo("doctor", "--json")
    problems = json.loads(out)
    if problems:
        assert code == 1 and all(p["fix"] and QUARANTINE not in p["fix"] for p in problems), problems
        code, out, err = zoo("doctor", "--fix")
        assert code == 0, out + err
        code, out, err = zoo("doctor", "--json")
    assert code == 0 and json.loads(out) == [], out + err
    return problems


def assert_unchanged(before: dict[str, dict[str, Any]]) -> None:
    """Each of these published weights is still exactly what it was."""
    for ref, was in before.items():
        now = facts(ref)
        assert (now["sha256"], now["top1"]) == (was["sha256"], was["top1"]), ref


def assert_old_or_new(ref: str, old: dict[str, Any]) -> str:
    """``ref`` holds its old weights or new ones, whole (verified, evaluated): which."""
    now = facts(ref)
    if now["sha256"] == old["sha256"]:
        assert now["top1"] == old["top1"]
        return "old"
    return "new"


def copy_home(template: Path, home: Path) -> None:
    shutil.copytree(template, home, symlinks=True)


# -- a registry with weights in it, and the trace of a train that replaces some ---------------------------------


@dataclass
class Published:
    """A ZOO_HOME in which `zoo train` published simplecnn.keep and simplecnn.t, and what they were."""

    home: Path
    before: dict[str, dict[str, Any]]  # ref -> facts
    retrain: list[dict[str, Any]]  # the steps of RETRAIN run in a copy of home


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, zoo_cache: Path) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("published")
    home = root / "zoo_home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(home))
        mp.setenv("ZOO_CACHE", str(zoo_cache))
        for tag in ("keep", "t"):
            code, _, err = zoo(*TRAIN, "--tag", tag)
            assert code == 0, err
        before = {ref: facts(ref) for ref in ("simplecnn.keep", "simplecnn.t")}
        copy_home(home, root / "traced" / "zoo_home")
        mp.setenv("ZOO_HOME", str(root / "traced" / "zoo_home"))
        retrain = trace_of(*RETRAIN, base=root / "traced", roots=["zoo_home"])
    plugins.reset()
    yield Published(home, before, retrain)


# -- the publish at the end of `zoo train` ----------------------------------------------------------------------

# The distinct steps of a train's publish, as its trace shows them: the weights staged (their fsync), each
# rename in the registry (staging into place, a version into its tag), and the run record marked finished.
PUBLISH_STEPS = {
    "weights-staged": At("zoo_home/registry", "fsync", 1),
    "first-rename": At("zoo_home/registry", "rename", 1),
    "second-rename": At("zoo_home/registry", "rename", 2),
    "last-rename": At("zoo_home/registry", "rename", -1),
    "run-record": At("zoo_home/runs", "rename", -1),
}


# Before the last rename nothing the registry shows has changed (a kill there stands for those before it); the
# run record is written after it.
@pytest.mark.parametrize("step", marked_slow(list(PUBLISH_STEPS), ("weights-staged", "first-rename", "second-rename")))
def test_a_train_killed_at_each_step_of_its_publish_loses_nothing(published, zoo_home, step):
    copy_home(published.home, zoo_home)
    fault = strike(PUBLISH_STEPS, step, "kill", zoo_home.parent, published.retrain)
    assert zoo_child(*RETRAIN, fault=fault).returncode == KILLED

    assert_doctor_healthy()
    assert_unchanged({"simplecnn.keep": published.before["simplecnn.keep"]})
    assert_old_or_new("simplecnn.t", published.before["simplecnn.t"])
    # --resume finishes the run: the weights it trained are published, not the earlier run's kept in their place
    code, _, err = zoo(*RESUME)
    assert code == 0, err
    assert assert_old_or_new("simplecnn.t", published.before["simplecnn.t"]) == "new"
    code, out, _ = zoo("runs", "--json")
    assert {r["run_id"]: r["status"] for r in json.loads(out)}["cnn-simplecnn-t"] == "finished"
    assert_doctor_healthy()


@pytest.mark.slow
def test_a_train_killed_at_any_step_loses_nothing(published, zoo_home):
    """Every step of the trace, the run's own writes before training included; the rerun is the same command."""
    for step in published.retrain:
        shutil.rmtree(zoo_home, ignore_errors=True)
        copy_home(published.home, zoo_home)
        fault = Fault("kill", [str(zoo_home)], at=step["n"])
        assert zoo_child(*RETRAIN, fault=fault).returncode == KILLED, step
        assert_doctor_healthy()
        assert_unchanged({"simplecnn.keep": published.before["simplecnn.keep"]})
        assert_old_or_new("simplecnn.t", published.before["simplecnn.t"])
        code, _, err = zoo(*RETRAIN)
        assert code == 0, (step, err)
        assert assert_old_or_new("simplecnn.t", published.before["simplecnn.t"]) == "new", step
        assert_doctor_healthy()


FULL_DISK_STEPS = {
    "weights": At("zoo_home/registry", "write", 1),  # safetensors writing the weights into the staging folder
    "weights-fsync": At("zoo_home/registry", "fsync", 1),
    "config": At("zoo_home/registry", "write", 2),
    "last-rename": At("zoo_home/registry", "rename", -1),
    "run-record": At("zoo_home/runs", "write", -1),
}


@pytest.mark.parametrize("step", marked_slow(list(FULL_DISK_STEPS), ("weights-fsync", "config", "last-rename")))
def test_a_full_disk_during_a_train_is_one_line_and_the_resume_publishes(published, zoo_home, step):
    copy_home(published.home, zoo_home)
    fault = strike(FULL_DISK_STEPS, step, "enospc", zoo_home.parent, published.retrain)
    with injected(fault):
        code, _, err = zoo(*RETRAIN)
    line = error_line(err)
    assert code == 1 and "No space left on device" in line, line

    assert_doctor_healthy()
    assert_unchanged({"simplecnn.keep": published.before["simplecnn.keep"]})
    assert_old_or_new("simplecnn.t", published.before["simplecnn.t"])
    code, _, err = zoo(*RESUME)
    assert code == 0, err
    assert assert_old_or_new("simplecnn.t", published.before["simplecnn.t"]) == "new"
    assert_doctor_healthy()


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[Fault | None]:
    """``folder`` read-only for the block: by its mode, or, for root (whom modes do not stop), by refusing every
    write under it with EACCES, in this process and in the children given the fault it yields."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for p in modes:
            p.chmod(0o555)
        try:
            yield None
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
    else:
        fault = Fault("eacces", [str(folder)], at=1, repeat=True)
        with injected(fault):
            yield fault


@pytest.mark.parametrize(("folder", "message"), [
    ("registry", "trained, but the weights could not be published to the registry (Permission denied"),
    ("runs", "Permission denied"),
], ids=["registry", "runs"])  # fmt: skip
def test_an_unwritable_folder_fails_a_train_in_one_line(published, zoo_home, folder, message):
    copy_home(published.home, zoo_home)
    with unwritable(zoo_home / folder):
        code, _, err = zoo(*RETRAIN)
        line = error_line(err)
        assert code == 1 and message in line, line
        assert_unchanged(published.before)  # readable all the same
    assert_doctor_healthy()
    rerun = RESUME if folder == "registry" else RETRAIN
    assert ("--resume" in line) == (folder == "registry")  # the line says how to carry on
    code, _, err = zoo(*rerun)
    assert code == 0, err
    assert assert_old_or_new("simplecnn.t", published.before["simplecnn.t"]) == "new"


# -- the run record -----------------------------------------------------------------------------------------

RUN_STEPS = {
    "run-created": At("zoo_home/runs", "rename", 1),  # run.json, before any training
    "checkpoint": At("zoo_home/runs", "rename", 2),  # the first epoch's checkpoint
}


@pytest.mark.parametrize("step", marked_slow(list(RUN_STEPS), ("checkpoint",)))
def test_a_train_killed_while_writing_its_run_record_can_be_run_again(published, zoo_home, step):
    copy_home(published.home, zoo_home)
    fault = strike(RUN_STEPS, step, "kill", zoo_home.parent, published.retrain)
    assert zoo_child(*RETRAIN, fault=fault).returncode == KILLED

    code, out, err = zoo("runs", "--json")  # a run without its record is listed as skipped, not a crash
    assert code == 0 and "Traceback" not in err
    assert_doctor_healthy()
    assert_unchanged(published.before)  # nothing was published yet
    code, _, err = zoo(*RESUME)
    if step == "run-created":  # no record to resume from: one line that says so, then the command itself
        assert code == 2 and "no run cnn-simplecnn-t to resume" in error_line(err)
        code, _, err = zoo(*RETRAIN)
    assert code == 0, err
    assert assert_old_or_new("simplecnn.t", published.before["simplecnn.t"]) == "new"
    assert_doctor_healthy()


# -- .default ---------------------------------------------------------------------------------------------------


def default_of(model: str = "simplecnn") -> str:
    code, out, err = zoo("registry", "default", model)
    assert code == 0, err
    return out.strip()


@pytest.mark.parametrize("action", ["kill", "enospc"])
def test_setting_a_default_killed_or_on_a_full_disk_keeps_the_old_one(published, zoo_home, action):
    copy_home(published.home, zoo_home)
    code, _, err = zoo("registry", "default", "simplecnn.keep")
    assert code == 0, err
    before = default_of()
    trace = trace_of("registry", "default", "simplecnn.t", base=zoo_home.parent, roots=["zoo_home"])
    code, _, err = zoo("registry", "default", "simplecnn.keep")  # the trace ran it: back to the start
    assert code == 0 and default_of() == before, err
    fault = At("zoo_home/registry", "rename" if action == "kill" else "write", 1).fault(action, zoo_home.parent, trace)
    assert fault is not None, trace
    result = zoo_child("registry", "default", "simplecnn.t", fault=fault)
    if action == "kill":
        assert result.returncode == KILLED
    else:
        assert result.returncode == 1 and "No space left on device" in error_line(result.stderr)
    assert default_of() == before  # the old default, whole
    assert_doctor_healthy()
    assert zoo("registry", "default", "simplecnn.t")[0] == 0
    assert default_of() == before.replace("keep", "t")


# -- the Hub: pull, and the record a push leaves --------------------------------------------------------------


@dataclass
class HubWorld:
    """The test Hub with alice/digits at a second commit, and a ZOO_HOME (with its Hugging Face cache) that
    pulled the first one."""

    base: Path  # holds zoo_home/ and hf/
    env: dict[str, str]  # what a child needs to reach the Hub (its ZOO_HOME and HF_HOME: a test's own copies)
    before: dict[str, dict[str, Any]]  # simplecnn.keep, simplecnn.t and the pulled tag
    pull: list[dict[str, Any]]  # the steps of `zoo pull alice/digits` in a copy of base
    pulled: str  # the sha256 of the weights that pull gets (the second commit's)
    push: list[dict[str, Any]]  # the steps of `zoo push simplecnn.keep --repo alice/keep`


PULLED = "simplecnn.hub-alice-digits"


@pytest.fixture(scope="module")
def hub_world(published, tmp_path_factory: pytest.TempPathFactory, zoo_cache: Path) -> Iterator[HubWorld]:
    from hub_server import ORGS, USERS, HubServer

    server = HubServer(users=USERS, orgs=ORGS).start()
    root = tmp_path_factory.mktemp("hub_world")
    base = root / "base"
    copy_home(published.home, base / "zoo_home")
    env = {"HF_ENDPOINT": server.url, "HF_TOKEN": "hf_alice_write", "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_OFFLINE": "0", "ZOO_CACHE": str(zoo_cache)}  # fmt: skip
    here = {**env, "ZOO_HOME": str(base / "zoo_home"), "HF_HOME": str(base / "hf")}
    try:
        for args in (["push", "simplecnn.t", "--repo", "alice/digits"], ["pull", "alice/digits"],
                     ["push", "simplecnn.keep", "--repo", "alice/digits"]):  # fmt: skip
            result = zoo_child(*args, env=here)
            assert result.returncode == 0, result.stderr
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ZOO_HOME", str(base / "zoo_home"))
            mp.setenv("ZOO_CACHE", str(zoo_cache))
            before = {**published.before, PULLED: facts(PULLED)}
            traces = {}
            for name, args in (("pull", ["pull", "alice/digits"]), ("push", ["push", "simplecnn.keep", "--repo",
                                                                             "alice/keep"])):  # fmt: skip
                copy_home(base, root / name)
                there = {**env, "ZOO_HOME": str(root / name / "zoo_home"), "HF_HOME": str(root / name / "hf")}
                traces[name] = trace_of(*args, base=root / name, roots=["zoo_home", "hf"], env=there)
            mp.setenv("ZOO_HOME", str(root / "pull" / "zoo_home"))
            pulled = facts(PULLED)["sha256"]
            assert pulled != before[PULLED]["sha256"]
        plugins.reset()
        yield HubWorld(base, env, before, traces["pull"], pulled, traces["push"])
    finally:
        server.stop()


def hub_copy(world: HubWorld, zoo_home: Path) -> dict[str, str]:
    """The world's ZOO_HOME and Hugging Face cache copied for this test; the environment a child needs."""
    shutil.copytree(world.base / "zoo_home", zoo_home, symlinks=True)
    shutil.copytree(world.base / "hf", zoo_home.parent / "hf", symlinks=True)
    return {**world.env, "ZOO_HOME": str(zoo_home), "HF_HOME": str(zoo_home.parent / "hf")}


PULL_STEPS = {
    "download": At("hf", "rename", -1),  # the weights into huggingface_hub's cache
    "copy": At("zoo_home/registry", "copy", 1),  # the verified weights into the registry's staging
    "first-rename": At("zoo_home/registry", "rename", 1),
    "second-rename": At("zoo_home/registry", "rename", 2),
    "last-rename": At("zoo_home/registry", "rename", -1),
}


@pytest.mark.parametrize("step", marked_slow(list(PULL_STEPS), ("copy", "first-rename", "second-rename")))
def test_a_pull_killed_at_each_step_loses_nothing_and_pulls_again(hub_world, zoo_home, step):
    env = hub_copy(hub_world, zoo_home)
    fault = strike(PULL_STEPS, step, "kill", zoo_home.parent, hub_world.pull)
    assert zoo_child("pull", "alice/digits", fault=fault, env=env).returncode == KILLED

    assert_doctor_healthy()
    assert_unchanged({ref: hub_world.before[ref] for ref in ("simplecnn.keep", "simplecnn.t")})
    assert_old_or_new(PULLED, hub_world.before[PULLED])
    result = zoo_child("pull", "alice/digits", env=env)
    assert result.returncode == 0, result.stderr
    assert facts(PULLED)["sha256"] == hub_world.pulled  # the second commit's weights
    assert_doctor_healthy()


@pytest.mark.parametrize("action", marked_slow(["enospc", "eacces"], ("eacces",)))
def test_a_pull_on_a_full_disk_or_into_an_unwritable_registry_is_one_line(hub_world, zoo_home, action):
    env = hub_copy(hub_world, zoo_home)
    if action == "enospc":
        result = zoo_child("pull", "alice/digits", env=env,
                           fault=At("zoo_home/registry", "copy", 1).fault("enospc", zoo_home.parent, hub_world.pull))
        message = "No space left on device"
    else:
        with unwritable(zoo_home / "registry") as fault:
            result = zoo_child("pull", "alice/digits", env=env, fault=fault)
        message = "Permission denied"
    line = error_line(result.stderr)
    assert result.returncode == 1 and message in line, line

    assert_doctor_healthy()
    assert_unchanged(hub_world.before)  # the pulled tag too: still the first commit's weights
    result = zoo_child("pull", "alice/digits", env=env)
    assert result.returncode == 0, result.stderr
    assert facts(PULLED)["sha256"] == hub_world.pulled


PUSH_STEPS = {
    "record": At("zoo_home/registry", "rename", 1),  # the push recorded with the entry
    "card": At("zoo_home/registry", "rename", -1),  # its model card written again
}


def pushed_to(ref: str) -> list[str]:
    code, out, err = zoo("registry", "show", ref, "--json")
    assert code == 0, err
    return [p["repo"] for p in json.loads(out)["config"].get("pushed") or []]


@pytest.mark.parametrize("fault_at", marked_slow([*PUSH_STEPS, "full-disk"], ("card",)))
def test_a_push_killed_or_on_a_full_disk_while_recording_keeps_the_weights_and_pushes_again(hub_world, zoo_home,
                                                                                             fault_at):
    env = hub_copy(hub_world, zoo_home)
    push = ["push", "simplecnn.keep", "--repo", "alice/keep"]
    if fault_at == "full-disk":
        fault = At("zoo_home/registry", "fsync", 1).fault("enospc", zoo_home.parent, hub_world.push)
        result = zoo_child(*push, fault=fault, env=env)
        assert result.returncode == 1 and "No space left on device" in error_line(result.stderr)
    else:
        fault = strike(PUSH_STEPS, fault_at, "kill", zoo_home.parent, hub_world.push)
        assert zoo_child(*push, fault=fault, env=env).returncode == KILLED

    assert_doctor_healthy()
    assert_unchanged(hub_world.before)
    result = zoo_child(*push, env=env)  # the Hub has the commit already: nothing is sent again, the push recorded
    assert result.returncode == 0, result.stderr
    assert "alice/keep" in pushed_to("simplecnn.keep")
    assert_unchanged({"simplecnn.keep": hub_world.before["simplecnn.keep"]})


# -- caches: rebuilt from what they cache, so a torn or missing one must only cost time -------------------------


def cold_cache(zoo_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = zoo_home.parent / "cache"
    monkeypatch.setenv("ZOO_CACHE", str(cache))
    return cache


STATS_PLUGIN = '''
from zoo_core import hookimpl


def build_faultnet(num_classes=10, in_chans=3):
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))


@hookimpl
def zoo_register_models(register):
    register("faultnet", build_faultnet, family="faultnet", description="A model whose size is counted here",
             input_size=(3, 16, 16))
'''
CACHES = {
    # cache: (a command that writes it, its folder under ZOO_CACHE)
    "catalogue": (["list", "simplecnn*", "--json"], "catalogue"),
    "stats": (["list", "faultnet", "--sort", "params", "--json"], "stats"),
}


@pytest.mark.parametrize(("cache", "action"), [
    (cache, action) if action == "kill" else pytest.param(cache, action, marks=pytest.mark.slow)
    for cache in CACHES for action in ("kill", "enospc", "eacces")
])  # fmt: skip
def test_a_cache_killed_or_unwritable_mid_write_costs_only_time(zoo_home, monkeypatch, plugin_path, cache, action):
    cache_dir = cold_cache(zoo_home, monkeypatch)
    plugin_path("zoo-faultnet", "faultnet", "zoo_faultnet", STATS_PLUGIN)
    args, folder = CACHES[cache]
    trace = trace_of(*args, base=zoo_home.parent, roots=["cache"])
    clean = zoo_child(*args)
    assert clean.returncode == 0, clean.stderr
    shutil.rmtree(cache_dir / folder)
    if action == "kill":
        fault = At(f"cache/{folder}", "rename", -1).fault("kill", zoo_home.parent, trace)
        assert fault is not None, trace
        assert zoo_child(*args, fault=fault).returncode == KILLED
    else:
        fault = Fault(action, [str(cache_dir / folder)], at=1, repeat=True)
        result = zoo_child(*args, fault=fault)  # a cache that cannot be written: slower, not broken
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert json.loads(result.stdout) == json.loads(clean.stdout)
    again = zoo_child(*args)  # whatever the fault left is read back or rebuilt
    assert again.returncode == 0 and json.loads(again.stdout) == json.loads(clean.stdout), again.stderr


@pytest.mark.parametrize("action", ["kill", "enospc"])
def test_a_dataset_cache_killed_or_on_a_full_disk_costs_only_time(zoo_home, monkeypatch, action):
    from test_datasets import write_image_folder

    cache_dir = cold_cache(zoo_home, monkeypatch)
    root = write_image_folder(zoo_home.parent / "shapes", per_class=8)
    args = ["train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(root), "--epochs", "1", "--tag", "s"]
    if action == "kill":  # dies as the decoded images are put in place
        fault = Fault("kill", [str(cache_dir / "datasets")], at=1, ops=["rename"])
        assert zoo_child(*args, fault=fault).returncode == KILLED
    else:  # the decoded images cannot be kept: the run goes on without them
        with injected(Fault("enospc", [str(cache_dir / "datasets")], at=1, ops=["write"], repeat=True)):
            code, _, err = zoo(*args)
        assert code == 0 and "Traceback" not in err, err
    code, _, err = zoo(*args, "--overwrite")  # the run again (the killed one had begun)
    assert code == 0, err
    code, out, err = zoo("eval", "simplecnn.s", "--dataset", "imagefolder", "--data-dir", str(root), "--json")
    assert code == 0 and json.loads(out)["num_samples"] == 8, err
    assert_doctor_healthy()


# -- two writers at once --------------------------------------------------------------------------------------


def test_two_trains_into_one_tag_at_once_end_in_a_defined_state(published, zoo_home):
    """One trains and publishes; the other is refused in one line (the run is busy, or exists unfinished), or,
    where the first had finished before the second began, publishes the tag's next version: never a mix."""
    copy_home(published.home, zoo_home)
    args = [sys.executable, "-m", "fault_injection", *TRAIN, "--tag", "race"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    won = [err for code, err in results if code == 0]
    lost = [(code, err) for code, err in results if code != 0]
    assert won, results
    for code, err in lost:
        line = error_line(err)
        assert code == 2 and "run cnn-simplecnn-race" in line, line
        assert "is training in another process" in line or "exists and did not finish" in line, line
    for version in range(1, len(won) + 1):
        facts(f"simplecnn.race@{version}")
    assert zoo("registry", "show", f"simplecnn.race@{len(won) + 1}")[0] == 2  # no other version
    code, out, _ = zoo("runs", "--json")
    assert {r["run_id"]: r["status"] for r in json.loads(out)}["cnn-simplecnn-race"] == "finished"
    assert_doctor_healthy()
    assert_unchanged(published.before)


def test_removing_a_tag_while_a_train_publishes_into_it_ends_in_a_defined_state(published, zoo_home):
    """The remove takes the tag's published weights away at once; the train then publishes its own into the tag
    as a new one: the tag holds the new weights, whole."""
    copy_home(published.home, zoo_home)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "fault_injection", *RETRAIN], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            code, out, _ = zoo("runs", "--json")
            runs = {r["run_id"]: r for r in json.loads(out)} if code == 0 else {}
            if runs.get("cnn-simplecnn-t", {}).get("status") == "running":  # the template's run had finished
                break
            time.sleep(0.1)
        code, _, err = zoo("registry", "remove", "simplecnn.t", "--yes")
        assert code == 0, err
        assert zoo("registry", "show", "simplecnn.t")[0] == 2  # gone at once
        _, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert assert_old_or_new("simplecnn.t", published.before["simplecnn.t"]) == "new"
    assert_doctor_healthy()
    assert_unchanged({"simplecnn.keep": published.before["simplecnn.keep"]})
