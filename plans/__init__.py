"""The shared-plans step (`nnunet_kd plan`) and the KD presets (presets/*.json)."""
