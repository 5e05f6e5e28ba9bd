"""``zoo stripes-demo``: a plugin's own command, using its dataset and its pretrained model together."""

from __future__ import annotations

import click

from zoo_core.plugin_api import UsageError


@click.command("stripes-demo")
@click.option("--count", type=int, default=4, show_default=True, help="How many images to draw.")
@click.option("--seed", type=int, default=7, show_default=True, help="Which random images.")
def stripes_demo(count: int, seed: int) -> None:
    """Draw stripes images as text with what pocketnet.stripes predicts for them."""
    import torch

    from zoo_core import create_model, weights_info
    from zoo_example.data import LABELS, make_stripes

    if not 1 <= count <= 8:
        raise UsageError(f"--count must be between 1 and 8, got {count}")
    images, labels = make_stripes(count, seed=seed)
    pre = weights_info("example:pocketnet.stripes").preprocessing
    model = create_model("example:pocketnet", pretrained="stripes").eval()
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(pre.mean).view(1, -1, 1, 1)) / torch.tensor(pre.std).view(1, -1, 1, 1)
    with torch.inference_mode():
        predicted = model(x).argmax(1).tolist()
    gray = images.mean(axis=3)
    for row in range(gray.shape[1]):  # the images side by side: '#' brighter than the image's mean
        click.echo("   ".join("".join("#" if v > g.mean() else "." for v in g[row]) for g in gray).rstrip())
    width = gray.shape[2]
    for row in (labels, predicted):
        click.echo("   ".join(LABELS[i][:width].ljust(width) for i in row).rstrip())
    right = sum(int(p == t) for p, t in zip(predicted, labels, strict=True))
    click.echo(f"truth above, pocketnet.stripes below: {right}/{count} right")
