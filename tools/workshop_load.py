"""The machine a workshop room needs, measured: N simulated learners go through 00 → 02 on one hub.

    .venv/bin/python tools/workshop_load.py [--learners 1 2 4] [--learner-cpus 1] [--write]  (root; ~10 min)

Starts `./course hub` on loopback with each learner held to --learner-cpus CPUs and as many PyTorch
threads (memory not limited, so demand is measured), signs in N learners for N = 1, 2, 4, and has
each run notebooks 00, 01 and 02 in order
through the hub as a browser would (tools/hub_client.py: REST API and kernel websockets behind the
proxy), all N at once. Every 0.5 s and after every cell it reads /proc for each learner's system
user: resident memory (RSS) and proportional memory (PSS: libraries shared between learners
counted once), and CPU time per process. It stops the hub and removes the users it made, and
writes artifacts/workshop_load.json; with --write also docs/hub/workshop_capacity.json (the
per-learner limits `./course hub` enforces) and the capacity table in the README and
docs/instructor_guide.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import pwd
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from statistics import median

import workshop_hub
from hub_client import Learner

TOP = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("00_start_here", "01_scaling_basics", "02_saturation")
ROOMS = (10, 30, 60)
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# The capacity model's assumptions (not measured; stated with the table):
SLOWDOWN_ACCEPTED = 2.0  # "Run all" by everyone at once may take twice as long as alone
SCHEDULE_MINUTES = 15 + 40 + 40  # 00 → 02 in the instructor guide's schedule
RUNS_PER_NOTEBOOK = 2.0  # a learner runs a notebook's code about twice (Run all, then re-runs, exercises)
BURST = 3.0  # activity bunches up when the instructor says "now run it": peak = 3 × the average
MEMORY_MARGIN = 1.25  # per-learner limit above the measured peak
MARKERS = ("<!-- hub-capacity:start -->", "<!-- hub-capacity:end -->")


class Sampler:
    """Memory and CPU of each learner's processes, read from /proc."""

    def __init__(self, users: dict[str, int]) -> None:
        self.users = users  # learner name -> uid
        self.cpu: dict[int, float] = {}  # pid -> last seen CPU seconds (kept after the process ends)
        self.owner: dict[int, str] = {}
        self.peak_rss = dict.fromkeys(users, 0)
        self.peak_pss = dict.fromkeys(users, 0)
        self.lock = threading.Lock()

    def sample(self) -> None:
        by_uid = {uid: name for name, uid in self.users.items()}
        rss = dict.fromkeys(self.users, 0)
        pss = dict.fromkeys(self.users, 0)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                name = by_uid.get(entry.stat().st_uid)
                if name is None:
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
                rss[name] += int(fields[21]) * PAGE
                pss[name] += pss_bytes(entry)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            with self.lock:
                self.cpu[int(entry.name)] = cpu
                self.owner[int(entry.name)] = name
        with self.lock:
            for name in self.users:
                self.peak_rss[name] = max(self.peak_rss[name], rss[name])
                self.peak_pss[name] = max(self.peak_pss[name], pss[name])

    def cpu_seconds(self, name: str) -> float:
        with self.lock:
            return sum(seconds for pid, seconds in self.cpu.items() if self.owner[pid] == name)


def pss_bytes(proc: Path) -> int:
    for line in (proc / "smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def process_rss(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[21]) * PAGE
    except (FileNotFoundError, IndexError):
        return 0


def run_round(hub_url: str, password: str, count: int, private: Path) -> dict:
    """`count` learners sign in and go through the notebooks at once; their measurements."""
    learners = [Learner(hub_url, f"load{count}-{index}") for index in range(count)]
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(lambda learner: learner.sign_in(password), learners))
    users = {learner.name: pwd.getpwnam(workshop_hub.system_name(learner.name)).pw_uid for learner in learners}
    sampler = Sampler(users)
    hub_pids = [int((private / name).read_text()) for name in ("jupyterhub.pid", "proxy.pid")]
    hub_peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            sampler.sample()
            hub_peak[0] = max(hub_peak[0], sum(process_rss(pid) for pid in hub_pids))
            done.wait(0.5)

    def go_through(learner: Learner) -> dict:
        walls, cpus = {}, {}
        for notebook in NOTEBOOKS:
            before = sampler.cpu_seconds(learner.name)
            walls[notebook] = learner.run_notebook(f"notebooks/{notebook}.ipynb", on_cell=lambda _: sampler.sample())
            cpus[notebook] = sampler.cpu_seconds(learner.name) - before
        return {"wall_s": walls, "cpu_s": cpus}

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(count) as pool:
            results = list(pool.map(go_through, learners))
    finally:
        done.set()
        watcher.join()
    elapsed = time.perf_counter() - start
    for learner in learners:
        learner.stop_server()
    return {
        "learners": count,
        "elapsed_s": elapsed,
        "hub_and_proxy_peak_rss_gb": hub_peak[0] / 1e9,
        "per_learner": [
            {**result, "peak_rss_gb": sampler.peak_rss[learner.name] / 1e9,
             "peak_pss_gb": sampler.peak_pss[learner.name] / 1e9}
            for learner, result in zip(learners, results, strict=True)
        ],
    }  # fmt: skip


def capacity(rounds: list[dict], learner_cpus: int) -> dict:
    """Per-learner figures from the rounds, and the rooms they imply (assumptions above)."""
    solo = next(r for r in rounds if r["learners"] == 1)["per_learner"][0]
    every = [learner for r in rounds for learner in r["per_learner"]]
    cpu = {nb: median([learner["cpu_s"][nb] for learner in every]) for nb in NOTEBOOKS}
    solo_wall = {nb: solo["wall_s"][nb] for nb in NOTEBOOKS}
    peak_rss = max(learner["peak_rss_gb"] for learner in every)
    widest = max(rounds, key=lambda r: r["learners"])
    peak_pss = max(learner["peak_pss_gb"] for learner in widest["per_learner"])
    hub = max(r["hub_and_proxy_peak_rss_gb"] for r in rounds)
    cpu_total, wall_total = sum(cpu.values()), sum(solo_wall.values())
    memory_limit = math.ceil(peak_rss * MEMORY_MARGIN * 2) / 2
    rooms = []
    for room in ROOMS:
        run_all = room * cpu_total / (SLOWDOWN_ACCEPTED * wall_total)
        working = room * RUNS_PER_NOTEBOOK * cpu_total / (SCHEDULE_MINUTES * 60) * BURST
        memory = hub + room * peak_pss
        rooms.append(
            {"learners": room, "run_all_cores": math.ceil(run_all), "working_cores": math.ceil(working),
             "memory_gb": math.ceil(memory * 1.1)}  # 10 % for the system
        )  # fmt: skip
    return {
        "cpu_s_per_notebook": cpu,
        "solo_wall_s_per_notebook": solo_wall,
        "peak_rss_gb_per_learner": peak_rss,
        "peak_pss_gb_per_learner": peak_pss,
        "hub_and_proxy_gb": hub,
        "per_learner_limit": {"memory_gb": memory_limit, "cpus": learner_cpus},
        "rooms": rooms,
    }


def room_row(room: dict) -> str:
    """One row of the capacity table (the README, the instructor guide and the TLJH recipe show it)."""
    cores = f"{room['run_all_cores']} cores | {room['working_cores']} cores"
    return f"| {room['learners']} | {cores} | {room['memory_gb']} GB |"


def table(result: dict) -> str:
    cap, machine = result["capacity"], result["machine"]
    rows = "\n".join(room_row(room) for room in cap["rooms"])
    per_nb = ", ".join(
        f"`{nb}` {cap['cpu_s_per_notebook'][nb]:.0f} CPU s ({cap['solo_wall_s_per_notebook'][nb]:.0f} s alone)"
        for nb in NOTEBOOKS
    )
    walls = "; ".join(
        f"N = {r['learners']}: " + ", ".join(
            f"{median([lr['wall_s'][nb] for lr in r['per_learner']]):.0f}" for nb in NOTEBOOKS
        ) + " s"
        for r in result["rounds"]
    )  # fmt: skip
    limit = cap["per_learner_limit"]
    cpus = f"{limit['cpus']} CPU" + ("s" if limit["cpus"] != 1 else "")
    widest = max(r["learners"] for r in result["rounds"])
    paragraphs = [
        f"Measured by `tools/workshop_load.py` on {result['date']}: {machine}. Simulated learners signed in to "
        "`./course hub` and ran notebooks 00 → 02 through it, N at once.",
        f"- Per learner (JupyterLab's server plus the open notebook's kernel): peak "
        f"**{cap['peak_rss_gb_per_learner']:.2f} GB** resident; **{cap['peak_pss_gb_per_learner']:.2f} GB** when "
        f"libraries shared between {widest} learners are counted once (proportional set size). The hub and its "
        f"proxy: {cap['hub_and_proxy_gb']:.2f} GB.\n"
        f"- CPU per learner: {per_nb}. Wall time of 00, 01, 02 (median learner) as N grows on these "
        f"{machine.split(',')[0]}: {walls}.\n"
        f"- `./course hub` limits each learner to **{limit['memory_gb']:g} GB** and **{cpus}** with as "
        f"many PyTorch threads (the peak with a {MEMORY_MARGIN:g}× margin; the CPUs measured with). Notebooks 03–06 "
        "peak at or below 01's kernel memory plus 0.05 GB (budget table).",
        '| learners | everyone presses "Run all" at once | a room working through the material | memory |\n'
        f"|---|---|---|---|\n{rows}",
        f'"Run all at once": cores for the whole room to finish 00 → 02 within {SLOWDOWN_ACCEPTED:g}× a learner\'s '
        f'time alone. "Working through": the schedule\'s {SCHEDULE_MINUTES} min for 00 → 02, each notebook run about '
        f"{RUNS_PER_NOTEBOOK:g}× per learner, with bursts of {BURST:g}× the average when the instructor says "
        '"run it now" (assumptions, not measurements). Memory: the hub plus every learner\'s peak (one kernel each: '
        "a tab's kernel shuts down when it closes), plus 10 %; it does not depend on how the room works.",
    ]
    return "\n\n".join(paragraphs)


def replace_between_markers(path: Path, text: str) -> None:
    content = path.read_text(encoding="utf-8")
    start, end = MARKERS
    if start not in content:
        raise SystemExit(f"{path} has no {start} … {end} block to write the table into")
    before, rest = content.split(start, 1)
    after = rest.split(end, 1)[1]
    path.write_text(f"{before}{start}\n{text}\n{end}{after}", encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--learner-cpus", type=int, default=1, help="CPUs and threads per learner (default 1)")
    parser.add_argument(
        "--from-artifact", action="store_true", help="no new run: rebuild from artifacts/workshop_load.json"
    )
    parser.add_argument("--write", action="store_true", help="write the capacity file and the tables")
    arguments = parser.parse_args(argv)
    out = TOP / "artifacts" / "workshop_load.json"
    if arguments.from_artifact:
        result = json.loads(out.read_text(encoding="utf-8"))
        result["capacity"] = capacity(result["rounds"], result["learner_cpus"])
        return publish(result, arguments.write)
    if os.geteuid() != 0 or not all(1 <= n <= 8 for n in arguments.learners) or 1 not in arguments.learners:
        raise SystemExit("run as root (each learner is a system user), with 1 to 8 learners per round, 1 included")
    base = Path(tempfile.mkdtemp(prefix="course-hub-load-"))
    base.chmod(0o755)
    port = 18000 + secrets.randbelow(2000) * 3
    password = secrets.token_urlsafe(12)
    total_gb = os.sysconf("SC_PHYS_PAGES") * PAGE / 1e9
    env = {**os.environ, "COURSE_HUB_DIR": str(base / "state"), "COURSE_HUB_PASSWORD": password}
    command = [sys.executable, str(TOP / "tools" / "workshop_hub.py"), "--port", str(port),
               "--learner-memory", f"{total_gb:.0f}", "--learner-cpus", str(arguments.learner_cpus)]  # fmt: skip
    log = (base / "hub.log").open("wb")
    hub = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    rounds = []
    try:
        workshop_hub.wait_until_up(f"http://127.0.0.1:{port}", hub, timeout=120)
        for count in arguments.learners:
            print(f"workshop load: {count} learner(s) through {', '.join(NOTEBOOKS)} ...", flush=True)
            rounds.append(run_round(f"http://127.0.0.1:{port}", password, count, base / "state" / "private"))
            print(f"  {rounds[-1]['elapsed_s']:.0f} s", flush=True)
    finally:
        subprocess.run([*command[:2], "stop"], env=env, check=False)
        hub.wait(timeout=60)
        subprocess.run([*command[:2], "remove-learners"], env=env, check=False)
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.machine(),
    )
    machine = f"{os.cpu_count()} CPU cores ({cpu_model}), {total_gb:.0f} GB, Python {platform.python_version()}"
    result = {"date": date.today().isoformat(), "machine": machine, "learner_cpus": arguments.learner_cpus,
              "rounds": rounds, "capacity": capacity(rounds, arguments.learner_cpus)}  # fmt: skip
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return publish(result, arguments.write)


def publish(result: dict, write: bool) -> int:
    print(table(result))
    if write:
        summary = {key: result[key] for key in ("date", "machine", "learner_cpus")} | result["capacity"]
        summary["per_learner_measured"] = [
            {"learners": r["learners"], **{k: lr[k] for k in ("wall_s", "cpu_s", "peak_rss_gb", "peak_pss_gb")}}
            for r in result["rounds"] for lr in r["per_learner"]
        ]  # fmt: skip
        workshop_hub.CAPACITY.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        for path in (TOP / "README.md", TOP / "docs" / "instructor_guide.md"):
            replace_between_markers(path, table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
