"""`make smoke`: the newcomer's path, checked from the README itself.

1. A fresh copy of the committed `.env.example` (never a developer's own `.env`) at .local/smoke/.env.
2. `make run ENV_FILE=.local/smoke/.env`, exactly what a newcomer runs, until it says `ready:`.
3. Every ```sh block of README.md's section "Trying it under `cargo lambda watch`", in order, in one bash session
   (so `B=…`, `AUTH=…` carry over), one command at a time, from the repository root.
4. Each command's answer is compared with the comment lines the README writes right under it:
   - `# text` is one expected line of output, matched whole; `…` stands for any text;
   - a remark in parentheses after two or more spaces, `# OK   (send it again: still OK)`, is prose, not output;
   - a last expected line of only `…` allows any further lines; otherwise the line count must match;
   - a command with no such comment is only required to exit 0 (every command must).
5. `make run` built every function before it said `ready:`: nothing compiles after that (a newcomer's first call
   answers at once instead of looking hung).
6. Everything `make run` started is stopped, and the smoke fails if port 9000, the sample server or moto remain.

Exit status 0 only when every example answered as documented; the report ends with `N passed, N failed`.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTION = "## Trying it under `cargo lambda watch`"
SMOKE = ROOT / ".local" / "smoke"
READY_TIMEOUT_S = 1200  # a fresh clone builds six functions first
COMMAND_TIMEOUT_S = 120


def section_blocks(readme: str) -> list[list[str]]:
    """The ```sh blocks of the section, each as its lines."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    text = readme[start : end if end != -1 else len(readme)]
    return [b.splitlines() for b in re.findall(r"```sh\n(.*?)```", text, re.S)]


def commands(block: list[str]) -> list[tuple[str, list[str]]]:
    """(command, expected lines) pairs; a command may continue over lines ending in a backslash."""
    out: list[tuple[str, list[str]]] = []
    collecting = False  # inside the comment lines right under a command
    i = 0
    while i < len(block):
        line = block[i]
        if line.startswith("# ") or line == "#":
            if collecting:
                out[-1][1].append(line[2:])
        elif not line.strip():
            collecting = False
        else:
            cmd = [line]
            while cmd[-1].endswith("\\") and i + 1 < len(block):
                i += 1
                cmd.append(block[i])
            out.append(("\n".join(cmd), []))
            collecting = True
        i += 1
    return out


def expected_pattern(line: str) -> re.Pattern[str]:
    line = re.sub(r"\s{2,}\(.*\)\s*$", "", line).rstrip()
    return re.compile(".*".join(re.escape(part) for part in line.split("…")), re.S)


def check(output: str, expected: list[str]) -> str | None:
    """None when the output is as documented, else what differs."""
    got = output.rstrip("\n").splitlines() if output.strip() else []
    got = [g.rstrip() for g in got]
    more_allowed = bool(expected) and expected[-1].strip() == "…"
    want = expected[:-1] if more_allowed else expected
    if len(got) < len(want) or (not more_allowed and len(got) != len(want)):
        return f"expected {len(want)}{'+' if more_allowed else ''} line(s), got {len(got)}"
    for n, (w, g) in enumerate(zip(want, got), 1):
        if not expected_pattern(w).fullmatch(g):
            return f"line {n}: expected {w!r}, got {g!r}"
    return None


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_stack(log: pathlib.Path) -> subprocess.Popen[bytes]:
    env_file = SMOKE / ".env"
    shutil.copyfile(ROOT / ".env.example", env_file)
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"ENV_FILE={env_file}"],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Ctrl-C must reach `make run` even when this script runs where SIGINT is ignored (CI without a terminal).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"make run exited with {proc.returncode} before it was ready:\n{log.read_text()[-4000:]}")
        text = log.read_text(errors="replace")
        if "ready:" in text and "starting Runtime server" in text and port_open(9000):
            return proc
        time.sleep(1)
    stop_stack(proc)
    sys.exit(f"make run was not ready in {READY_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def stop_stack(proc: subprocess.Popen[bytes]) -> list[str]:
    """Ctrl-C as a person would; what is still running afterwards."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("make run did not stop on Ctrl-C; sending TERM", file=sys.stderr)
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    time.sleep(1)
    left = [f"port {p}" for p in (9000, 9002) if port_open(p)]
    if (ROOT / ".local" / "moto.pid").exists():
        left.append("moto (.local/moto.pid)")
    return left


def main() -> int:
    readme = (ROOT / "README.md").read_text()
    blocks = section_blocks(readme)
    steps = [c for b in blocks for c in commands(b)]
    if not steps:
        sys.exit(f"no ```sh examples under {SECTION!r} in README.md")
    for p in (9000, 9002):
        if port_open(p):
            sys.exit(f"port {p} is in use: stop the running `make run` first")
    if SMOKE.exists():
        shutil.rmtree(SMOKE)
    SMOKE.mkdir(parents=True)
    log = SMOKE / "run.log"
    print(f"smoke: make run from a fresh .env.example copy (log {log.relative_to(ROOT)})", flush=True)
    proc = start_stack(log)
    failures: list[str] = []
    passed = 0
    shell = subprocess.Popen(
        ["bash", "--noprofile", "--norc"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for n, (cmd, expected) in enumerate(steps, 1):
            out_file, rc_file = SMOKE / f"{n}.out", SMOKE / f"{n}.rc"
            # Braces, not a subshell: variables the examples set carry over to the next ones.
            assert shell.stdin is not None and shell.stdout is not None
            shell.stdin.write(f"{{\n{cmd}\n}} >{out_file} 2>&1 </dev/null; echo $? >{rc_file}; echo __done_{n}\n")
            shell.stdin.flush()
            deadline = time.monotonic() + COMMAND_TIMEOUT_S
            while not rc_file.exists() or not rc_file.read_text().strip():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"example {n} did not finish in {COMMAND_TIMEOUT_S} s:\n{cmd}")
                time.sleep(0.1)
            shell.stdout.readline()
            rc = int(rc_file.read_text())
            output = out_file.read_text(encoding="utf-8", errors="replace")
            first = cmd.splitlines()[0]
            problem = f"exit status {rc}" if rc != 0 else check(output, expected)
            if problem:
                failures.append(f"example {n}: {first}\n  {problem}\n  output:\n" + "".join(f"    {l}\n" for l in output.splitlines()[:20]))
                print(f"FAIL {n}: {first[:100]}", flush=True)
            else:
                passed += 1
                print(f"ok   {n}: {first[:100]}", flush=True)
    except TimeoutError as e:
        failures.append(str(e))
    finally:
        shell.kill()
        left = stop_stack(proc)
    if left:
        failures.append("still running after make run was stopped: " + ", ".join(left))
    after_ready = log.read_text(errors="replace").split("ready:", 1)[-1]
    compiled = [l.strip() for l in after_ready.splitlines() if l.strip().startswith("Compiling ")]
    if compiled:
        failures.append("cargo lambda watch compiled after `ready:` (the first call waited): " + "; ".join(compiled[:5]))
    for f in failures:
        print(f, file=sys.stderr)
    print(f"readme smoke: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
