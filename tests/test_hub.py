"""`./course hub` for a workshop room: sign-in, isolation, limits, a private copy, stop (loopback only).

One hub for the whole module, started as `./course hub` starts it (tools/workshop_hub.py), with two
learners who act as browsers do (tools/hub_client.py). The isolation tests need root (as on a
rented VM, the hub makes a system user per learner): elsewhere they skip, under CI they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import workshop_hub  # from tools/ (pytest's pythonpath, pyproject.toml)
from browser_lookup import in_ci, launched_chromium
from hub_client import Learner
from tornado.httpclient import HTTPClientError
from tornado.websocket import websocket_connect

TOP = Path(__file__).parent.parent
PRIVATE_FILES = ("secrets.json", "settings.json", "admin_password", "cookie_secret", "jupyterhub.sqlite")


def free_port_block(size: int = 3) -> int:
    """A port P with P .. P+size-1 free on loopback (the hub, its API and the proxy's API)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + size < 65535 and all(_free(port + offset) for offset in range(size)):
            return int(port)
    raise RuntimeError("no block of free ports on loopback")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Hub:
    url: str
    state: Path
    password: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    options: tuple[str, ...] = ()

    def remove_learners(self) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(TOP / "tools" / "workshop_hub.py"), "remove-learners"]
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "COURSE_HUB_DIR": str(self.state), "COURSE_HUB_PASSWORD": self.password}

    def start(self) -> None:
        command = [sys.executable, str(TOP / "tools" / "workshop_hub.py"), "--port", str(self.port), *self.options]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            workshop_hub.wait_until_up(self.url, self.process, timeout=90)
        except (OSError, RuntimeError) as error:
            pytest.fail(f"the hub did not answer ({error}); its log:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(TOP / "tools" / "workshop_hub.py"), "stop"]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)
        if self.process:
            self.process.wait(timeout=30)
        return done

    def learner(self, name: str) -> Learner:
        learner = Learner(self.url, name)
        response = learner.sign_in(self.password)
        assert response.status_code == 302, f"{name} could not sign in with the room password: {response.status_code}"
        return learner


def needs_root() -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "the hub isolates learners only as root (it makes a system user per learner)"
    elif not (shutil.which("configurable-http-proxy") or shutil.which("npm")):
        reason = "no Node.js: the hub's proxy is an npm package (apt install nodejs npm)"
    if reason:
        if in_ci():
            pytest.fail(f"CI is set and {reason}")
        pytest.skip(f"hub tests skipped: {reason}")


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    needs_root()
    # Under /tmp, not pytest's 0700 folders: learners' users must reach their interpreter and data.
    base = Path(tempfile.mkdtemp(prefix="course-hub-test-"))
    base.chmod(0o755)
    port = free_port_block()
    running = Hub(f"http://127.0.0.1:{port}", base / "state", secrets.token_urlsafe(12), port, base / "hub.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()
        running.remove_learners()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def alice(hub: Hub) -> Learner:
    return hub.learner("alice")


@pytest.fixture(scope="module")
def bob(hub: Hub) -> Learner:
    return hub.learner("Bob")  # hub names are case-insensitive: "bob", system user wn-bob


async def connect(url: str) -> None:
    (await websocket_connect(url)).close()


def run(learner: Learner, code: str) -> str:
    """Run `code` in a fresh kernel of the learner's server; its printed output."""
    kernel = learner.open_kernel("notebooks/00_start_here.ipynb")
    try:
        return learner.execute(kernel, [code], label=f"{learner.name}'s kernel")[0]
    finally:
        learner.close_kernel(kernel)


def test_a_wrong_password_is_refused(hub: Hub) -> None:
    refused = Learner(hub.url, "mallory").sign_in(hub.password + "x")
    assert refused.status_code == 403, f"a wrong room password got {refused.status_code}, expected 403"
    assert "Invalid username or password" in refused.text
    with pytest.raises(KeyError):
        pwd.getpwnam("wn-mallory")  # no user made for a refused sign-in
    odd = Learner(hub.url, "a.b").sign_in(hub.password)
    assert odd.status_code == 403, f"a name outside {workshop_hub.USERNAME_PATTERN} got {odd.status_code}"


def test_a_request_without_sign_in_reaches_no_learner(hub: Hub, alice: Learner) -> None:
    for path in ("api/contents/notebooks", "files/notebooks/00_start_here.ipynb", "lab", "api/kernels"):
        response = requests.get(f"{hub.url}/user/alice/{path}", allow_redirects=True, timeout=30)
        assert "00_start_here" not in response.text, f"/user/alice/{path} showed alice's files without a sign-in"
        refused = response.status_code == 403 or (response.status_code == 200 and "/hub/login" in response.url)
        assert refused, f"/user/alice/{path} without a sign-in: {response.status_code} at {response.url}"
    # A kernel's websocket, the way to run code: alice's own kernel, reached without her token.
    kernel = alice.open_kernel("notebooks/00_start_here.ipynb")
    try:
        url = f"{hub.url.replace('http', 'ws', 1)}/user/alice/api/kernels/{kernel}/channels"
        with pytest.raises(HTTPClientError) as refused_socket:
            asyncio.run(connect(url))
        assert refused_socket.value.code in (302, 403), f"an unauthenticated websocket got {refused_socket.value.code}"
    finally:
        alice.close_kernel(kernel)


def test_a_learner_cannot_open_another_learners_server(hub: Hub, alice: Learner, bob: Learner) -> None:
    page = alice.session.get(f"{hub.url}/user/bob/lab", timeout=30)
    assert page.status_code == 403, f"alice opening bob's JupyterLab got {page.status_code}, expected 403"
    assert "do not have permission" in page.text
    # Accepting the authorization page anyway: post what its form would send.
    authorize = re.search(r"/hub/api/oauth2/authorize\?[^\"' ]+", page.url)
    assert authorize, f"bob's server sent alice to {page.url}, not to the hub's authorization page"
    query = dict(parse_qsl(urlsplit(page.url).query))
    accepted = alice.session.post(
        f"{hub.url}/hub/api/oauth2/authorize",
        data={**query, "scopes": "access:servers!server=bob/", "_xsrf": alice.xsrf},
        allow_redirects=False,
        timeout=30,
    )
    # The hub hands out a code, but will not turn it into a token with a scope alice does not
    # hold, so bob's server cannot sign her in (it answers 502 at its callback).
    assert accepted.status_code == 302 and "/user/bob/oauth_callback" in accepted.headers["location"], (
        f"accepting: {accepted.status_code} {accepted.headers.get('location')}"
    )
    callback = alice.session.get(hub.url + accepted.headers["location"], allow_redirects=False, timeout=30)
    assert callback.status_code >= 500 and "00_start_here" not in callback.text, (
        f"bob's server's callback with alice's code: {callback.status_code} {callback.headers.get('location')}"
    )
    assert "Not assigning requested scopes" in hub.log.read_text(), "the hub did not refuse the scope"
    again = alice.session.get(f"{hub.url}/user/bob/lab", timeout=30)
    assert again.status_code == 403 and "00_start_here" not in again.text, "after accepting, alice reached bob's lab"
    for path in ("contents/notebooks", "kernels"):
        response = alice.server_api("GET", path, user="bob")
        assert response.status_code == 403, f"alice's token on bob's {path}: {response.status_code}, expected 403"


def test_kernels_run_as_two_different_unprivileged_users(alice: Learner, bob: Learner) -> None:
    code = "import os, pwd; print(os.getuid(), pwd.getpwuid(os.getuid()).pw_name, os.path.expanduser('~'))"
    alice_uid, alice_user, alice_home = run(alice, code).split()
    bob_uid, bob_user, bob_home = run(bob, code).split()
    assert (alice_user, bob_user) == ("wn-alice", "wn-bob")
    # Kernels and servers talk over files in the private home, not over TCP any learner can reach.
    transport = "from ipykernel.connect import get_connection_info as info; print(info(unpack=True)['transport'])"
    assert run(alice, transport).strip() == "ipc"
    assert alice_uid != bob_uid and "0" not in (alice_uid, bob_uid), f"uids {alice_uid} and {bob_uid}"
    tries = f"""
for attempt in (lambda: os.listdir({bob_home!r}), lambda: open({bob_home!r} + '/notebooks/00_start_here.ipynb').read()):
    try:
        attempt()
        print('read')
    except PermissionError:
        print('refused')
"""
    assert run(alice, "import os\n" + tries).split() == ["refused", "refused"], "alice's kernel read bob's home"


def test_no_learner_reads_the_hubs_state(hub: Hub, alice: Learner) -> None:
    private = hub.state / "private"
    paths = [str(private), *(str(private / name) for name in PRIVATE_FILES)]
    assert all((private / name).exists() for name in PRIVATE_FILES)
    code = f"""
import os
for path in {paths!r}:
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, 'rb').read(1)
        print('read', path)
    except PermissionError:
        print('refused', path)
print('environment', repr(dict(os.environ)))
"""
    output = run(alice, code)
    assert "read " not in output, f"alice's kernel could read the hub's state:\n{output}"
    stored = json.loads((private / "secrets.json").read_text())
    environment = output.split("environment", 1)[1]
    cookie_secret = (private / "cookie_secret").read_text().strip()
    for secret in (stored["admin_password"], cookie_secret):
        assert secret not in output, "a hub secret is in alice's kernel's environment"
        assert secret not in hub.log.read_text(), "a hub secret is in the hub's output, which learners' servers share"
    assert stored["room_password"] not in environment, "the room password is in alice's environment"
    assert "COURSE_HUB" not in environment and "CONFIGPROXY_AUTH_TOKEN" not in environment


def test_each_learner_is_held_to_the_limits(hub: Hub, alice: Learner) -> None:
    settings = json.loads((hub.state / "private" / "settings.json").read_text())
    version, why = workshop_hub.cgroup_version()
    if version is None:
        pytest.skip(f"limits cannot be enforced on this machine: {why}")
    output = run(alice, "import os; print(open('/proc/self/cgroup').read()); print(os.environ['OMP_NUM_THREADS'])")
    assert f"/{workshop_hub.CGROUP_GROUP}/wn-alice" in output, f"alice's kernel is not in her cgroup:\n{output}"
    if version == "v1":
        limit = Path(f"/sys/fs/cgroup/memory/{workshop_hub.CGROUP_GROUP}/wn-alice/memory.limit_in_bytes").read_text()
    else:
        limit = Path(f"/sys/fs/cgroup/{workshop_hub.CGROUP_GROUP}/wn-alice/memory.max").read_text()
    assert abs(int(limit) - settings["memory_bytes"]) < 1 << 20, (
        f"memory limit {limit}, expected {settings['memory_bytes']}"
    )
    assert output.split()[-1] == str(max(1, int(settings["cpus"])))


def test_a_notebooks_kernel_shuts_down_when_its_tab_closes(hub: Hub, alice: Learner) -> None:
    response = alice.session.get(
        f"{hub.url}/user/alice/lab/api/settings/@jupyterlab/notebook-extension:tracker",
        headers={"Authorization": f"token {alice.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.status_code
    default = response.json()["schema"]["properties"]["kernelShutdown"]["default"]
    assert default is True, f"JupyterLab in alice's server keeps kernels after their tab closes ({default})"


def test_each_learner_runs_notebook_00_through_the_hub(alice: Learner, bob: Learner) -> None:
    with ThreadPoolExecutor(2) as pool:
        times = list(pool.map(lambda learner: learner.run_notebook("notebooks/00_start_here.ipynb"), (alice, bob)))
    assert all(seconds < 120 for seconds in times), f"notebook 00 took {times} s through the hub"


def test_an_edit_survives_a_restart_of_the_server_and_of_the_hub(hub: Hub, alice: Learner) -> None:
    path = "notebooks/00_start_here.ipynb"
    notebook = alice.contents(path)["content"]
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "alice's own note", "id": "alice"})
    alice.save_notebook(path, notebook)
    alice.stop_server()
    alice.wait_for_server()
    assert alice.contents(path)["content"]["cells"][-1]["source"] == "alice's own note"
    stopped = hub.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    hub.start()
    again = hub.learner("alice")
    assert again.contents(path)["content"]["cells"][-1]["source"] == "alice's own note", "the restart lost the edit"


def test_jupyterlab_opens_on_00_after_the_login_page(hub: Hub) -> None:
    with launched_chromium() as chromium:
        page = chromium.new_page()  # type: ignore[attr-defined]
        page.goto(f"{hub.url}/hub/login")
        page.fill("#username_input", "carol")
        page.fill("#password_input", hub.password)
        page.click("#login_submit")
        page.wait_for_url(re.compile(r".*/user/carol/lab.*"), timeout=90_000)
        tab = page.locator(".lm-TabBar-tab.jp-mod-current >> text=00_start_here.ipynb")
        tab.wait_for(timeout=90_000)
        assert "00_start_here.ipynb" in page.url


def test_stop_leaves_no_process_and_removes_the_learners(hub: Hub) -> None:
    private = hub.state / "private"
    names = workshop_hub.learners(private)
    assert set(names) >= {"wn-alice", "wn-bob", "wn-carol"}, names
    pids = [int((private / name).read_text()) for name in ("jupyterhub.pid", "proxy.pid")]
    # Processes that try to outlive their kernel: a new session, and one hidden from /proc's owner.
    escapes = run(
        hub.learner("alice"),
        "import subprocess\n"
        "print(subprocess.Popen(['sleep', '600'], start_new_session=True).pid)\n"
        "hidden = 'import ctypes, time; ctypes.CDLL(None).prctl(4, 0); time.sleep(600)'\n"
        "print(subprocess.Popen(['python3', '-c', hidden], start_new_session=True).pid)",
    )
    pids += [int(pid) for pid in escapes.split()]
    stopped = hub.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not [pid for pid in pids if workshop_hub.process_alive(pid)], "the hub or its proxy still runs"
    assert workshop_hub.learner_processes(names) == [], "a learner's process outlived the hub"
    assert not [path for path in workshop_hub.course_cgroup_roots() if path.exists()], "a cgroup was left"
    removed = hub.remove_learners()
    assert "removed 3" in removed.stdout, removed.stdout + removed.stderr
    for name in names:
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
        assert not Path("/home", name).exists()


def test_first_use_passwords_make_each_name_its_owners(hub: Hub) -> None:
    """The option: no room password; the first sign-in under a name sets that name's password."""
    needs_root()
    other = Hub(hub.url.rsplit(":", 1)[0] + f":{free_port_block()}", hub.state.parent / "first-use", "", 0, hub.log)
    other.port = int(other.url.rsplit(":", 1)[1])
    other.options = ("--first-use-passwords",)
    other.start()
    try:
        first = Learner(other.url, "dana").sign_in("danas-own-password")
        assert first.status_code == 302, f"dana's first sign-in got {first.status_code}"
        taken = Learner(other.url, "dana").sign_in("someone-elses-guess")
        assert taken.status_code == 403, f"a second password for dana got {taken.status_code}, expected 403"
        assert Learner(other.url, "dana").sign_in("danas-own-password").status_code == 302
    finally:
        other.stop()
        assert "removed 1" in other.remove_learners().stdout
