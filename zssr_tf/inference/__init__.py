"""A trained ZSSR outside its training: the scale-step plan and the trained networks.

- `plan`: `plan_scale_steps`, the one place the steps' sizes and base changes are worked out
  (NumPy-free arithmetic, no TensorFlow: the pre-flight checks use it before TensorFlow loads).
- `trained`: `TrainedZSSR` (per-step networks, aligned kernels, kernel symmetries; save/load in
  a run's `model/` folder layout; re-applying the networks to an image) and `final_test`.

Nothing here is re-exported, so importing the plan does not import Keras.
"""
