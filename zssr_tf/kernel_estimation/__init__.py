"""Blind SR: estimate an image's own downscaling kernel from the image itself.

`estimate_kernel(lr_image, config)` runs KernelGAN (Bell-Kligler, Shocher & Irani, NeurIPS
2019) and returns the post-processed x2 kernel with its training history;
`analytic_x4_kernel(k2)` derives the x4 kernel. Modules: `networks` (linear generator, patch
discriminator, kernel extraction), `crops` (gradient-weighted crop positions), `constraints`
(losses on the kernel), `schedule` (loss weights and learning rates over iterations),
`postprocess` (cleaning, re-centring, x4) and `estimator` (the training loop).
"""

from zssr_tf.kernel_estimation.estimator import (KernelEstimationError, KernelEstimationHistory,
                                                 estimate_kernel)
from zssr_tf.kernel_estimation.postprocess import analytic_x4_kernel, post_process

__all__ = ["KernelEstimationError", "KernelEstimationHistory", "analytic_x4_kernel", "estimate_kernel",
           "post_process"]
