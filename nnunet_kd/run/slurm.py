"""`nnunet_kd run --slurm`: the pipeline's stages as SLURM jobs, one per stage, each after the jobs of the stages it
trains from (``--dependency=afterok``), then one job running the same `nnunet_kd run` for the records and the report."""
import os
import shlex
import stat

from batchgenerators.utilities.file_and_folder_operations import join

from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import write_atomic

SUBMIT = 'submit() { local id; id=$(sbatch --parsable "$@"); echo "${id%%;*}"; }  # "id" or "id;cluster"'


def script_path(pipeline) -> str:
    return join(pipeline.env["nnUNet_results"], pipeline.target,
                f"nnunet_kd_slurm_{pipeline.plans_name}_{pipeline.spec.configuration}.sh")


def slurm_script(pipeline, run_command: list[str], sbatch_args: list[str], train_args: list[str] = ()) -> str:
    """The submission script: a job per unfinished stage (training ones with nnU-Net's --c, so a resubmitted or
    requeued job continues; nnU-Net starts anew where there is no checkpoint), finished stages left out, and a last job
    running run_command (`nnunet_kd run` without --slurm), which adopts the stages and writes the report. sbatch_args
    go to every job, train_args to the training jobs only (a GPU: planning and the report need none)."""
    from nnunet_kd.run.pipeline import interpreter_path
    env = {**pipeline.env, "PATH": interpreter_path()}
    jobs, lines, logs = {}, [], set()
    for stage in pipeline.stages:
        state = pipeline.stage_state(stage)
        if state == "done":
            continue
        if state == "changed":
            raise KDError(f"{stage.title}: its KD block or teachers changed since {pipeline.folder(stage)} was trained. "
                          f"Run `nnunet_kd run --force` with the same arguments (it keeps the old fold folder beside "
                          f"the new one), or move that folder aside, then write the script again.")
        argv = list(stage.argv) + (["--c"] if stage.trainer else [])
        var = f"j{len(jobs) + 1}"
        log = pipeline.log_path(stage)
        logs.add(os.path.dirname(log))
        options = list(sbatch_args) + (list(train_args) if stage.trainer else [])
        lines += [_submit(var, stage.id, stage.depends, jobs, log, options, env, argv),
                  f'echo {shlex.quote(stage.id + ": job")} "${var}"']  # a dataset name is data, never code
        jobs[stage.id] = var
    report_log = join(pipeline.env["nnUNet_results"], pipeline.target, f"nnunet_kd_run_{pipeline.plans_name}.log")
    lines += [_submit("jrun", "run", list(jobs), jobs, report_log, sbatch_args, env, run_command),
              'echo "report (nnunet_kd run): job $jrun"']
    head = ["#!/usr/bin/env bash",
            f"# Written by `{shlex.join(run_command)} --slurm`: one SLURM job per unfinished stage, each after the "
            f"jobs of the stages it trains from; then `nnunet_kd run` again for the records and the report.",
            "# Submit with: bash THIS_FILE (any sbatch options can be added to the submit lines).",
            "set -euo pipefail", SUBMIT,
            "mkdir -p " + " ".join(shlex.quote(d) for d in sorted(logs | {os.path.dirname(report_log)}))]
    return "\n".join(head + lines) + "\n"


def _submit(var: str, name: str, depends: list[str], jobs: dict, log: str, sbatch_args: list[str], env: dict,
            argv: list[str]) -> str:
    after = [f"${jobs[d]}" for d in depends if d in jobs]
    options = [f"--job-name=nnunet_kd_{name.replace(':', '_')}", f"--output={log}", "--open-mode=append"]
    command = shlex.join(["env", *(f"{k}={v}" for k, v in env.items()), *argv])
    dependency = f" --dependency=afterok:{':'.join(after)}" if after else ""
    return (f"{var}=$(submit {shlex.join(options + list(sbatch_args))}{dependency} "
            f"--wrap={shlex.quote(command)})")


def write_script(pipeline, run_command: list[str], sbatch_args: list[str], train_args: list[str] = ()) -> str:
    """Writes the submission script (`slurm_script`) beside the target's model folders; returns its path."""
    path = script_path(pipeline)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, slurm_script(pipeline, run_command, sbatch_args, train_args))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP)
    return path
