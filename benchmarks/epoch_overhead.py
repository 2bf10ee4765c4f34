"""Whole epochs through `nnUNetv2_train` with the real data loader, and without it, per role, in one run.

    python benchmarks/epoch_overhead.py --experiment DIR -t 1 -s 901 902 -p PLANS -c 2d --teachers _demo
        [--device cuda] [--epochs 5] [--iterations 250] [--roles vanilla source joint student student_unlabelled]
        [--unlabelled-plans PLANS2] [--repeats 3]

DIR holds nnUNet_raw / nnUNet_preprocessed / nnUNet_results of an experiment whose teachers are trained (e.g. the
output of `nnunet_kd demo`); --teachers is the suffix of those trainers. Each role trains with the benchmark variants
of benchmarks/trainers (no checkpoints, no final validation) and reports its median epoch after the first (warm-up)
one; the table, printed last, gives the ratio to the vanilla epoch with and without data loading (and
student_unlabelled's to the student's). student_unlabelled is the student under --unlabelled-plans: a copy of the
shared plans with distill.unlabelled_ratio > 0 (and unlabelled target images, `plan --extra-target-images`) whose
student.joint_teacher_plans names -p, so that it distils from the same joint teacher.
"""
import argparse
import os
import statistics
import subprocess
import sys

from batchgenerators.utilities.file_and_folder_operations import join, load_json

ROLES = {"vanilla": "nnUNetTrainer", "source": "nnUNetTrainerDomainAdversarial",
         "joint": "nnUNetTrainerJointTeacher", "student": "nnUNetTrainerJointKD",
         "student_unlabelled": "nnUNetTrainerJointKD"}
#: roles whose cost is also compared with another role than vanilla (issue 19: unlabelled distillation vs without)
COMPARED = {"student_unlabelled": "student"}
HERE = os.path.dirname(os.path.abspath(__file__))


def run_role(env: dict, dataset: str, fold: str, plans: str, configuration: str, trainer: str, device: str) -> float:
    subprocess.run(["nnUNetv2_train", dataset, configuration, fold, "-p", plans, "-tr", trainer, "-device", device],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    from nnunet_kd.core.datasets import dataset_name
    folder = join(env["nnUNet_results"], dataset_name(dataset), f"{trainer}__{plans}__{configuration}", f"fold_{fold}")
    return load_json(join(folder, "benchmark_result.json"))["median_epoch"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default=None,
                        help="Folder with nnUNet_raw/_preprocessed/_results. Default: the nnUNet_* variables")
    parser.add_argument("-t", required=True, help="Target dataset id or name")
    parser.add_argument("-s", required=True, help="One source dataset (id or name) for the source-teacher role")
    parser.add_argument("-p", required=True, help="Shared plans name")
    parser.add_argument("-c", default="3d_fullres")
    parser.add_argument("-f", default="0", help="Target fold. Default: 0")
    parser.add_argument("--teachers", default="", help="Suffix of the trained teachers, e.g. _demo. Default: none")
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=250)
    parser.add_argument("--roles", nargs="+", default=[r for r in ROLES if r != "student_unlabelled"],
                        choices=list(ROLES))
    parser.add_argument("--unlabelled-plans", default=None, help="Shared plans of the student_unlabelled role")
    parser.add_argument("--repeats", type=int, default=1,
                        help="Rounds of all roles in turn (the machine's speed drifts between runs). Default: 1")
    args = parser.parse_args(argv)
    if "student_unlabelled" in args.roles and not args.unlabelled_plans:
        parser.error("the student_unlabelled role needs --unlabelled-plans")
    from nnunet_kd import trainer_path
    if args.experiment:  # for the trainings and for this process's own lookups of dataset names
        os.environ.update({k: join(os.path.abspath(args.experiment), k)
                           for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")})
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    env.update(nnUNet_extTrainer=os.pathsep.join([trainer_path(), join(HERE, "trainers")]),
               nnUNet_KD_BENCH_EPOCHS=str(args.epochs), nnUNet_KD_BENCH_ITERS=str(args.iterations),
               nnUNet_KD_BENCH_TEACHERS=args.teachers)
    rounds = []  # per round: role -> (epoch s with data loading, without)
    for r in range(args.repeats):
        rows = {}
        for role in ["vanilla"] + [x for x in args.roles if x != "vanilla"]:
            dataset, fold = (args.s, "all") if role == "source" else (args.t, args.f)
            plans = args.unlabelled_plans if role == "student_unlabelled" else args.p
            rows[role] = [run_role(env, dataset, fold, plans, args.c, ROLES[role] + variant, args.device)
                          for variant in ("_BenchmarkEpochs", "_BenchmarkEpochs_noDataLoading")]
            print(f"round {r + 1}, {role}: median epoch {rows[role][0]:.2f} s with data loading, {rows[role][1]:.2f} s "
                  f"without", flush=True)
        rounds.append(rows)
    print(f"\nEpoch overhead, {args.device}, median of epochs 2-{args.epochs} x {args.iterations} iterations, "
          f"configuration {args.c}, python {sys.version.split()[0]}; {args.repeats} round(s) of all roles in turn, "
          f"each figure the median over the rounds (ratios within a round first)\n")
    print("| role | epoch s (data loading) | x vanilla | epoch s (no data loading) | x vanilla |")
    print("|---|---|---|---|---|")
    for role, cells in table(rounds).items():
        print(f"| {role} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    for role, reference in COMPARED.items():
        if role in rounds[0] and reference in rounds[0]:
            print(f"\n{role} x {reference}: {median_ratio(rounds, role, reference, 0):.2f} with data loading, "
                  f"{median_ratio(rounds, role, reference, 1):.2f} without (medians of the ratios within each round)")


def table(rounds: list) -> dict:
    """{role: (epoch s with data loading, x vanilla, epoch s without, x vanilla)}: medians over the rounds, each ratio
    taken within its round first."""
    return {role: tuple(v for i in (0, 1) for v in (statistics.median(rows[role][i] for rows in rounds),
                                                   median_ratio(rounds, role, "vanilla", i))) for role in rounds[0]}


def median_ratio(rounds: list, role: str, reference: str, i: int) -> float:
    """Median over the rounds of role's epoch / reference's epoch in the same round (i: 0 with data loading, 1
    without)."""
    return statistics.median(rows[role][i] / rows[reference][i] for rows in rounds)


if __name__ == "__main__":
    main()
