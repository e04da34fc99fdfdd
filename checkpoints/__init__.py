"""Shipped checkpoints: safetensors weights with their resolved config beside them."""
