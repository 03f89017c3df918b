"""Blind SR: estimate an image's own downscaling kernel from the image itself.

`estimate_kernel(lr_image, config)` runs KernelGAN (Bell-Kligler, Shocher & Irani, NeurIPS
2019), or with `kernel_estimation.method: fkp` its variant that searches a kernel prior's latent
space (FKP, Liang et al., CVPR 2021), and returns the post-processed x2 kernel with its training
history; `analytic_x4_kernel(k2)` derives the x4 kernel. Modules: `networks` (linear generator,
patch discriminator, kernel extraction), `crops` (gradient-weighted crop positions),
`constraints` (losses on the kernel), `schedule` (loss weights and learning rates over
iterations), `postprocess` (cleaning, re-centring, x4), `prior` (FKP's normalising flow over
kernels), `fkp` (the latent search) and `estimator` (the training loop, both methods);
`inputs` and `prior_file` check a run's image and prior file with NumPy alone.

The names below load lazily (PEP 562), so `inputs` and `prior_file` can be imported before
TensorFlow is.
"""

import importlib

_EXPORTS = {"KernelEstimationError": "estimator", "KernelEstimationHistory": "estimator",
            "estimate_kernel": "estimator", "analytic_x4_kernel": "postprocess", "post_process": "postprocess"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
