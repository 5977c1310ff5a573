"""A learner as a browser is, to a running `./course hub`: sign in, then run notebooks in their server.

Used by tests/test_hub.py and tools/workshop_load.py. Everything goes through the hub's public
address (its proxy): the sign-in form, the hub's REST API, the learner's server's REST API and its
kernel websocket, as JupyterLab uses them.

    learner = Learner("http://127.0.0.1:8000", "alice")
    learner.sign_in("room-password")       # starts alice's server, as the login page does
    learner.run_notebook("notebooks/00_start_here.ipynb")  # every code cell in order, then closes it
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class HubError(RuntimeError):
    """The hub or a learner's server answered something a browser would show as an error."""


@dataclass
class CellFailure(HubError):
    notebook: str
    cell: int
    error: str

    def __str__(self) -> str:
        return f"{self.notebook}: code cell {self.cell} failed: {self.error}"


@dataclass
class Learner:
    base: str  # the hub's address, e.g. http://127.0.0.1:8000
    name: str
    session: requests.Session = field(default_factory=requests.Session)
    token: str | None = None
    sessions: dict[str, str] = field(default_factory=dict)  # kernel id -> its session (an open tab)

    def sign_in(self, password: str, *, wait: float = 120.0) -> requests.Response:
        """Submit the login form; on success wait until the learner's server answers."""
        page = self.session.get(f"{self.base}/hub/login", timeout=30)
        page.raise_for_status()
        response = self.session.post(
            f"{self.base}/hub/login?next=",
            data={"username": self.name, "password": password, "_xsrf": self.session.cookies.get("_xsrf", "")},
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code != 302:
            return response  # refused: the login page again, with its message
        self.name = self.name.lower()  # as the hub normalizes it
        self.token = self.hub_api("POST", f"users/{self.name}/tokens", json={"note": "hub_client"})["token"]
        self.wait_for_server(wait)
        return response

    def hub_api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"token {self.token}"} if self.token else {"X-XSRFToken": self.xsrf}
        response = self.session.request(method, f"{self.base}/hub/api/{path}", headers=headers, timeout=60, **kwargs)
        if response.status_code >= 400:
            raise HubError(f"{method} /hub/api/{path}: {response.status_code} {response.text[:200]}")
        return response.json() if response.content else None

    @property
    def xsrf(self) -> str:
        return str(self.session.cookies.get("_xsrf", path="/hub/") or self.session.cookies.get("_xsrf") or "")

    def wait_for_server(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            server = self.hub_api("GET", f"users/{self.name}").get("servers", {}).get("", {})
            if server.get("ready"):
                return
            if not server.get("pending") and not server:
                self.hub_api("POST", f"users/{self.name}/server")
            if time.monotonic() > deadline:
                raise HubError(f"{self.name}'s server did not start within {timeout:.0f} s")
            time.sleep(0.25)

    def stop_server(self, timeout: float = 60.0) -> None:
        self.hub_api("DELETE", f"users/{self.name}/server")
        deadline = time.monotonic() + timeout
        while self.hub_api("GET", f"users/{self.name}").get("servers"):
            if time.monotonic() > deadline:
                raise HubError(f"{self.name}'s server did not stop within {timeout:.0f} s")
            time.sleep(0.25)

    def server_api(self, method: str, path: str, *, user: str | None = None, **kwargs: Any) -> requests.Response:
        """A request to a server's REST API (the learner's own unless `user` names another)."""
        headers = {"Authorization": f"token {self.token}"}
        url = f"{self.base}/user/{user or self.name}/api/{path}"
        return self.session.request(method, url, headers=headers, timeout=60, allow_redirects=False, **kwargs)

    def contents(self, path: str) -> dict[str, Any]:
        response = self.server_api("GET", f"contents/{path}")
        if response.status_code != 200:
            raise HubError(f"GET contents/{path}: {response.status_code}")
        return dict(response.json())

    def save_notebook(self, path: str, notebook: dict[str, Any]) -> None:
        response = self.server_api("PUT", f"contents/{path}", json={"type": "notebook", "content": notebook})
        if response.status_code not in (200, 201):
            raise HubError(f"PUT contents/{path}: {response.status_code} {response.text[:200]}")

    def open_kernel(self, path: str) -> str:
        """What opening a notebook tab does: a session, and its kernel's id."""
        response = self.server_api(
            "POST", "sessions", json={"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}}
        )
        if response.status_code != 201:
            raise HubError(f"POST sessions for {path}: {response.status_code} {response.text[:200]}")
        session = response.json()
        self.sessions[session["kernel"]["id"]] = session["id"]
        return str(session["kernel"]["id"])

    def close_kernel(self, kernel_id: str) -> None:
        """What closing the tab does here (the course's JupyterLab setting): the kernel shuts down."""
        session_id = self.sessions.pop(kernel_id, None)
        if session_id:
            self.server_api("DELETE", f"sessions/{session_id}")
        self.server_api("DELETE", f"kernels/{kernel_id}")

    def execute(self, kernel_id: str, sources: list[str], *, label: str = "", timeout: float = 300.0) -> list[str]:
        """Run each source in order on the kernel's websocket; return each cell's text output."""
        return asyncio.run(self._execute(kernel_id, sources, label, timeout))

    async def _execute(self, kernel_id: str, sources: list[str], label: str, timeout: float) -> list[str]:
        url = f"{self.base.replace('http', 'ws', 1)}/user/{self.name}/api/kernels/{kernel_id}/channels"
        request = HTTPRequest(url, headers={"Authorization": f"token {self.token}"}, request_timeout=60)
        socket = await websocket_connect(request, max_message_size=256 * 1024 * 1024)
        outputs = []
        try:
            for index, source in enumerate(sources):
                msg_id = uuid.uuid4().hex
                message = {
                    "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                               "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
                    "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                    "content": {"code": source, "silent": False, "store_history": True,
                                "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
                }  # fmt: skip
                await socket.write_message(json.dumps(message))
                text, error = [], None
                while True:
                    raw = await asyncio.wait_for(socket.read_message(), timeout)
                    if raw is None:
                        raise HubError(f"{label}: the kernel's websocket closed during code cell {index}")
                    if isinstance(raw, bytes):  # a message with binary buffers: a widget's, not ours
                        continue
                    reply = json.loads(raw)
                    if reply.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind, content = reply["msg_type"], reply["content"]
                    if kind == "stream":
                        text.append(content["text"])
                    elif kind == "error":
                        error = f"{content['ename']}: {content['evalue']}"
                    elif kind == "execute_reply":
                        break
                if error or content.get("status") != "ok":
                    raise CellFailure(label, index, error or str(content.get("status")))
                outputs.append("".join(text))
        finally:
            socket.close()
        return outputs

    def run_notebook(self, path: str, *, on_cell: Callable[[int], None] | None = None) -> float:
        """Open the notebook, run every code cell in order, close it; return the wall time in s."""
        notebook = self.contents(path)["content"]
        sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
        start = time.perf_counter()
        kernel = self.open_kernel(path)
        try:
            for index, source in enumerate(sources):
                self.execute(kernel, [source], label=path)
                if on_cell:
                    on_cell(index)
        finally:
            self.close_kernel(kernel)
        return time.perf_counter() - start
