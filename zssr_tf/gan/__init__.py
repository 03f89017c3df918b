"""ZSRGAN (Lee, Teodoro & Kim 2021): the ZSSR network trained against a patch discriminator and
a VGG16 perceptual loss, plus an LPIPS-like metric. Uses the package's leaves and model only."""
