"""The shared-plans step (`nnunet_kd plan`): derived source datasets, one plans file for all, unlabelled images."""
