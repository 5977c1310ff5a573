"""`./course hub`: one JupyterHub for a workshop room, on the machine it runs on.

    ./course hub [--ip 0.0.0.0] [--port 8000] [--ssl-cert F --ssl-key F] [--first-use-passwords]
    ./course hub stop              stops the hub, the proxy and every learner's server and kernel
    ./course hub remove-learners   after `stop`: deletes the learners' system users and their homes

Sign-in is any name plus the room password (COURSE_HUB_PASSWORD, or one generated and printed);
the instructor signs in as "instructor" with a password of their own. As root, each learner runs
as their own system user "wn-<name>" with a private home, a private copy of notebooks/ made once,
Fashion-MNIST shared read-only, and memory and CPU limits from docs/hub/workshop_capacity.json
enforced by cgroups where the system allows it. docs/instructor_guide.md, "One hub for the room".

State lives in one folder, COURSE_HUB_DIR (default /srv/why-normalize-hub as root, else
artifacts/hub): private/ (mode 0700: settings, passwords, cookie secret, database, pid files)
and, readable by learners, their interpreter (learner-env/) and the data (data/).
hub/jupyterhub_config.py reads private/settings.json and private/secrets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
VENV = TOP / ".venv"
VENV_SITE = VENV / "lib" / VERSION / "site-packages"
CAPACITY = TOP / "docs" / "hub" / "workshop_capacity.json"  # docs/results/ is the claims ledger's
PROXY_PACKAGE = "configurable-http-proxy@5.3.0"
USER_PREFIX = "wn-"  # keeps learners' system users apart from the machine's own accounts
# Names learners may sign in with (after JupyterHub lower-cases them): each maps to exactly one
# system user, and no two names to the same one; "wn-" + 27 characters fits useradd's 32.
USERNAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,26}"
ADMIN = "instructor"
KERNEL_IDLE_SECONDS = 20 * 60  # an idle kernel goes after 20 min (its notebook's variables with it)
SERVER_IDLE_SECONDS = 60 * 60  # an idle server goes after 1 h (files stay; signing in starts it again)
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_GROUP = "why-normalize"
CPU_PERIOD_US = 100_000
PIDS_MAX = 512  # processes and threads per learner: a server, a few kernels, a terminal; no fork bomb


def fail(message: str) -> SystemExit:
    return SystemExit(f"course hub: {message}")


def state_dir() -> Path:
    if os.environ.get("COURSE_HUB_DIR"):
        return Path(os.environ["COURSE_HUB_DIR"]).resolve()
    return Path("/srv/why-normalize-hub") if os.geteuid() == 0 else TOP / "artifacts" / "hub"


def private_dir() -> Path:
    return state_dir() / "private"


def system_name(hub_name: str) -> str:
    """The learner's system user: "wn-" + the hub name, which USERNAME_PATTERN keeps one-to-one."""
    if not re.fullmatch(USERNAME_PATTERN, hub_name):
        raise ValueError(f"{hub_name!r} is not a learner name the hub accepts ({USERNAME_PATTERN})")
    return USER_PREFIX + hub_name


def readable_by_others(path: Path) -> bool:
    """Every folder from / down to `path` can be entered by any user, and `path` read."""
    path = path.resolve()
    for part in [*reversed(path.parents), path]:
        mode = part.stat().st_mode
        if not mode & stat.S_IXOTH or (part == path and not mode & stat.S_IROTH):
            return False
    return True


# --- Limits: cgroup v2 (a systemd VM: Ubuntu 22.04+, Debian 12) or v1, written directly -------------


def cgroup_version(root: Path = CGROUP_ROOT) -> tuple[str | None, str]:
    """("v2" | "v1" | None, why): whether memory and CPU limits can be enforced here."""
    if os.geteuid() != 0:
        return None, "the hub does not run as root"
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        have = set(controllers.read_text().split())
        missing = {"memory", "cpu"} - have
        if missing:
            return None, f"cgroup v2 without the {' and '.join(sorted(missing))} controller"
        return ("v2", "cgroup v2") if os.access(root, os.W_OK) else (None, f"{root} is read-only")
    if all((root / name).is_dir() and os.access(root / name, os.W_OK) for name in ("memory", "cpu")):
        return "v1", "cgroup v1"
    return None, f"no writable memory and cpu cgroups under {root}"


def learner_cgroups(name: str, memory_bytes: int, cpus: float, root: Path = CGROUP_ROOT) -> list[Path]:
    """Create the learner's cgroups with the limits; return the cgroup.procs files to join them."""
    version, why = cgroup_version(root)
    quota = max(1000, int(cpus * CPU_PERIOD_US))
    if version == "v2":
        group = root / CGROUP_GROUP
        learner = group / name
        learner.mkdir(parents=True, exist_ok=True)
        pids = "pids" in (root / "cgroup.controllers").read_text().split()
        for parent in (root, group):  # a child can only limit what its parents delegate
            (parent / "cgroup.subtree_control").write_text("+memory +cpu" + (" +pids" if pids else ""))
        if pids:
            (learner / "pids.max").write_text(str(PIDS_MAX))
        (learner / "memory.max").write_text(str(memory_bytes))
        if (learner / "memory.swap.max").exists():
            (learner / "memory.swap.max").write_text("0")
        (learner / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        return [learner / "cgroup.procs"]
    if version == "v1":
        memory = root / "memory" / CGROUP_GROUP / name
        cpu = root / "cpu" / CGROUP_GROUP / name
        for folder in (memory, cpu):
            folder.mkdir(parents=True, exist_ok=True)
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(quota))
        joined = [memory / "cgroup.procs", cpu / "cgroup.procs"]
        if (root / "pids").is_dir() and os.access(root / "pids", os.W_OK):
            pids = root / "pids" / CGROUP_GROUP / name
            pids.mkdir(parents=True, exist_ok=True)
            (pids / "pids.max").write_text(str(PIDS_MAX))
            joined.append(pids / "cgroup.procs")
        return joined
    raise RuntimeError(f"limits cannot be enforced here: {why}")


def course_cgroup_roots(root: Path = CGROUP_ROOT) -> list[Path]:
    """The course's cgroup folders: one under cgroup v2, one per controller under v1."""
    return [root / CGROUP_GROUP, *(root / controller / CGROUP_GROUP for controller in ("memory", "cpu", "pids"))]


def cgroup_processes(root: Path = CGROUP_ROOT) -> set[int]:
    """Every process in the course's cgroups (whatever user it now runs as)."""
    found: set[int] = set()
    for base in course_cgroup_roots(root):
        for procs in base.glob("*/cgroup.procs"):
            try:
                found.update(int(line) for line in procs.read_text().split())
            except OSError:
                pass
    return found


def remove_cgroups(root: Path = CGROUP_ROOT) -> None:
    """Remove the course's (now empty) cgroups; a folder still holding a process stays."""
    for base in course_cgroup_roots(root):
        if not base.is_dir():
            continue
        for folder in [*sorted(p for p in base.iterdir() if p.is_dir()), base]:
            try:
                folder.rmdir()
            except OSError:
                pass


# --- What learners read: their interpreter, the data ---------------------------------------------------


def learner_singleuser(state: Path) -> Path:
    """The jupyterhub-singleuser a learner's user can start.

    The course's .venv when its interpreter and packages are readable by everyone; else (on this
    kind of machine the default python3 lives under /root, mode 0700) a venv of the system's
    python3.X whose packages are the .venv's, read in place through a .pth file."""
    if os.geteuid() != 0 or (
        readable_by_others(Path(sys.base_prefix) / "lib" / VERSION) and readable_by_others(VENV_SITE)
    ):
        return VENV / "bin" / "jupyterhub-singleuser"
    if not readable_by_others(VENV_SITE):
        raise fail(
            f"learners' users cannot read {VENV_SITE}: "
            "put the repository where every user can read it (e.g. /srv or /opt)."
        )
    system = Path(f"/usr/bin/{VERSION}")
    if not system.exists():
        raise fail(
            f"learners' users cannot start {sys.base_prefix}'s Python and there is no {system}: "
            f"install {VERSION} (apt install {VERSION}-venv)."
        )
    env = state / "learner-env"
    python = env / "bin" / "python"
    if not python.exists():
        subprocess.run([str(system), "-m", "venv", "--without-pip", str(env)], check=True)
    site = env / "lib" / VERSION / "site-packages"
    (site / "course-env.pth").write_text(f"import site; site.addsitedir({str(VENV_SITE)!r})\n", encoding="utf-8")
    singleuser = env / "bin" / "jupyterhub-singleuser"
    singleuser.write_text(f"#!{python}\nfrom jupyterhub.singleuser import main\n\nraise SystemExit(main())\n")
    singleuser.chmod(0o755)
    return singleuser


def shared_data(state: Path) -> Path:
    """Fashion-MNIST for every learner, read-only: where it is if everyone can read it, else a copy."""
    from course_utils.data import locate_fashion_mnist

    source = Path(locate_fashion_mnist().root)
    if os.geteuid() != 0 or readable_by_others(source / "FashionMNIST" / "raw"):
        return source
    target = state / "data"
    if not (target / "FashionMNIST" / "raw").exists():
        shutil.copytree(source / "FashionMNIST" / "raw", target / "FashionMNIST" / "raw")
    for path in [target, *target.rglob("*")]:
        os.chown(path, 0, 0)
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def proxy() -> str:
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    prefix = VENV / "hub-proxy"
    local = prefix / "node_modules" / ".bin" / "configurable-http-proxy"
    if not local.exists():
        if not shutil.which("npm"):
            raise fail(
                "needs configurable-http-proxy, a Node.js package: install Node.js and npm "
                "(apt install nodejs npm; brew install node), then run this again."
            )
        print(f"course hub: installing {PROXY_PACKAGE} with npm into {prefix}")
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix), PROXY_PACKAGE],
            check=True,
        )
    return str(local)


def learner_limits(arguments: argparse.Namespace) -> tuple[float, float]:
    """(GB, CPUs) per learner: the arguments, else the measured capacity table's."""
    measured = json.loads(CAPACITY.read_text(encoding="utf-8"))["per_learner_limit"] if CAPACITY.exists() else {}
    memory = arguments.learner_memory or measured.get("memory_gb")
    cpus = arguments.learner_cpus or measured.get("cpus")
    if not memory or not cpus:
        raise fail(f"no per-learner limits: {CAPACITY} is missing; give --learner-memory GB and --learner-cpus N.")
    return float(memory), float(cpus)


def write_secrets(private: Path, first_use: bool) -> dict[str, str]:
    path = private / "secrets.json"
    stored = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    room = os.environ.get("COURSE_HUB_PASSWORD") or stored.get("room_password") or secrets.token_urlsafe(9)
    if not first_use and len(room) < 8:
        raise fail("COURSE_HUB_PASSWORD must have at least 8 characters.")
    # JupyterHub asks for an admin password of at least 32 characters, unlike the room's.
    admin = os.environ.get("COURSE_HUB_ADMIN_PASSWORD") or stored.get("admin_password") or secrets.token_urlsafe(32)
    if len(admin) < 32 or admin == room:
        raise fail("COURSE_HUB_ADMIN_PASSWORD must have at least 32 characters and differ from the room password.")
    values = {"room_password": room, "admin_password": admin}
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(values), encoding="utf-8")
    return values


def network_warning(ip: str, ssl_cert: str | None) -> str | None:
    """What to say about listening on `ip`: nothing on loopback or with HTTPS."""
    if ip in ("127.0.0.1", "localhost", "::1") or ssl_cert:
        return None
    return f"listening on {ip} without --ssl-cert/--ssl-key: passwords cross the room's network in clear."


def start(arguments: argparse.Namespace) -> int:
    state = state_dir()
    private = private_dir()
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    private.mkdir(exist_ok=True)
    private.chmod(0o700)
    if running_hub(private):
        raise fail(f"a hub is already running from {state}: `./course hub stop` first.")
    as_root = os.geteuid() == 0
    if not as_root:
        print(
            "course hub: not running as root, so every learner's server runs as this user: "
            "learners are not isolated from each other."
        )
    warning = network_warning(arguments.ip, arguments.ssl_cert)
    if warning:
        print(f"course hub: warning: {warning}")
    memory_gb, cpus = learner_limits(arguments)
    version, why = cgroup_version()
    if version:
        print(f"course hub: each learner limited to {memory_gb:g} GB and {cpus:g} CPU(s) ({why}).")
    else:
        print(f"course hub: limits of {memory_gb:g} GB and {cpus:g} CPU(s) per learner NOT enforced here: {why}.")
    settings = {
        "ip": arguments.ip,
        "port": arguments.port,
        "hub_port": arguments.port + 1,
        "proxy_api_port": arguments.port + 2,
        "proxy": proxy(),
        "python": sys.executable,
        "tools": str(TOP / "tools"),
        "singleuser": str(learner_singleuser(state)),
        "notebooks": str(TOP / "notebooks"),
        "course_prefix": str(VENV),  # its share/ and etc/jupyter: JupyterLab, widgets, settings
        "data": str(shared_data(state)),
        "learners_file": str(private / "learners.txt"),
        "first_use_passwords": arguments.first_use_passwords,
        "memory_bytes": int(memory_gb * 1e9),
        "cpus": cpus,
        "cgroups": bool(version),
        "kernel_idle": KERNEL_IDLE_SECONDS,
        "server_idle": SERVER_IDLE_SECONDS,
        "ssl_cert": arguments.ssl_cert,
        "ssl_key": arguments.ssl_key,
    }
    (private / "settings.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
    (private / "settings.json").chmod(0o600)
    passwords = write_secrets(private, arguments.first_use_passwords)
    host = arguments.ip if arguments.ip != "0.0.0.0" else os.uname().nodename
    address = f"{'https' if arguments.ssl_cert else 'http'}://{host}:{arguments.port}"
    if arguments.first_use_passwords:
        print(f"course hub: give the room {address}: each learner picks a name and a password at first sign-in.")
    else:
        print(f"course hub: give the room {address} and the room password: {passwords['room_password']}")
    if arguments.first_use_passwords:
        print(f"course hub: sign in as {ADMIN!r} now: the first sign-in under a name sets its password.")
    else:
        # Not printed: learners' servers must never see it, and terminals and logs get copied around.
        admin_file = private / "admin_password"
        admin_file.touch(mode=0o600)
        admin_file.write_text(passwords["admin_password"] + "\n", encoding="utf-8")
        print(f"course hub: instructor (admin) sign-in: name {ADMIN!r}, password in {admin_file} (root only)")
    print(f"course hub: `./course hub stop` or Ctrl-C stops it; state in {state}")
    sys.stdout.flush()
    hub_env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_HUB_")}
    hub_env["COURSE_HUB_STATE"] = str(private)
    process = subprocess.Popen(
        [str(VENV / "bin" / "jupyterhub"), "-f", str(TOP / "hub" / "jupyterhub_config.py")],
        cwd=private,
        env=hub_env,
        preexec_fn=lambda: os.umask(0o077),  # the database, logs, pid files: the hub's alone
    )
    try:
        code = process.wait()
    except KeyboardInterrupt:  # the hub got Ctrl-C too and is stopping: wait for it
        code = process.wait()
    finish(private)
    return code


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except (FileNotFoundError, ProcessLookupError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_hub(private: Path) -> int | None:
    """The pid of the hub started from this state folder, if it still runs (a stale pid file after a
    crash or reboot may name another process: check its command line)."""
    pid_file = private / "jupyterhub.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    try:
        command = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None if not process_alive(pid) else pid  # no /proc (macOS): trust the pid file
    return pid if b"jupyterhub" in command else None


def learners(private: Path) -> list[str]:
    path = private / "learners.txt"
    return sorted(set(path.read_text().split())) if path.exists() else []


def learner_processes(names: list[str]) -> list[int]:
    """Processes still running as any of the learners' system users."""
    uids = set()
    for name in names:
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            pass
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:  # the real uid (a non-dumpable process's /proc folder belongs to root)
                status = (entry / "status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
            if uid in uids:
                found.append(int(entry.name))
    return found


def finish(private: Path) -> None:
    """After the hub: no learner process left (a kernel that outlived its server), no cgroup."""
    if os.geteuid() == 0:
        names = learners(private)
        for _ in range(20):  # again until none is left: a process may fork while we kill
            left = set(learner_processes(names)) | cgroup_processes()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        else:
            print(f"course hub: could not stop the learners' processes {sorted(left)}", file=sys.stderr)
        remove_cgroups()


def stop(_: argparse.Namespace) -> int:
    private = private_dir()
    pid = running_hub(private)
    if pid is None:
        print(f"course hub: no hub is running from {state_dir()}")
        finish(private)
        return 0
    os.kill(pid, signal.SIGTERM)  # the hub stops the learners' servers, the culler and the proxy
    deadline = time.monotonic() + 60
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if process_alive(pid):
        print(f"course hub: the hub (pid {pid}) is still stopping after 60 s")
        return 1
    finish(private)
    print("course hub: stopped")
    return 0


def remove_learners(_: argparse.Namespace) -> int:
    private = private_dir()
    if running_hub(private):
        raise fail("the hub is running: `./course hub stop` first.")
    if os.geteuid() != 0:
        raise fail("only root made learners' users, so only root can remove them.")
    names = learners(private)
    failed = []
    for name in names:
        done = subprocess.run(["userdel", "--remove", name], capture_output=True, text=True, check=False)
        # 12: the home could not be removed entirely; 6: no such user (already gone)
        if done.returncode not in (0, 6) or Path("/home", name).exists():
            failed.append(f"{name} ({done.stderr.strip() or 'home left'})")
    kept = [entry.split()[0] for entry in failed]
    (private / "learners.txt").write_text("".join(name + "\n" for name in kept), encoding="utf-8")
    print(f"course hub: removed {len(names) - len(failed)} learners' users and homes (their notebooks with them)")
    if failed:
        print(f"course hub: could not remove {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """For scripts and tests: wait until the hub `process` started answers at `url`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/hub/api/", timeout=2).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the hub exited with code {process.returncode} before answering") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./course hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", choices=("start", "stop", "remove-learners"), default="start")
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ssl-cert", help="certificate file, for HTTPS")
    parser.add_argument("--ssl-key", help="its private key file")
    parser.add_argument(
        "--first-use-passwords",
        action="store_true",
        help="each learner sets a password at first sign-in (instead of one room password)",
    )
    parser.add_argument("--learner-memory", type=float, help="GB per learner (default: the measured table's)")
    parser.add_argument("--learner-cpus", type=float, help="CPUs per learner (default: the measured table's)")
    arguments = parser.parse_args(argv)
    if bool(arguments.ssl_cert) != bool(arguments.ssl_key):
        parser.error("give both --ssl-cert and --ssl-key, or neither")
    actions = {"start": start, "stop": stop, "remove-learners": remove_learners}
    return actions[arguments.action](arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
