"""The commented study file that ``hyperlab init`` writes."""

EXAMPLE_YAML = """\
# A hyperlab study: tune the built-in MLP on a dataset.  Run it with
#   hyperlab tune study.yaml
# Re-running the same command resumes the study where it stopped.

name: digits-mlp                 # the study's name in the store
storage: sqlite:///hyperlab.db   # or postgresql+psycopg://user@host/db to share a study
seed: 0                          # same seed -> same trials, same splits, same curves

data:
  source: sklearn:digits         # sklearn:NAME, mnist1d, or a .csv / .parquet / .npz file
  # target: label                # the label column (CSV / Parquet)
  split: {train: 0.6, dev: 0.2, test: 0.2}   # shares, or row counts
  # one_hot: true                # one-hot encode non-numeric feature columns
  # nan: drop                    # drop rows with NaN / inf instead of stopping
  task: auto                     # auto | multiclass | binary | regression

metric: dev_error                # dev_error | dev_cost | dev_accuracy (maximized)
trials: 20                       # the budget, counted over every run of this study
# timeout: 600                   # seconds, per run
sampler: random                  # random | sobol | grid | coarse_to_fine | tpe (or {type: grid, n_points: 5})

train:                           # hyperparameters held fixed
  epochs: 15
  patience: 5                    # early stopping on the dev metric
  activation: relu
  batch_norm: false

search:                          # hyperparameters searched, each on its own scale
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, scale: log, tier: 1}
  optimizer: {type: choice, options: [momentum, adam], tier: 2}
  momentum: {type: float, low: 0.8, high: 0.999, scale: reverse_log, tier: 2, when: {optimizer: momentum}}
  hidden_units: {type: int, low: 16, high: 256, scale: log, tier: 2}
  batch_size: {type: choice, options: [32, 64, 128], tier: 2}
  n_layers: {type: int, low: 1, high: 3, tier: 3}
  lr_decay: {type: choice, options: [none, inverse], tier: 3}
  decay_rate: {type: float, low: 1.0e-3, high: 1.0, scale: log, tier: 3, when: {lr_decay: inverse}}
  l2: {type: float, low: 1.0e-6, high: 1.0e-1, scale: log}
# Or the course's whole space (Adam's beta1/beta2/epsilon held at 0.9/0.999/1e-8):
# search: course
"""
