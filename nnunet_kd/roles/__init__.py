"""The method's roles, task-free: mixins that put the protocol (teachers, GRL domain heads, fusion, distillation, unlabelled
images) on an nnU-Net trainer. Each task combines a role with its network and data (segmentation: nnU-Net's own;
classification, detection: their trainer mixins)."""
