"""Blind SR: estimate an image's own downscaling kernel from the image itself.

`estimate_kernel(lr_image, config)` runs KernelGAN (Bell-Kligler, Shocher & Irani, NeurIPS
2019), or with `kernel_estimation.method: fkp` its variant that searches a kernel prior's latent
space (FKP, Liang et al., CVPR 2021), and returns the post-processed x2 kernel with its training
history; `analytic_x4_kernel(k2)` derives the x4 kernel. Modules: `networks` (linear generator,
patch discriminator, kernel extraction), `crops` (gradient-weighted crop positions),
`constraints` (losses on the kernel), `schedule` (loss weights and learning rates over
iterations), `postprocess` (cleaning, re-centring, x4), `prior` (FKP's normalising flow over
kernels), `fkp` (the latent search) and `estimator` (the training loop, both methods).
"""

from zssr_tf.kernel_estimation.estimator import (KernelEstimationError, KernelEstimationHistory,
                                                 estimate_kernel)
from zssr_tf.kernel_estimation.postprocess import analytic_x4_kernel, post_process

__all__ = ["KernelEstimationError", "KernelEstimationHistory", "analytic_x4_kernel", "estimate_kernel",
           "post_process"]
