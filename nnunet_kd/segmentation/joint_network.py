"""The joint teacher's network under its former module name: the plans of joint teachers trained before it moved to
`network.py` name this module in their network_class_name, and still load."""
from nnunet_kd.segmentation.network import JointTeacherNetwork

__all__ = ["JointTeacherNetwork"]
