"""Core abstractions: latents, biases, builders and loaded datasets."""
