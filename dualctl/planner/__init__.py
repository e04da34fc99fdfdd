"""System 2: the video-diffusion planner (text encoder, autoencoder, diffusion model, sampler)."""
