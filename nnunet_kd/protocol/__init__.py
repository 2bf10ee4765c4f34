"""The method's task-free pieces in pure torch: gradient reversal, domain heads, level-wise fusion, distillation
losses, feature taps. Nothing here imports nnU-Net or the rest of the plugin."""

KD_MODES = ("voxel", "class", "channel")  # how the logit KD weighs voxels (`distill.logit_kd`; `distill.kd_mode`)
