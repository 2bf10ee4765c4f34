"""`nnunet_kd report`: collect the summaries of an experiment's models (`collect`), compare them with the baseline
case by case (`stats`), write the tables (`tables`) and the figures (`figures`)."""
