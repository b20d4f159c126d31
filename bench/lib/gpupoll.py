"""Peak GPU memory of one child process, polled with nvidia-smi (the gpu row)."""

import subprocess
import threading


class GpuPoller:
    """Peak GPU memory of one process: nvidia-smi every 0.2 s while it runs.

    Uses the per-process figure when the child's pid shows up in --query-compute-apps;
    inside some containers the pids differ, so it also keeps the whole GPU's used memory
    above what was in use before the child started, and falls back to that."""

    def __init__(self, pid, interval=0.2):
        self.pid = pid
        self.interval = interval
        self.peak_pid = None
        self.peak_total = None
        self.baseline = self._total()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _query(args):
        try:
            return subprocess.run(["nvidia-smi"] + args, capture_output=True, text=True,
                                  timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def _total(self):
        out = self._query(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        try:
            return float(out.split()[0])
        except (IndexError, ValueError):
            return None

    def _loop(self):
        while not self._stop.is_set():
            out = self._query(["--query-compute-apps=pid,used_memory",
                               "--format=csv,noheader,nounits"])
            for line in out.splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 2 and parts[0] == str(self.pid):
                    try:
                        mib = float(parts[1])
                    except ValueError:
                        continue
                    self.peak_pid = max(self.peak_pid or 0.0, mib)
            total = self._total()
            if total is not None and self.baseline is not None:
                self.peak_total = max(self.peak_total or 0.0, total - self.baseline)
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def peak(self):
        """(MiB, how it was measured)."""
        if self.peak_pid is not None:
            return self.peak_pid, "process"
        if self.peak_total is not None:
            return self.peak_total, "whole GPU minus baseline"
        return None, "nvidia-smi gave nothing"
