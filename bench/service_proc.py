"""`python -m service run` as a subprocess: started on loopback, watched through /proc, stopped by its PID."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from .measure import proc_cpu_s, proc_peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 40.0
_ADMIN_LINE = re.compile(r"admin API:\s+(http://127\.0\.0\.1:\d+)")


class ServiceProcess:
    """One service process; `admin_url` once started."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = {**env, "MQ_ADMIN_HOST": "127.0.0.1", "MQ_ADMIN_PORT": "0", "MQ_LOG_FORMAT": "json"}
        self._log_path = log_path
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.admin_url = ""

    def start(self) -> None:
        """Start it and wait until /healthz answers (/readyz waits for a first receive to return: a long poll)."""
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self._log_path.open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "service", "run"],
            cwd=ROOT,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.admin_url = self._admin_url()
        self._wait_alive()

    @property
    def pid(self) -> int:
        """Its process id."""
        assert self._process is not None
        return self._process.pid

    def cpu_s(self) -> float:
        """User + system CPU seconds it has used."""
        return proc_cpu_s(self.pid)

    def peak_rss_mb(self) -> float:
        """Its peak resident set size, in MiB."""
        return proc_peak_rss_mb(self.pid)

    def stop(self) -> int | None:
        """SIGTERM (it drains, then exits); SIGKILL by PID if it outlives STOP_TIMEOUT_S. Its exit code."""
        if self._process is None:
            return None
        process, self._process = self._process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
        if self._log is not None:
            self._log.close()
        return process.returncode

    def _admin_url(self) -> str:
        """The admin URL from the start-up banner on its stdout (read unbuffered, so select sees every byte)."""
        assert self._process is not None
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        seen = b""
        give_up_at = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < give_up_at:
            ready, _, _ = select.select([fd], [], [], 0.5)
            chunk = os.read(fd, 65536) if ready else b""
            if ready and not chunk:
                break  # stdout closed: it exited
            seen += chunk
            match = _ADMIN_LINE.search(seen.decode(errors="replace"))
            if match:
                return match.group(1)
        self.stop()
        raise RuntimeError(f"the service did not start: {self._last_log_line()} (log: {self._log_path})")

    def _wait_alive(self) -> None:
        give_up_at = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < give_up_at:
            try:
                if httpx.get(f"{self.admin_url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the service never answered /healthz: {self._last_log_line()} (log: {self._log_path})")

    def _last_log_line(self) -> str:
        lines = self._log_path.read_text(errors="replace").strip().splitlines() if self._log_path.exists() else []
        return lines[-1][:300] if lines else "no output"
