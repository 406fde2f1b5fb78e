"""The Gaussian head avatar: model, rasterizers, super-resolution, training, checkpoints."""
