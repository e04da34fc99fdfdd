"""System 1: the JEPA latent tracker (encoders, EMA target, action-conditioned predictor,
tracking head, latent MPC)."""
