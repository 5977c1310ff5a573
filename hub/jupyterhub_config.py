"""JupyterHub configuration for a workshop room: started by `./course hub` (tools/workshop_hub.py).

Every value comes from private/settings.json and private/secrets.json in the folder named by
COURSE_HUB_STATE, an environment variable of the hub alone: learners' servers get none of the
hub's environment.

As root, each learner runs as their own system user "wn-<name>" (created at first sign-in, home
0700) inside cgroups holding the per-learner memory and CPU limits, with a private copy of
notebooks/ made once. Not as root, every learner runs as the hub's user (the hub says so).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid

STATE = Path(os.environ["COURSE_HUB_STATE"])
SETTINGS = json.loads((STATE / "settings.json").read_text(encoding="utf-8"))
SECRETS = json.loads((STATE / "secrets.json").read_text(encoding="utf-8"))
sys.path.insert(0, SETTINGS["tools"])
import workshop_hub  # noqa: E402  (tools/, for the names and the cgroups)

AS_ROOT = os.geteuid() == 0
c = get_config()  # type: ignore[name-defined]  # noqa: F821  (JupyterHub provides it)

c.JupyterHub.ip = SETTINGS["ip"]
c.JupyterHub.port = SETTINGS["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = SETTINGS["hub_port"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{SETTINGS['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [SETTINGS["proxy"]]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.cookie_secret_file = str(STATE / "cookie_secret")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every learner's server
if SETTINGS["ssl_cert"]:
    c.JupyterHub.ssl_cert = SETTINGS["ssl_cert"]
    c.JupyterHub.ssl_key = SETTINGS["ssl_key"]

# Sign-in: by default any name plus the room password; the instructor has a password of their own.
if SETTINGS["first_use_passwords"]:
    c.JupyterHub.authenticator_class = "firstuseauthenticator.FirstUseAuthenticator"
    c.FirstUseAuthenticator.create_users = True
    c.FirstUseAuthenticator.dbm_path = str(STATE / "passwords.dbm")
    c.FirstUseAuthenticator.min_password_length = 8
else:
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = SECRETS["room_password"]
    c.SharedPasswordAuthenticator.admin_password = SECRETS["admin_password"]
c.Authenticator.username_pattern = f"^{workshop_hub.USERNAME_PATTERN}$"  # one system user per name
c.Authenticator.admin_users = {workshop_hub.ADMIN}
c.Authenticator.allow_all = True


class CourseSpawner(LocalProcessSpawner):  # type: ignore[misc]
    """LocalProcessSpawner running each learner as their own system user, in their cgroups."""

    cgroup_procs: list[Path] = []  # set before each start by prepare_learner

    @property
    def system_user(self) -> str:
        return workshop_hub.system_name(self.user.name) if AS_ROOT else pwd.getpwuid(os.geteuid()).pw_name

    def make_preexec_fn(self, name: str) -> Any:
        if not AS_ROOT:
            return None
        switch_user = set_user_setuid(self.system_user)
        procs = self.cgroup_procs

        def preexec() -> None:
            for path in procs:  # join the learner's cgroups before dropping root
                with open(path, "w") as handle:
                    handle.write(str(os.getpid()))
            switch_user()

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        home = self.home
        env.update(USER=self.system_user, HOME=str(home), SHELL="/bin/bash" if AS_ROOT else env.get("SHELL", "/bin/sh"))
        return env

    async def start(self) -> Any:
        started = await super().start()
        log = self.popen_kwargs.get("stdout")
        if hasattr(log, "close"):
            log.close()  # the server's process has its own copy
        return started

    @property
    def home(self) -> Path:
        if AS_ROOT:
            return Path(pwd.getpwnam(self.system_user).pw_dir)
        return STATE.parent / "learners" / self.user.name


def prepare_learner(spawner: CourseSpawner) -> None:
    """Before each start: the system user (first sign-in), the private home, notebooks/ if missing."""
    name = spawner.system_user
    if AS_ROOT:
        try:
            pwd.getpwnam(name)
        except KeyError:
            # No login shell: no ssh or su into the account, only the hub's servers (which start bash
            # for JupyterLab's terminals through SHELL).
            subprocess.run(
                ["useradd", "--create-home", "--user-group", "--shell", "/usr/sbin/nologin", name], check=True
            )
            with open(SETTINGS["learners_file"], "a", encoding="utf-8") as learners:
                learners.write(name + "\n")
        spawner.home.chmod(0o700)  # no other learner can list or read it
        spawner.cgroup_procs = (
            workshop_hub.learner_cgroups(name, SETTINGS["memory_bytes"], SETTINGS["cpus"])
            if SETTINGS["cgroups"]
            else []
        )
        # The server's output goes to a log only root reads, never to the hub's terminal or log.
        logs = STATE / "logs"
        logs.mkdir(mode=0o700, exist_ok=True)
        log = open(logs / f"{name}.log", "ab")  # closed in CourseSpawner.start, once the server has it
        spawner.popen_kwargs = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": subprocess.STDOUT}
    spawner.home.mkdir(parents=True, exist_ok=True)
    target = spawner.home / "notebooks"
    if not target.exists():  # copied once, never overwritten: edits survive restarts
        if AS_ROOT:  # copied by the learner's own user: root never writes into a learner's home
            command = ["cp", "-r", "--no-target-directory", SETTINGS["notebooks"], str(target)]
            subprocess.run(command, check=True, user=name, group=name, extra_groups=[])
        else:
            shutil.copytree(SETTINGS["notebooks"], target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    spawner.notebook_dir = str(spawner.home)


c.JupyterHub.spawner_class = CourseSpawner
c.Spawner.pre_spawn_hook = prepare_learner
c.Spawner.cmd = [SETTINGS["singleuser"]]
c.Spawner.default_url = "/lab/tree/notebooks/00_start_here.ipynb"
c.Spawner.env_keep = ["LANG", "LC_ALL"]  # nothing else of the hub's environment
c.Spawner.environment = {
    "COURSE_DATA_DIR": SETTINGS["data"],
    # The learners' interpreter may be another prefix than the course's .venv: point Jupyter at
    # the .venv's extensions and settings (JupyterLab, ipywidgets, the kernel-shutdown setting).
    "JUPYTER_PATH": f"{SETTINGS['course_prefix']}/share/jupyter",
    "JUPYTER_CONFIG_PATH": f"{SETTINGS['course_prefix']}/etc/jupyter",
    # JupyterLab's own folder there: its build and settings/overrides.json (tools/jupyterlab_settings.py).
    "JUPYTERLAB_DIR": f"{SETTINGS['course_prefix']}/share/jupyter/lab",
    # PyTorch would start one thread per core of the machine in every learner's kernel.
    "OMP_NUM_THREADS": str(max(1, int(SETTINGS["cpus"]))),
    "MKL_NUM_THREADS": str(max(1, int(SETTINGS["cpus"]))),
}
c.Spawner.mem_limit = SETTINGS["memory_bytes"]  # shown to the server; enforced by the cgroups above
c.Spawner.cpu_limit = SETTINGS["cpus"]
c.Spawner.http_timeout = 60
# A notebook's kernel shuts down when its tab closes (the .venv's JupyterLab setting, as in
# `./course start`), and a kernel idle for kernel_idle seconds is shut down by its server.
c.Spawner.args = [
    f"--MappingKernelManager.cull_idle_timeout={SETTINGS['kernel_idle']}",
    "--MappingKernelManager.cull_connected=True",  # an open but idle tab's kernel goes too
    "--MappingKernelManager.cull_interval=60",
    # Kernels talk to their server over files in the learner's private home, not over TCP on
    # loopback, where any other learner could subscribe to their output.
    "--KernelManager.transport=ipc",
]

# Idle servers are stopped by jupyterhub-idle-culler, a hub service. It ignores the SIGINT the hub
# stops services with, so the hub would wait 20 s for it: exit on SIGINT instead.
CULLER = (
    "import signal, sys; signal.signal(signal.SIGINT, lambda *_: sys.exit(0)); "
    "from jupyterhub_idle_culler import main; main()"
)
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }
]
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [SETTINGS["python"], "-c", CULLER, f"--timeout={SETTINGS['server_idle']}", "--cull-every=300"],
    }
]
