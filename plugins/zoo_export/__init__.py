"""zoo's export plugin: ``zoo export`` writes ONNX and torch.export (pt2) files that a parity gate proved compute
what the eager model computes, keeps them in the registry beside their weights, quantizes ONNX to int8 within an
accuracy budget, and runs them in onnxruntime behind ``zoo predict``, ``zoo eval`` and ``zoo benchmark``."""
