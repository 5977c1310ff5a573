"""The `course` script: portable to macOS's bash 3.2, honest Python floor, CPU-sized PyTorch on Linux.

The script runs for real, installing nothing: COURSE_VENV points at a stand-in venv whose `python`
records every pip and course_utils call (and runs only the script's own `-c` snippets), and a
stand-in `uname` picks the platform. Each flow runs under bash, under `bash --posix`, and under an
old bash (< 4.4, as macOS's 3.2) when the machine has one: /bin/bash on a Mac, or $COURSE_OLD_BASH.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TOP = Path(__file__).parent.parent
COURSE = TOP / "course"
UNREACHABLE = "http://127.0.0.1:9/whl/cpu"  # the discard port: refused at once


def bash_version(bash: str) -> tuple[int, int]:
    out = subprocess.run([bash, "-c", 'echo "${BASH_VERSINFO[0]} ${BASH_VERSINFO[1]}"'], capture_output=True, text=True)
    major, minor = out.stdout.split()
    return int(major), int(minor)


@functools.cache
def old_bash() -> tuple[str | None, str]:
    """A bash older than 4.4 (where an empty array is unbound under set -u), or why there is none."""
    chosen = os.environ.get("COURSE_OLD_BASH")
    if chosen:
        assert Path(chosen).is_file(), f"COURSE_OLD_BASH={chosen} does not exist: point it at a bash 3.2 to 4.3"
        assert bash_version(chosen) < (4, 4), f"COURSE_OLD_BASH={chosen} is bash {bash_version(chosen)}, not < 4.4"
        return chosen, ""
    if Path("/bin/bash").is_file() and bash_version("/bin/bash") < (4, 4):
        return "/bin/bash", ""  # macOS
    found = ".".join(map(str, bash_version("/bin/bash"))) if Path("/bin/bash").is_file() else "none"
    return None, f"no bash older than 4.4 here (/bin/bash is {found}); set COURSE_OLD_BASH=/path/to/bash-3.2"


def old_bash_command() -> list[str]:
    bash, why_not = old_bash()
    if bash is None:
        pytest.skip(why_not)
    return [bash]


BASH = shutil.which("bash") or "/bin/bash"  # resolved here: some runs below get a PATH without it
SHELLS = {"bash": lambda: [BASH], "bash --posix": lambda: [BASH, "--posix"], "old bash": old_bash_command}


@pytest.fixture(params=list(SHELLS))
def shell(request: pytest.FixtureRequest) -> list[str]:
    return SHELLS[request.param]()


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]  # what the stand-in venv was asked to do, in order

    @property
    def pip_calls(self) -> list[str]:
        return [call for call in self.calls if call.startswith("-m pip")]

    def course_lines(self, stream: str = "stdout") -> list[str]:
        return [line for line in getattr(self, stream).splitlines() if line.startswith("course:")]


class FakeVenv:
    """A folder shaped like a venv: bin/python, bin/jupyter, bin/ruff, bin/mypy are stand-ins."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "calls.log"
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        self.tools = root / "tools"  # put before PATH: a stand-in uname and sw_vers
        self.tools.mkdir()
        # Only the script's own `-c` snippets (hashing, the reachability probe) run in a real
        # Python; everything else is recorded and succeeds, or fails as FAKE_CPU_PIP_EXIT says.
        self.write(
            self.bin / "python",
            f"""#!/bin/sh
printf '%s\\n' "$*" >>"{self.log}"
if [ "$1" = -c ]; then exec "{sys.executable}" "$@"; fi
case "$*" in *+cpu*) exit "${{FAKE_CPU_PIP_EXIT:-0}}" ;; esac
exit 0
""",
        )
        for tool in ("jupyter", "ruff", "mypy"):
            self.write(self.bin / tool, f'#!/bin/sh\nprintf \'%s\\n\' "{tool} $*" >>"{self.log}"\n')
        self.write(
            self.tools / "uname",
            '#!/bin/sh\ncase "$1" in -s) echo "${FAKE_UNAME_S:-Linux}" ;; -m) echo "${FAKE_UNAME_M:-x86_64}" ;; esac\n',
        )
        self.write(self.tools / "sw_vers", '#!/bin/sh\necho "${FAKE_MACOS:-14.5}"\n')

    @staticmethod
    def write(path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o755)

    def install_torch(self, version: str) -> None:
        """What pip leaves in a real venv that holds torch `version`."""
        (self.root / "lib" / "python3.11" / "site-packages" / f"torch-{version}.dist-info").mkdir(parents=True)

    def run(self, shell: list[str], *args: str, **env: str) -> Run:
        self.log.write_text("")
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "FAKE_")) and k != "CI"}
        environ.update(PATH=f"{self.tools}:{os.environ['PATH']}", COURSE_VENV=str(self.root))
        environ.update(COURSE_TORCH_INDEX=UNREACHABLE)
        environ.update(env)
        result = subprocess.run(
            [*shell, str(COURSE), *args], cwd="/", env=environ, capture_output=True, text=True, timeout=120
        )
        calls = [call.rstrip() for call in self.log.read_text().splitlines()]
        return Run(result.returncode, result.stdout, result.stderr, calls)


@pytest.fixture
def venv(tmp_path: Path) -> FakeVenv:
    return FakeVenv(tmp_path / "venv")


@pytest.fixture
def cpu_index(tmp_path: Path) -> Iterator[str]:
    """A local stand-in for PyTorch's CPU index, answering the script's reachability probe."""
    (tmp_path / "index" / "torch").mkdir(parents=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path / "index"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def pinned(name: str) -> str:
    """The version requirements.txt pins, read here independently of the script."""
    match = re.search(rf"^{name}==([\w.]+)", (TOP / "requirements.txt").read_text(), re.M)
    assert match, f"requirements.txt does not pin {name}"
    return match.group(1)


# Syntax and bash-4 constructs ---------------------------------------------------------------

BASH4 = {
    "associative array": r"\b(declare|local|typeset)\s+-\w*A",
    "name reference (4.3)": r"\b(declare|local|typeset)\s+-\w*n\b",
    "case-changing attribute": r"\b(declare|local|typeset)\s+-\w*[lu]\b",
    "mapfile/readarray": r"\b(mapfile|readarray)\b",
    "case modification ${x,,} ${x^^}": r"\$\{[#!]?\w+(\[[^]]*\])?(,|\^)",
    "transformation ${x@Q} (4.4)": r"\$\{\w+(\[[^]]*\])?@[QEPAaKkUuL]\}",
    "|& pipe": r"\|&",
    "case fall-through ;& ;;&": r";;?&",
    "&>> redirection": r"&>>",
    "coproc": r"\bcoproc\b",
    "{fd}> redirection (4.1)": r"(?<!\$)\{\w+\}[<>]",
    "negative array index (4.3)": r"\$\{\w+\[-\d+\]\}",
    "negative substring length (4.2)": r"\$\{\w+:\s*-?\d+:\s*-\d+\}",
    "test -v (4.2)": r"(\[\[?|\btest)\s+-v\s",
    "wait -n (4.3)": r"\bwait\s+-n\b",
    "bash-4 shopt": r"\bshopt\s+-s\s+(globstar|autocd|lastpipe|checkjobs|direxpand|globasciiranges)\b",
    "bash-4 variable": r"\$\{?(EPOCHSECONDS|EPOCHREALTIME|BASHPID|BASH_ARGV0|SRANDOM)\b",
    "printf %(...)T (4.2)": r"%\([^)]*\)T",
    "read -i / -N": r"\bread\s+(-\w+\s+)*-\w*[iN]",
    # "${a[@]}" on an empty array is "unbound" under set -u before 4.4; guarded it is fine.
    "unguarded array expansion": r"\$\{#?(?!BASH_SOURCE\[0\])\w+\[[@*]\]\}",
}
GUARDED_ARRAY = r'\$\{(\w+)\[@\]\+"\$\{\1\[@\]\}"\}'


def bash4_constructs(script: str) -> list[str]:
    """Each bash-4 construct in the code of `script` (comments left out), as 'line N: what'."""
    found = []
    for number, line in enumerate(script.splitlines(), 1):
        code = re.sub(r"(^|\s)#.*", "", line)  # a comment: '#' at the start of a word
        code = re.sub(GUARDED_ARRAY, "", code)
        found += [f"line {number}: {what}" for what, pattern in BASH4.items() if re.search(pattern, code)]
    return found


def test_course_parses_in_bash_and_posix_mode() -> None:
    for shell in ([BASH], [BASH, "--posix"]):
        result = subprocess.run([*shell, "-n", str(COURSE)], capture_output=True, text=True)
        assert result.returncode == 0, f"{' '.join(shell)} -n course: {result.stderr}"


def test_course_parses_in_an_old_bash() -> None:
    result = subprocess.run([*old_bash_command(), "-n", str(COURSE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_course_uses_no_bash4_construct() -> None:
    assert bash4_constructs(COURSE.read_text()) == []


@pytest.mark.parametrize(
    ("what", "snippet"),
    [
        ("associative array", "declare -A pins"),
        ("name reference (4.3)", "local -n target=$1"),
        ("case-changing attribute", "declare -l name"),
        ("mapfile/readarray", "mapfile -t lines < file"),
        ("mapfile/readarray", "readarray lines"),
        ("case modification ${x,,} ${x^^}", 'echo "${answer,,}"'),
        ("case modification ${x,,} ${x^^}", 'echo "${answer^^}"'),
        ("transformation ${x@Q} (4.4)", 'echo "${value@Q}"'),
        ("|& pipe", "make |& tee log"),
        ("case fall-through ;& ;;&", "    a) echo a ;&"),
        ("case fall-through ;& ;;&", "    a) echo a ;;&"),
        ("&>> redirection", "pip install x &>> log"),
        ("coproc", "coproc cat"),
        ("{fd}> redirection (4.1)", "exec {log}>file"),
        ("negative array index (4.3)", 'echo "${files[-1]}"'),
        ("negative substring length (4.2)", 'echo "${name:0:-4}"'),
        ("test -v (4.2)", "[[ -v PYTHON ]] && echo set"),
        ("wait -n (4.3)", "wait -n"),
        ("bash-4 shopt", "shopt -s globstar"),
        ("bash-4 variable", "echo $EPOCHSECONDS"),
        ("printf %(...)T (4.2)", "printf '%(%F)T' -1"),
        ("read -i / -N", "read -r -N 1 key"),
        ("unguarded array expansion", 'exec jupyter lab "${extra[@]}" "$@"'),
        ("unguarded array expansion", "echo ${#extra[@]}"),
    ],
)
def test_the_check_catches_each_bash4_construct(what: str, snippet: str) -> None:
    assert bash4_constructs(f"#!/usr/bin/env bash\n{snippet}\n") == [f"line 2: {what}"]


def test_the_check_passes_what_bash_32_runs() -> None:
    portable = """set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"  # the script's own folder
exec jupyter lab ${extra[@]+"${extra[@]}"} "$@"
echo "${1:-}" "${PYTHON:-}" "${found##*/}" "${found%.dist-info}"
[ $# -gt 0 ] && shift
"""
    assert bash4_constructs(portable) == []


# Arguments ------------------------------------------------------------------------------------


def test_usage_and_exit_codes(shell: list[str], venv: FakeVenv) -> None:
    for args in [(), ("bogus",), ("--bogus", "start")]:
        run = venv.run(shell, *args)
        assert run.returncode == 2, f"course {' '.join(args)}: exit {run.returncode}, {run.stderr}"
        assert run.stderr.startswith("usage: ./course start"), run.stderr
        assert run.calls == []  # nothing set up, nothing installed
    run = venv.run(shell, "--help")
    assert run.returncode == 0 and run.stdout.startswith("usage: ./course start") and run.calls == []


def test_an_unknown_course_torch_is_refused_with_the_choices(shell: list[str], venv: FakeVenv) -> None:
    run = venv.run(shell, "start", COURSE_TORCH="cuda")
    assert run.returncode == 1 and run.calls == []
    assert "COURSE_TORCH=cuda" in run.stderr and "cpu" in run.stderr and "pypi" in run.stderr


def test_start_without_arguments_and_with_some(shell: list[str], venv: FakeVenv) -> None:
    # No arguments after `start` is the empty list that crashed bash 3.2 at this very line.
    allow_root = " --allow-root" if os.geteuid() == 0 else ""
    run = venv.run(shell, "start")
    assert run.returncode == 0, run.stderr
    assert run.calls[-1] == f"jupyter lab notebooks/00_start_here.ipynb{allow_root}"
    run = venv.run(shell, "start", "--port", "8899")
    assert run.returncode == 0, run.stderr
    assert run.calls[-1] == f"jupyter lab notebooks/00_start_here.ipynb{allow_root} --port 8899"


def test_lint_runs_ruff_then_mypy(shell: list[str], venv: FakeVenv) -> None:
    run = venv.run(shell, "lint")
    assert run.returncode == 0, run.stderr
    assert run.calls[-3:] == ["ruff check .", "ruff format --check .", "mypy"]


# PyTorch: CPU-only build on Linux, PyPI's as the fallback -------------------------------------


def test_unreachable_cpu_index_falls_back_to_pypi_in_one_line(shell: list[str], venv: FakeVenv) -> None:
    run = venv.run(shell, "start")
    assert run.returncode == 0, run.stderr
    fallback = [line for line in run.course_lines() if "CPU-only" in line]
    assert len(fallback) == 1, run.stdout
    assert (
        UNREACHABLE in fallback[0] and "installing PyPI's torch" in fallback[0] and "COURSE_TORCH=pypi" in fallback[0]
    )
    assert not [call for call in run.pip_calls if "+cpu" in call]
    assert run.pip_calls == [
        "-m pip install --disable-pip-version-check -r requirements.txt",
        "-m pip install --disable-pip-version-check --no-deps --no-build-isolation -e .",
    ]
    assert run.calls.count("-m course_utils.data") == 1


def test_reachable_cpu_index_installs_the_pinned_cpu_build_first(
    shell: list[str], venv: FakeVenv, cpu_index: str
) -> None:
    run = venv.run(shell, "start", COURSE_TORCH_INDEX=cpu_index)
    assert run.returncode == 0, run.stderr
    cpu = f"torch=={pinned('torch')}+cpu torchvision=={pinned('torchvision')}+cpu"
    assert run.pip_calls[0].endswith(f"--no-deps --index-url {cpu_index} {cpu}"), run.pip_calls
    assert run.pip_calls[1].endswith("-r requirements.txt")  # after: its == pins keep the +cpu build
    assert not [line for line in run.course_lines() if "PyPI's torch" in line]


def test_cpu_build_that_fails_to_install_falls_back(venv: FakeVenv, cpu_index: str) -> None:
    run = venv.run([BASH], "start", COURSE_TORCH_INDEX=cpu_index, FAKE_CPU_PIP_EXIT="1")
    assert run.returncode == 0, run.stderr
    assert [line for line in run.course_lines() if "did not install" in line and "PyPI's torch" in line]
    assert run.pip_calls[1].endswith("-r requirements.txt")


def test_course_torch_cpu_fails_loudly_instead_of_falling_back(shell: list[str], venv: FakeVenv) -> None:
    run = venv.run(shell, "start", COURSE_TORCH="cpu", FAKE_CPU_PIP_EXIT="1")
    assert run.returncode == 1
    assert "could not install PyTorch's CPU-only build" in run.stderr and "unset COURSE_TORCH" in run.stderr
    assert len(run.pip_calls) == 1 and "+cpu" in run.pip_calls[0]  # nothing from PyPI after it
    assert not any("jupyter" in call for call in run.calls)


def test_course_torch_pypi_skips_the_attempt(shell: list[str], venv: FakeVenv) -> None:
    run = venv.run(shell, "start", COURSE_TORCH="pypi")
    assert run.returncode == 0, run.stderr
    assert not [call for call in run.calls if UNREACHABLE in call or "+cpu" in call]  # no probe, no attempt
    assert not [line for line in run.course_lines() if "CPU-only" in line]
    assert run.pip_calls[0].endswith("-r requirements.txt")


@pytest.mark.parametrize("build", ["", "+cpu", "+cu130"])
def test_an_installed_pinned_torch_is_kept(venv: FakeVenv, build: str) -> None:
    venv.install_torch(pinned("torch") + build)
    run = venv.run([BASH], "start")
    assert run.returncode == 0, run.stderr
    assert not [call for call in run.calls if UNREACHABLE in call or "+cpu" in call]
    assert not [line for line in run.course_lines() if "CPU-only" in line]


def test_an_older_installed_torch_is_not_kept(venv: FakeVenv) -> None:
    venv.install_torch("2.0.0")
    run = venv.run([BASH], "start")
    assert [line for line in run.course_lines() if "out of reach" in line]


def test_second_run_installs_nothing_until_course_torch_changes(shell: list[str], venv: FakeVenv) -> None:
    assert venv.run(shell, "start").returncode == 0
    run = venv.run(shell, "start")
    assert run.returncode == 0 and run.pip_calls == [], run.pip_calls
    assert not [line for line in run.course_lines() if "installing" in line]
    run = venv.run(shell, "start", COURSE_TORCH="pypi")
    assert run.pip_calls and run.pip_calls[0].endswith("-r requirements.txt")


def test_macos_installs_from_pypi_without_an_attempt(shell: list[str], venv: FakeVenv) -> None:
    run = venv.run(shell, "start", FAKE_UNAME_S="Darwin", FAKE_UNAME_M="arm64", FAKE_MACOS="14.6.1")
    assert run.returncode == 0, run.stderr
    assert not [call for call in run.calls if UNREACHABLE in call or "+cpu" in call]
    assert run.pip_calls[0].endswith("-r requirements.txt")


@pytest.mark.parametrize(
    ("uname_s", "uname_m", "macos", "says"),
    [
        ("Darwin", "x86_64", "14.6", "Intel Macs"),
        ("Darwin", "arm64", "13.6.9", "macOS 14 or newer"),
        ("MINGW64_NT-10.0-19045", "x86_64", "", "WSL"),
    ],
)
def test_platforms_without_wheels_are_sent_to_conda(
    venv: FakeVenv, uname_s: str, uname_m: str, macos: str, says: str
) -> None:
    run = venv.run([BASH], "start", FAKE_UNAME_S=uname_s, FAKE_UNAME_M=uname_m, FAKE_MACOS=macos)
    assert run.returncode == 1 and run.calls == []
    assert says in run.stderr and "conda" in run.stderr and "environment.yml" in run.stderr


# The Python floor -------------------------------------------------------------------------------


def fake_python(path: Path, version: tuple[int, int]) -> None:
    """A `python3` that reports `version` to `-c` code and cannot do anything else."""
    path.write_text(
        f"#!{sys.executable}\nimport sys\nsys.version_info = {(*version, 0, 'final', 0)!r}\n"
        "if sys.argv[1] != '-c':\n    sys.exit(1)\ncode = sys.argv[2]\nsys.argv = ['-c', *sys.argv[3:]]\nexec(code)\n"
    )
    path.chmod(0o755)


def script_floor() -> str:
    match = re.search(r"^python_floor=(\d+\.\d+)", COURSE.read_text(), re.M)
    assert match, "course: no python_floor=X.Y line"
    return match.group(1)


@pytest.mark.parametrize("minor", [10, 11])
def test_find_python_applies_the_floor(shell: list[str], tmp_path: Path, minor: int) -> None:
    # Only the fake python3 and the tools the script calls are on PATH: no real python3.1x is found.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "sed", "cat", "id", "cut"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    FakeVenv.write(bin_dir / "uname", "#!/bin/sh\necho Linux\n")
    fake_python(bin_dir / "python3", (3, minor))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_") and k != "PYTHON"}
    environ.update(PATH=str(bin_dir), COURSE_VENV=str(tmp_path / "new-venv"))
    result = subprocess.run([*shell, str(COURSE), "start"], env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1  # the fake cannot create a venv either way
    floor = script_floor()
    if (3, minor) < tuple(map(int, floor.split("."))):
        assert f"needs Python {floor} or newer" in result.stderr and "PYTHON=" in result.stderr, result.stderr
    else:
        assert "creating the virtual environment" in result.stdout, result.stdout + result.stderr


def test_python_floor_agrees_in_script_pyproject_and_readme() -> None:
    floor = script_floor()
    requires = tomllib.loads((TOP / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={floor}", f"pyproject's requires-python is {requires!r}, the script's floor {floor}"
    readme_floors = set(re.findall(r"Python (\d+\.\d+) or newer", (TOP / "README.md").read_text()))
    assert readme_floors == {floor}, f"README says Python {readme_floors} or newer, the script {floor}"
