"""`nnunet_kd`: the command line of the plugin (argparse, nnU-Net style)."""
import argparse
import json
import os
import sys

from nnunet_kd.errors import KDError


def _trainer_path(_args) -> None:
    import nnunet_kd.trainers
    print(os.path.dirname(os.path.abspath(nnunet_kd.trainers.__file__)))


def _json_arg(value: str, flag: str) -> dict:
    text = open(value, encoding="utf-8").read() if os.path.isfile(value) else value
    try:
        out = json.loads(text)
    except json.JSONDecodeError as e:
        raise KDError(f"{flag} must be JSON or a path to a JSON file: {e}") from None
    if not isinstance(out, dict):
        raise KDError(f"{flag} must be a JSON object, got {type(out).__name__}.")
    return out


def _plan(args) -> None:
    from nnunetv2.configuration import default_num_processes
    from nnunet_kd.plans.shared import plan
    name = plan(args.t, args.s, args.c, planner=args.pl, plans=args.p, preset=args.preset,
                channel_map=_json_arg(args.channel_map, "--channel-map") if args.channel_map else None,
                derived_ids=args.derived_id, num_processes=args.np or default_num_processes,
                verbose=not args.quiet)
    if not args.quiet:
        print(f"Shared plans: {name}  (train with -p {name})")
    print(name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnunet_kd",
        description="Multi-dataset cross-domain knowledge distillation for nnU-Net v2. "
                    "Run `nnunet_kd COMMAND -h` for the options of a command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("trainer-path", help="Print the folder to export as nnUNet_extTrainer.",
                       description="Print the folder holding the plugin's trainers. Use: "
                                   "export nnUNet_extTrainer=$(nnunet_kd trainer-path)")
    p.set_defaults(func=_trainer_path)

    p = sub.add_parser("plan", help="Create shared plans for a target and its source datasets.",
                       description="Fingerprint target and sources, plan the target with nnU-Net's planner (or reuse "
                                   "an existing target plans file), transfer the plans to every source under one shared "
                                   "plans name with the KD block, and preprocess. The last line printed is the shared "
                                   "plans name. Rerunning with the same arguments verifies and reuses.")
    p.add_argument("-t", type=int, required=True, help="Target dataset id.")
    p.add_argument("-s", type=int, nargs="+", required=True, help="Source dataset ids.")
    p.add_argument("-c", nargs="+", default=["3d_fullres"],
                   help="Configurations: 2d, 3d_fullres, 3d_lowres. Default: 3d_fullres.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-pl", default="ExperimentPlanner",
                   help="nnU-Net experiment planner for the target, e.g. nnUNetPlannerResEncM. Default: ExperimentPlanner.")
    g.add_argument("-p", default=None,
                   help="Reuse this existing plans identifier of the target (e.g. nnUNetPlans) instead of planning: it is "
                        "copied under the shared name with the same data_identifier, so nothing is preprocessed again.")
    p.add_argument("--preset", default="default",
                   help="KD preset from plans/presets (default, tiny) or a path to a JSON file. Default: default.")
    p.add_argument("--channel-map", default=None,
                   help='JSON (string or file) mapping source id -> {target channel: source channel}, e.g. '
                        '\'{"3": {"T1": "t1_native"}}\'. Without it channels are matched by name, case-insensitive.')
    p.add_argument("--derived-id", type=int, nargs="+", default=None,
                   help="Dataset ids for the channel-mapped copies of sources, in -s order. Default: 900 + position in -s.")
    p.add_argument("-np", type=int, default=None, help="Processes for fingerprinting and preprocessing. "
                                                       "Default: nnUNet_def_n_proc.")
    p.add_argument("--quiet", action="store_true", help="Print only the shared plans name.")
    p.set_defaults(func=_plan)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KDError as e:
        print(f"nnunet_kd {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
