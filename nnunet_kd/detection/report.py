"""Detection's part of the report: COCO mAP from its summary.json, each image's box matches (mAP, FROC and mAP@0.5
pooled over images) and the FROC curves."""
import numpy as np

from nnunet_kd.detection.metrics import froc_of_matches, image_matches
from nnunet_kd.report.figures import figure, save


def headline(summary: dict) -> dict:
    return {"foreground": float(summary["mAP"]), "per_class": {}, "metric": "mAP"}


def per_case(summary: dict) -> dict:
    if "per_case" not in summary:
        return {}
    n = len(summary["categories"])
    cases = {case: image_matches([(b[:4], b[4]) for b in r["boxes"]], [(p[:4], p[4], p[5]) for p in r["predictions"]], n)
             for case, r in summary["per_case"].items()}
    return {"mAP": ("map", cases), "FROC": ("froc", cases), "mAP@0.5": ("map50", cases)}


def froc_score(matches: list) -> float:
    """The FROC score of per-image matches (mean sensitivity over the FP rates)."""
    return froc_of_matches(matches)["froc"]


def figures(report: dict, summaries: dict, split: dict, out_dir: str) -> list[tuple[str, str]]:
    return [_froc(summaries, split, out_dir)] if summaries else []


def _froc(summaries: dict, split: dict, out_dir: str) -> tuple[str, str]:
    fig, (ax,) = figure(1, width=6.0, height=4.5)
    for label, s in summaries.items():
        ax.plot(*froc_points(s), marker="o", label=f"{label} ({split[label]})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("sensitivity")
    ax.set_ylim(0, 1.05)
    ax.set_title("FROC")
    ax.legend(frameon=False, fontsize="small")
    return "FROC curves: sensitivity against false positives per image (IoU 0.1)", save(fig, out_dir, "froc.png")


def froc_points(summaries: list[dict]) -> tuple[list[float], list[float]]:
    """The FP rates per image and the sensitivity at each, averaged over the summaries (folds or runs; JSON keys are
    strings: '0.125', '1', ...)."""
    by_rate = [{float(r): v for r, v in s["sensitivity"].items()} for s in summaries]
    rates = sorted({r for one in by_rate for r in one})
    return rates, [float(np.nanmean([one.get(r, np.nan) for one in by_rate])) for r in rates]
