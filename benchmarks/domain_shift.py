"""Does distillation help a segmentation model? The segmentation domain-shift scenario, one seed per invocation.

    python benchmarks/domain_shift.py --seed 0 [--suffix _demo] [--out /tmp/nnunet_kd_bench_0]
        [--scenario shift] [--preset tiny] [--unlabelled 0] [--tag NAME]

Generates `shift_benchmark` with this seed (8 labelled target cases under a low-contrast, noisy scanner, 40 test cases;
two sources of 40 cases from other scanners; a scenario of its own, apart from the demo's), seeds training with it,
runs the whole pipeline on CPU with the tiny preset, predicts the held-out target test set with every model (nnU-Net's
nnUNetPredictor) and appends the test-set Dice and per-case results to benchmarks/results/archive/domain_shift.json;
benchmarks/results/archive/domain_shift.md (mean +/- std over seeds, paired differences to the baseline over the pooled test
cases of all seeds) and the "seg" entry of benchmarks/results/archive/summary.json are rewritten from it.

--scenario small_lesion runs `small_lesion_benchmark` instead (5 labelled target cases, organ and a small faint lesion
class; results in benchmarks/results/archive/small_lesion.*, summary.json entry "seg_small_lesion").
Ablation arms: --preset, --unlabelled N and --tag NAME (results in benchmarks/results/archive/<scenario results>_NAME.*).
"""
import argparse
import datetime
import json
import os
import shlex
import sys

from seed_runs import add_arm_arguments, kept_summary, machine, preset_path, record_arm

TITLE = "Domain-shift benchmark (segmentation)"
# scenario -> (generator in nnunet_kd.segmentation.synthetic, results name, summary.json entry, title)
SCENARIOS = {"shift": ("shift_benchmark", "domain_shift", "seg", TITLE),
             "small_lesion": ("small_lesion_benchmark", "small_lesion", "seg_small_lesion",
                              "Small-lesion benchmark (segmentation)")}
METRICS = {"test_dice": "Target test-set foreground Dice (nnU-Net's `compute_metrics_on_folder`) of every model, one "
                        "row per seed; written by `benchmarks/domain_shift.py`."}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--suffix", default="_demo", help="Trainer variant. Default: _demo (20 x 30 iterations).")
    parser.add_argument("--out", default=None,
                        help="Work folder. Default: /tmp/nnunet_kd_bench_<seed>[_<scenario>][_<tag>]")
    parser.add_argument("--scenario", default="shift", choices=list(SCENARIOS), help="Default: shift.")
    add_arm_arguments(parser)
    args = parser.parse_args(argv)
    os.environ["nnUNet_KD_SEED"] = str(args.seed)
    from nnunet_kd.run.demo import run_scenario
    from nnunet_kd.segmentation import synthetic
    generator, name, task, title = SCENARIOS[args.scenario]
    out = os.path.abspath(args.out or f"/tmp/nnunet_kd_bench_{args.seed}" + (
        f"_{args.scenario}" if args.scenario != "shift" else "") + (f"_{args.tag}" if args.tag else ""))
    specs = getattr(synthetic, generator)()
    specs[0].num_unlabelled = args.unlabelled
    start = datetime.datetime.now()
    report = run_scenario(out, specs, seed=args.seed, suffix=args.suffix, preset=preset_path(args.preset),
                          channel_map=synthetic.DEMO_CHANNEL_MAP)
    minutes = (datetime.datetime.now() - start).total_seconds() / 60
    summaries = {}
    for label, m in report["models"].items():
        with open(os.path.join(out, "test_predictions", m["trainer"], "summary.json")) as f:
            summaries[label] = kept_summary(json.load(f))
    run = {"seed": args.seed, "date": start.strftime("%Y-%m-%d"), "machine": machine(), "minutes": minutes,
           "command": "python benchmarks/domain_shift.py " + shlex.join(sys.argv[1:] if argv is None else argv),
           "test_dice": {label: (m["test"] or {}).get("foreground") for label, m in report["models"].items()},
           "summaries": summaries}
    print(record_arm(name, args.tag, run, title, METRICS, (task, "test_dice", "foreground")))


if __name__ == "__main__":
    main()
