"""The console of `nnunet_kd run`: a stage's whole output goes to its log file, the console shows one live line per
stage (epoch, last train loss, the task's metric, time per epoch, time left) read from nnU-Net's own epoch lines."""
import collections
import math
import os
import re
import subprocess
import sys
import time

from tqdm import tqdm

from nnunet_kd.core.errors import KDError

TAIL_LINES = 30  # lines of a failed stage's log shown on the console
# nnU-Net's print_to_log_file: "<date> <time>: <text>"
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?: ")
_NUMPY_SCALAR = re.compile(r"np\.float\d+\(([^)]*)\)")


class EpochLines:
    """Reads nnU-Net's per-epoch console lines (``Epoch e``, ``train_loss``, ``Pseudo dice [...]`` (the trainers of
    classification and detection log their metric there), ``Epoch time: t s``)."""

    def __init__(self):
        self.epoch = None  # the epoch in progress (0-based)
        self.done = 0  # epochs finished
        self.loss = self.metric = None
        self.epoch_times = collections.deque(maxlen=5)

    def feed(self, line: str) -> bool:
        """Takes one line; True when it ends an epoch."""
        text = _STAMP.sub("", line.strip())
        if text.startswith("Epoch time:"):
            self.epoch_times.append(_number(text.split(":", 1)[1].strip().split()[0]))
            self.done = (self.epoch if self.epoch is not None else self.done) + 1
            return True
        if text.startswith("Epoch "):
            word = text.split()[1]
            if word.isdigit():
                self.epoch = int(word)
        elif text.startswith("train_loss "):
            self.loss = _number(text.split()[1])
        elif text.startswith("Pseudo dice ["):
            values = [_number(v) for v in _NUMPY_SCALAR.sub(r"\1", text[len("Pseudo dice "):]).strip("[] ").split(",")
                      if v.strip()]
            values = [v for v in values if not math.isnan(v)]
            self.metric = sum(values) / len(values) if values else None
        return False

    def summary(self, total: int, metric_name: str) -> str:
        parts = [f"loss {self.loss:.4f}" if self.loss is not None else None,
                 f"{metric_name} {self.metric:.4f}" if self.metric is not None else None]
        if self.epoch_times:
            per_epoch = sum(self.epoch_times) / len(self.epoch_times)
            parts += [f"{per_epoch:.1f} s/epoch", f"~{_duration(per_epoch * max(total - self.done, 0))} left"]
        return ", ".join(p for p in parts if p)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def run_stage(argv: list[str], env: dict, log_path: str, title: str, epochs: int | None = None,
              metric_name: str = "metric", verbose: bool = False) -> None:
    """Runs argv, appending its stdout and stderr to log_path. epochs: a training of that many epochs, shown as a live
    line (a progress bar on a terminal, a line per tenth of the epochs elsewhere); otherwise (planning) stderr, where
    nnU-Net draws its progress bars, stays on the console. verbose: every line on the console too. KDError with the
    log's last lines when it fails."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n")
        log.flush()
        lines = EpochLines()
        show = _Progress(title, epochs, metric_name) if epochs and not verbose else None
        with subprocess.Popen(argv, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.STDOUT if epochs or verbose else None, errors="replace") as proc:
            for line in proc.stdout:
                log.write(line)
                if verbose:
                    sys.stdout.write(line)
                elif show and lines.feed(line):
                    show.update(lines)
            code = proc.wait()
        if show:
            show.close()
    if code != 0:
        with open(log_path, errors="replace") as f:
            tail = collections.deque(f, maxlen=TAIL_LINES)
        raise KDError(f"`{' '.join(argv)}` failed with exit status {code}. The last lines of its log {log_path}:\n"
                      f"{''.join(tail).rstrip()}\nFix the cause and rerun the same `nnunet_kd run`: finished stages "
                      f"are skipped and this one resumes.")


class _Progress:
    """A tqdm bar on a terminal; otherwise a plain line whenever another tenth of the epochs is done."""

    def __init__(self, title: str, epochs: int, metric_name: str):
        self.title, self.epochs, self.metric_name = title, epochs, metric_name
        self.bar = tqdm(total=epochs, desc=f"{title}: epoch 0/{epochs}", unit="epoch", dynamic_ncols=True,
                        bar_format="{desc} |{bar:20}|") if _tty() else None
        self.printed = 0

    def update(self, lines: EpochLines) -> None:
        text = f"{self.title}: epoch {lines.done}/{self.epochs}, {lines.summary(self.epochs, self.metric_name)}"
        if self.bar is not None:  # the same line, the bar after it
            self.bar.n = min(lines.done, self.epochs)
            self.bar.set_description_str(text, refresh=True)
        elif lines.done >= self.epochs or lines.done - self.printed >= max(1, self.epochs // 10):
            self.printed = lines.done
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _tty() -> bool:
    return sys.stderr.isatty()


def cases_bar(iterable, desc: str, total: int | None = None):
    """A progress bar over cases on stderr (where nnU-Net draws its own): converting, checking, predicting."""
    return tqdm(iterable, desc=desc, total=total, unit="case", dynamic_ncols=True)
