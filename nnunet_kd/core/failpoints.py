"""Deterministic crash points for the kill-and-resume tests: ``nnUNet_KD_FAILPOINT=<role>:<point>``."""
import os
import signal


FAILPOINT_ENV = "nnUNet_KD_FAILPOINT"


def failpoint(role: str, point: str) -> None:
    """Kills this process with SIGKILL when nnUNet_KD_FAILPOINT is '<role>:<point>' (deterministic crash tests)."""
    if os.environ.get(FAILPOINT_ENV) == f"{role}:{point}":
        print(f"nnunet_kd: failpoint {role}:{point} reached, killing this process", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
