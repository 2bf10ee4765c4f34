"""What `nnunet_kd plan` is asked for: one frozen request, built once from a command line (or in code) and passed on to
planning, `run`, its SLURM script and the benchmarks, with the `nnunet_kd plan` command line that asks for it again."""
import json
import os
from dataclasses import dataclass, field

from nnunet_kd.core import tasks


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)


@dataclass(frozen=True)
class PlanRequest:
    """The inputs of the shared-plans step. Paths are made absolute and lists tuples, so that two requests for the same
    experiment compare equal wherever they were made."""
    target: int | str
    sources: tuple[int | str, ...]
    configurations: tuple[str, ...]
    planner: str = "ExperimentPlanner"
    from_plans: str | None = None  # an existing plans file of the target, copied instead of planning
    preset: str = "default"  # a preset's name or a JSON file
    channel_map: dict | None = field(default=None, hash=False)  # source id -> {target channel: source channel}
    derived_ids: tuple[int, ...] = ()
    extra_target_images: str | None = None
    task: str = tasks.DEFAULT_TASK
    target_teacher: str | None = None  # an existing model folder instead of training the target teacher
    source_teachers: tuple[str, ...] = ()  # likewise, one per source at most
    plans_name: str | None = None  # the user's name instead of nnUNetPlans_kd_<hash>

    def __post_init__(self):
        preset = os.path.abspath(self.preset) if self.preset.endswith(".json") and os.path.isfile(self.preset) \
            else self.preset
        for name, value in (("sources", tuple(self.sources)),
                            ("configurations", tuple(dict.fromkeys(self.configurations))),
                            ("derived_ids", tuple(self.derived_ids or ())), ("preset", preset),
                            ("extra_target_images", _absolute(self.extra_target_images)),
                            ("target_teacher", _absolute(self.target_teacher)),
                            ("source_teachers", tuple(map(_absolute, self.source_teachers)))):
            object.__setattr__(self, name, value)

    @classmethod
    def from_args(cls, args, channel_map: dict | None = None) -> "PlanRequest":
        """The request of a `plan` or `run` command line (the arguments of cli._add_dataset_args; channel_map: the
        parsed --channel-map)."""
        return cls(target=args.t, sources=args.s, configurations=args.c, planner=args.pl, from_plans=args.from_plans,
                   preset=args.preset, channel_map=channel_map, derived_ids=args.derived_id,
                   extra_target_images=args.extra_target_images, task=args.task, target_teacher=args.target_teacher,
                   source_teachers=args.source_teacher, plans_name=args.plans_name)

    def argv(self) -> list[str]:
        """The `nnunet_kd plan` command line of this request."""
        argv = ["nnunet_kd", "plan", "-t", str(self.target), "-s", *map(str, self.sources), "-c",
                *self.configurations, "--preset", self.preset]
        argv += ["--plans-name", self.plans_name] if self.plans_name else []
        argv += ["--from-plans", self.from_plans] if self.from_plans else ["-pl", self.planner]
        if self.channel_map:
            argv += ["--channel-map", json.dumps(self.channel_map)]
        if self.derived_ids:
            argv += ["--derived-id", *map(str, self.derived_ids)]
        if self.extra_target_images:
            argv += ["--extra-target-images", self.extra_target_images]
        if self.task != tasks.DEFAULT_TASK:
            argv += ["--task", self.task]
        if self.target_teacher:
            argv += ["--target-teacher", self.target_teacher]
        for t in self.source_teachers:
            argv += ["--source-teacher", t]
        return argv
