"""nnU-Net's logger with the plugin's per-epoch keys, drawn in ``progress_kd.png`` beside ``progress.png``, and the
task's metric named where nnU-Net draws its pseudo Dice."""
import contextlib

from batchgenerators.utilities.file_and_folder_operations import join
from nnunetv2.training.logging.nnunet_logger import LocalLogger


class KDLocalLogger(LocalLogger):
    """nnU-Net's logger with extra per-epoch keys, drawn in ``progress_kd.png`` beside ``progress.png``, and the task's
    own name for what nnU-Net draws as the pseudo Dice (balanced accuracy, FROC)."""

    def __init__(self, extra_keys: list[str], metric_name: str = "pseudo dice", verbose: bool = False):
        super().__init__(verbose)
        self.extra_keys = list(extra_keys)
        self.metric_name = metric_name
        for k in self.extra_keys:
            self.my_fantastic_logging[k] = []

    def load_checkpoint(self, checkpoint: dict):
        super().load_checkpoint(checkpoint)
        for k in self.extra_keys:
            self.my_fantastic_logging.setdefault(k, [])

    def plot_progress_png(self, output_folder):
        with _texts_renamed("pseudo dice", self.metric_name):
            super().plot_progress_png(output_folder)
        if not self.extra_keys:
            return
        import matplotlib.pyplot as plt
        n = min(len(v) for v in self.my_fantastic_logging.values())
        fig, axes = plt.subplots(len(self.extra_keys), 1, figsize=(12, 3.5 * len(self.extra_keys)), squeeze=False)
        for ax, k in zip(axes[:, 0], self.extra_keys):
            ax.plot(range(n), self.my_fantastic_logging[k][:n], linewidth=2)
            ax.set_ylabel(k)
            ax.set_xlabel("epoch")
        fig.tight_layout()
        fig.savefig(join(output_folder, "progress_kd.png"))
        plt.close(fig)


@contextlib.contextmanager
def _texts_renamed(old: str, new: str):
    """Figures saved inside say ``new`` where their texts (labels, legends) say ``old``."""
    from matplotlib.figure import Figure
    from matplotlib.text import Text
    savefig = Figure.savefig

    def renamed(fig, *args, **kwargs):
        for text in fig.findobj(Text):
            text.set_text(text.get_text().replace(old, new))
        return savefig(fig, *args, **kwargs)

    Figure.savefig = renamed
    try:
        yield
    finally:
        Figure.savefig = savefig
