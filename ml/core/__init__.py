"""The shared core every algorithm builds on, and which never imports an algorithm.

- `algorithm`: the entry contract (`Algorithm`, `TrainFn`) and the config vocabulary;
- `training`: the training skeleton (`Run`: resume, checkpoints, stop, logging; `KeepBest`);
- `metrics`: the metric namespaces, documented once, and `MetricBuffer`;
- `health`: aborting diverged runs and warning about suspicious ones;
- `hooks`, `errors`: how a loop reports to whoever runs it, and what it raises;
- `seeding`, `schedules`, `optim`, `nets`: seeds and generators, schedules, Adam, networks;
- `model`, `metadata`, `versions`: trained models, their files and their metadata;
- `validation`: checks of query inputs against a model's shapes.
"""
