"""Full-integer int8 post-training quantization of the emotion model (needs the `train` extra)."""
