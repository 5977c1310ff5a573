"""tools/workshop_hub.py without a hub: names, passwords, warnings, cgroup limits; the capacity table
and the configurations for more than one machine (docs/hub/) agree with it."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import workshop_hub  # from tools/ (pytest's pythonpath, pyproject.toml)
import workshop_load
import yaml

TOP = Path(__file__).parent.parent
CAPACITY = json.loads(workshop_hub.CAPACITY.read_text(encoding="utf-8"))


@pytest.mark.parametrize("hub_name", ["alice", "bob-2", "ann_marie", "x" * 27])
def test_each_accepted_name_is_its_own_system_user(hub_name: str) -> None:
    assert workshop_hub.system_name(hub_name) == "wn-" + hub_name


@pytest.mark.parametrize("hub_name", ["a.b", "é", "../root", "Bob", "-x", "", "x" * 28, "ann marie"])
def test_other_names_are_refused_so_that_no_two_learners_share_a_user(hub_name: str) -> None:
    with pytest.raises(ValueError, match="not a learner name"):
        workshop_hub.system_name(hub_name)


def test_there_is_no_built_in_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_HUB_PASSWORD", raising=False)
    monkeypatch.delenv("COURSE_HUB_ADMIN_PASSWORD", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = workshop_hub.write_secrets(tmp_path / "a", first_use=False)
    second = workshop_hub.write_secrets(tmp_path / "b", first_use=False)
    assert first["room_password"] != second["room_password"], "two hubs generated the same room password"
    assert len(first["admin_password"]) >= 32 and first["admin_password"] != first["room_password"]
    assert (tmp_path / "a" / "secrets.json").stat().st_mode & 0o077 == 0, "the passwords file is readable by others"
    again = workshop_hub.write_secrets(tmp_path / "a", first_use=False)
    assert again == first, "a restart changed the passwords"


def test_a_chosen_password_is_used_and_a_short_one_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_HUB_PASSWORD", "blue-heron-42")
    assert workshop_hub.write_secrets(tmp_path, first_use=False)["room_password"] == "blue-heron-42"
    monkeypatch.setenv("COURSE_HUB_PASSWORD", "short")
    with pytest.raises(SystemExit, match="at least 8 characters"):
        workshop_hub.write_secrets(tmp_path, first_use=False)


@pytest.mark.parametrize(
    ("ip", "cert", "warns"),
    [("127.0.0.1", None, False), ("0.0.0.0", None, True), ("10.0.0.5", None, True), ("0.0.0.0", "c.pem", False)],
)
def test_listening_beyond_loopback_without_tls_warns(ip: str, cert: str | None, warns: bool) -> None:
    warning = workshop_hub.network_warning(ip, cert)
    assert bool(warning) == warns, warning
    if warns:
        assert "passwords cross the room's network in clear" in str(warning)


def test_the_command_line_refuses_half_a_certificate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        workshop_hub.main(["--ssl-cert", "c.pem"])
    assert "give both --ssl-cert and --ssl-key" in capsys.readouterr().err


def fake_cgroup_v2(root: Path) -> Path:
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_cgroup_v2_limits_are_written_where_the_kernel_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    root = fake_cgroup_v2(tmp_path)
    assert workshop_hub.cgroup_version(root) == ("v2", "cgroup v2")
    procs = workshop_hub.learner_cgroups("wn-alice", 2_000_000_000, 1.5, root)
    learner = root / workshop_hub.CGROUP_GROUP / "wn-alice"
    assert procs == [learner / "cgroup.procs"]
    assert (learner / "memory.max").read_text() == "2000000000"
    assert (learner / "cpu.max").read_text() == "150000 100000"
    assert (root / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (learner / "pids.max").read_text() == str(workshop_hub.PIDS_MAX)


def test_limits_are_reported_as_not_enforced_without_cgroups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    (tmp_path / "cgroup.controllers").write_text("cpuset io pids\n")
    assert workshop_hub.cgroup_version(tmp_path) == (None, "cgroup v2 without the cpu and memory controller")
    assert workshop_hub.cgroup_version(tmp_path / "missing")[0] is None
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert workshop_hub.cgroup_version(tmp_path) == (None, "the hub does not run as root")
    with pytest.raises(RuntimeError, match="cannot be enforced"):
        workshop_hub.learner_cgroups("wn-alice", 10**9, 1, tmp_path)


def test_the_memory_limit_stops_a_process_that_goes_beyond_it() -> None:
    """For real, where this machine has cgroups: a process allocating 400 MB under a 150 MB limit."""
    version, why = workshop_hub.cgroup_version()
    if version is None:
        pytest.skip(f"no cgroups to test here: {why}")
    procs = workshop_hub.learner_cgroups("wn-limit-test", 150_000_000, 1, workshop_hub.CGROUP_ROOT)

    def join() -> None:
        for path in procs:
            Path(path).write_text(str(os.getpid()))

    try:
        code = "b = bytearray(400_000_000); b[::4096] = b'x' * len(b[::4096]); print('survived')"
        done = subprocess.run([sys.executable, "-c", code], preexec_fn=join, capture_output=True, text=True)
        assert done.returncode == -9 and "survived" not in done.stdout, f"exit {done.returncode}: {done.stdout}"
        fits = subprocess.run([sys.executable, "-c", "b = bytearray(20_000_000); print('fits')"], preexec_fn=join,
                              capture_output=True, text=True)  # fmt: skip
        assert fits.stdout.strip() == "fits", fits.stderr
    finally:
        workshop_hub.remove_cgroups()
    assert not any(Path(p).parent.exists() for p in procs), "the test's cgroup was not removed"


def test_the_hubs_limits_come_from_the_measured_table() -> None:
    arguments = argparse.Namespace(learner_memory=None, learner_cpus=None)
    assert workshop_hub.learner_limits(arguments) == (
        CAPACITY["per_learner_limit"]["memory_gb"],
        CAPACITY["per_learner_limit"]["cpus"],
    )
    arguments = argparse.Namespace(learner_memory=3.0, learner_cpus=1.0)
    assert workshop_hub.learner_limits(arguments) == (3.0, 1.0)


def test_the_capacity_table_follows_from_the_measurements() -> None:
    rounds: dict[int, list[dict]] = {}
    for learner in CAPACITY["per_learner_measured"]:
        rounds.setdefault(learner["learners"], []).append(learner)
    assert sorted(rounds) == [1, 2, 4] and all(len(v) == n for n, v in rounds.items()), "rounds of 1, 2, 4 learners"
    rebuilt = workshop_load.capacity(
        [{"learners": n, "per_learner": v, "hub_and_proxy_peak_rss_gb": CAPACITY["hub_and_proxy_gb"]}
         for n, v in rounds.items()],
        CAPACITY["learner_cpus"],
    )  # fmt: skip
    assert rebuilt["rooms"] == CAPACITY["rooms"]
    assert rebuilt["per_learner_limit"] == CAPACITY["per_learner_limit"]
    # The limit leaves room above every measured learner, and a bigger room never needs less.
    assert CAPACITY["per_learner_limit"]["memory_gb"] >= CAPACITY["peak_rss_gb_per_learner"] * 1.2
    cores = [room["run_all_cores"] for room in CAPACITY["rooms"]]
    assert cores == sorted(cores)
    for path in (TOP / "README.md", TOP / "docs" / "instructor_guide.md"):
        text = path.read_text(encoding="utf-8")
        for room in CAPACITY["rooms"]:
            row = workshop_load.room_row(room)
            assert row in text, (
                f"{path.name} does not show the measured row {row!r}: run tools/workshop_load.py --write"
            )


def gigabytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([MG])", quantity).groups()  # type: ignore[union-attr]
    return float(number) / (1000 if unit == "M" else 1)


def test_the_zero_to_jupyterhub_configuration_agrees_with_the_table() -> None:
    config = yaml.safe_load((TOP / "docs" / "hub" / "z2jh-config.yaml").read_text(encoding="utf-8"))
    single = config["singleuser"]
    limit = CAPACITY["per_learner_limit"]
    assert gigabytes(single["memory"]["limit"]) == limit["memory_gb"]
    assert gigabytes(single["memory"]["guarantee"]) == pytest.approx(CAPACITY["peak_pss_gb_per_learner"], abs=0.06)
    assert single["cpu"]["limit"] == limit["cpus"]
    room30 = next(room for room in CAPACITY["rooms"] if room["learners"] == 30)
    assert single["cpu"]["guarantee"] == pytest.approx(room30["working_cores"] / 30, abs=0.051)
    assert config["cull"]["enabled"] and config["cull"]["timeout"] == workshop_hub.SERVER_IDLE_SECONDS
    assert f"cull_idle_timeout={workshop_hub.KERNEL_IDLE_SECONDS}" in " ".join(single["cmd"])
    assert single["defaultUrl"] == "/lab/tree/notebooks/00_start_here.ipynb"
    assert "COURSE_DATA_DIR" in single["extraEnv"]


def test_the_littlest_jupyterhub_recipe_agrees_with_the_table() -> None:
    recipe = (TOP / "docs" / "hub" / "tljh-recipe.md").read_text(encoding="utf-8")
    limit = CAPACITY["per_learner_limit"]
    assert f"tljh-config set limits.memory {limit['memory_gb']:g}G" in recipe
    assert f"tljh-config set limits.cpu {limit['cpus']}" in recipe
    assert (
        f"--timeout={workshop_hub.SERVER_IDLE_SECONDS}" in recipe
        or f"timeout {workshop_hub.SERVER_IDLE_SECONDS}" in recipe
    )
    for room in CAPACITY["rooms"]:
        row = workshop_load.room_row(room)
        assert row in recipe, f"the recipe does not size a room of {room['learners']} as measured: {row!r}"
