"""Built-in datasets: cifar10, imagefolder, digits, synthetic."""
