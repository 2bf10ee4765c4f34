"""`nnunet_kd run` and `demo`: the staged pipeline (skip, resume, dry run), SLURM submission, the console progress, the built-in demo and the test-set predictions."""
