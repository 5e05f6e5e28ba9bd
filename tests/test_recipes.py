"""Recipes: `zoo recipes`, `zoo recipes show`, `zoo train --recipe NAME [overrides]` (what the run records),
the `zoo_register_recipes` hook with a third-party plugin, and a short run of cifar10-fast's trainer and network
(whitening, flip-translate augmentation, flip TTA in training and in `zoo eval`) on synthetic data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from zoo_registry import store
from zoo_train.fastnet import FastCNN
from zoo_train.loop import scheduled_lr
from zoo_train.pipeline import BatchPipeline
from zoo_train.recipes import get_recipe

from zoo_core import hookimpl, plugins
from zoo_core.cli import main
from zoo_core.paths import runs_dir

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
SHIPPED = {"cifar10-tutorial", "cifar10-improvedcnn", "cifar10-resnet18-transfer", "cifar10-fast"}
TINY = ["--dataset", "synthetic", "--data-opt", "train_size=384", "--data-opt", "test_size=96",
        "--data-opt", "image_size=16", "--data-opt", "num_classes=4"]  # fmt: skip


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def guide_recipe_plugin() -> str:
    """The recipe plugin docs/plugins.md shows (tests/test_plugin_guide.py checks that it loads as written)."""
    text = GUIDE.read_text()
    return re.search(r"<!-- plugin: zoo_digits_recipes -->\n```python\n(.*?)^```$", text, re.S | re.M).group(1)


# -- listing and showing ---------------------------------------------------------------------------------------


def test_zoo_recipes_lists_the_shipped_recipes_with_what_they_reach(capsys):
    code, out, err = run_cli(capsys, "recipes", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert SHIPPED <= set(rows)
    for row in rows.values():
        assert row["plugin"] == "train" and row["model"] and row["dataset"] == "cifar10"
        assert row["train"]["epochs"] >= 1 and row["train"]["batch_size"] >= 1
    assert rows["cifar10-tutorial"]["train"] == {**rows["cifar10-tutorial"]["train"], "optimizer": "adam",
                                                  "lr": 0.001, "batch_size": 64, "epochs": 10}  # fmt: skip
    assert rows["cifar10-tutorial"]["expected"]["top1"] == 74.5  # what zoo measured (benchmarks/results)
    fast = rows["cifar10-fast"]
    assert (fast["model"], fast["train"]["trainer"], fast["train"]["tta"]) == ("fastcnn", "fast", "unsure")
    assert rows["cifar10-resnet18-transfer"]["train"]["freeze_backbone"] is True

    code, out, _ = run_cli(capsys, "recipes")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:4] == ["name", "model", "dataset", "epochs"] and "top-1" in header
    assert re.search(r"^cifar10-tutorial\s+simplecnn\s+cifar10\s+10\s+74\.5%", out, re.M)


def test_zoo_recipes_show_prints_every_setting_and_the_command(capsys):
    code, out, err = run_cli(capsys, "recipes", "show", "cifar10-fast")
    assert code == 0, err
    assert re.search(r"^model\s+fastcnn$", out, re.M) and re.search(r"^tta\s+unsure$", out, re.M)
    assert re.search(r"^augment\s+flip-translate$", out, re.M) and re.search(r"^precision\s+auto$", out, re.M)
    assert "zoo train --recipe cifar10-fast" in out

    code, out, _ = run_cli(capsys, "recipes", "show", "train:cifar10-tutorial", "--json")
    shown = json.loads(out)
    assert (shown["qualified"], shown["model"], shown["train"]["epochs"]) == ("train:cifar10-tutorial", "simplecnn", 10)

    code, out, err = run_cli(capsys, "recipes", "show", "cifar10-fats")
    assert code == 2 and not out and "cifar10-fast" in err and len(err.strip().splitlines()) == 1


# -- a third-party recipe through the hook ------------------------------------------------------------------------


def test_a_third_party_recipe_is_listed_and_trains_with_overrides_recorded(plugin_path, capsys):
    plugin_path("zoo-digits-recipes", "zoo_digits_recipes", "zoo_digits_recipes", guide_recipe_plugin())
    code, out, err = run_cli(capsys, "recipes", "--json")
    assert code == 0, err
    (mine,) = [r for r in json.loads(out) if r["name"] == "digits-quick"]
    assert (mine["plugin"], mine["model"], mine["dataset"]) == ("zoo_digits_recipes", "simplecnn", "digits")

    code, out, err = run_cli(capsys, "train", "--recipe", "digits-quick", "--epochs", "2", "--tag", "quick",
                             "--json")  # fmt: skip
    assert code == 0, err
    assert "recipe zoo_digits_recipes:digits-quick" in err and "epochs 2 (recipe: 3)" in err
    training = json.loads(out)["training"]
    assert training["recipe"] == "zoo_digits_recipes:digits-quick"
    assert training["recipe_overrides"] == {"epochs": 3}  # the value the command line replaced
    assert (training["epochs"], training["lr"], training["batch_size"]) == (2, 0.003, 32)  # the rest: the recipe's
    assert len(training["history"]) == 2
    record = json.loads((runs_dir() / "cnn-simplecnn-quick" / "run.json").read_text())
    assert record["config"]["recipe"] == training["recipe"] and record["config"]["recipe_overrides"] == {"epochs": 3}
    assert record["command"].startswith("zoo train --recipe digits-quick --epochs 2")
    assert store.get("simplecnn", "quick").metrics["top1"] > 50  # digits: a real model, not chance (10%)


def test_a_recipe_that_breaks_the_schema_fails_its_plugin_only(in_process_plugin, capsys):
    @hookimpl
    def zoo_register_recipes(register):
        register("fine", model="simplecnn", dataset="digits", train={"epochs": 1})
        register("bad", model="simplecnn", dataset="digits", expected={"top1": 140})

    in_process_plugin(SimpleNamespace(zoo_register_recipes=zoo_register_recipes), "badrecipes")
    host = plugins.get_host()
    info = host.infos["badrecipes"]
    assert info.status == "error" and "expected.top1 must be a number in [0, 100]" in info.errors[0]
    names = {e.qualified for e in host.catalogue.all("recipe")}
    assert "badrecipes:fine" not in names and "train:cifar10-fast" in names  # nothing of it is kept
    assert "plugin 'badrecipes' failed" in capsys.readouterr().err


def test_a_recipe_with_a_setting_zoo_train_lacks_is_refused_by_name(in_process_plugin, capsys):
    @hookimpl
    def zoo_register_recipes(register):
        register("odd", model="simplecnn", dataset="digits", train={"epochs": 1, "warp_factor": 9})

    in_process_plugin(SimpleNamespace(zoo_register_recipes=zoo_register_recipes), "oddrecipes")
    code, out, err = run_cli(capsys, "train", "--recipe", "odd")
    assert code == 2 and "warp_factor" in err and "oddrecipes" in err and not out


def test_train_needs_a_dataset_or_a_recipe(capsys):
    code, _, err = run_cli(capsys, "train", "simplecnn")
    assert code == 2 and "--dataset" in err and "--recipe" in err


# -- cifar10-fast's parts ---------------------------------------------------------------------------------------


def test_whitening_decorrelates_the_2x2_patches():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(64, 1, 12, 12, generator=g)
    images = torch.cat([base, 0.8 * base + 0.2 * torch.randn(64, 1, 12, 12, generator=g),
                        torch.randn(64, 1, 12, 12, generator=g)], dim=1)  # correlated channels  # fmt: skip
    net = FastCNN(num_classes=3)
    net.set_whitening(images, eps=1e-6)
    assert not net.whiten.weight.requires_grad  # fixed from now on
    out = net.whiten(images)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    covariance = torch.cov(out.T)
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.double), atol=0.05)


def test_flip_translate_moves_each_image_by_at_most_two_pixels_with_a_mirrored_border():
    n, h, w = 64, 8, 8
    pixels = torch.arange(h * w, dtype=torch.uint8).view(1, h, w, 1).expand(n, h, w, 3).contiguous()
    pipe = BatchPipeline(mean=[0, 0, 0], std=[1 / 255] * 3, size=(h, w), channels=3, augment="flip-translate",
                         channels_last=False)  # fmt: skip
    out = pipe(pixels.permute(0, 3, 1, 2), torch.Generator().manual_seed(0), train=True)[:, 0].round().long()
    unflipped = pipe(pixels.permute(0, 3, 1, 2), torch.Generator().manual_seed(0), train=True, flip=False)

    def mirror(i: torch.Tensor, size: int) -> torch.Tensor:
        i = i.abs()
        return (size - 1) - (size - 1 - i).abs()

    image = torch.arange(h * w).view(h, w)
    candidates = {}
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            for flip in (False, True):
                cols = torch.arange(w).flip(0) if flip else torch.arange(w)
                shifted = image[mirror(torch.arange(h) + dy, h)][:, mirror(cols + dx, w)]
                candidates[(dy, dx, flip)] = shifted

    def shifts_and_flips(batch: torch.Tensor) -> set[tuple[int, int, bool]]:
        seen = set()
        for picture in batch:
            match = [k for k, c in candidates.items() if torch.equal(picture, c)]
            assert match, "an augmented image is no flip and shift of the original"
            seen.add(match[0])
        return seen

    seen = shifts_and_flips(out)
    assert len(seen) > 10 and {k[2] for k in seen} == {False, True}  # random shifts, both orientations
    seen = shifts_and_flips(unflipped[:, 0].round().long())  # a trainer that flips them itself
    assert len(seen) > 5 and {k[2] for k in seen} == {False}  # (shifts of one pixel at this size: 9)


def test_alternating_flips_show_every_image_each_way_in_two_epochs_in_a_row():
    from zoo_train.fast import alternating_flips

    from zoo_core.plugin_api import Split

    n = 200
    pixels = torch.randint(0, 256, (n, 4, 5, 3), dtype=torch.uint8)
    labels = torch.arange(n)
    odd, even = alternating_flips(Split(pixels, labels), seed=3)
    mirrored = pixels.flip(2)
    assert torch.equal(odd.labels, labels) and torch.equal(even.labels, labels)
    flipped_odd = torch.tensor([torch.equal(odd.pixels[i], mirrored[i]) for i in range(n)])
    assert all(torch.equal(odd.pixels[i], pixels[i]) for i in range(n) if not flipped_odd[i])
    assert all(torch.equal(even.pixels[i], pixels[i] if flipped_odd[i] else mirrored[i]) for i in range(n))
    assert 60 < int(flipped_odd.sum()) < 140  # a random half
    again, _ = alternating_flips(Split(pixels, labels), seed=3)
    assert torch.equal(again.pixels, odd.pixels)  # the seed decides: a resumed run flips alike


def test_early_windows_are_one_random_window_of_the_whole_batch():
    from zoo_train.fast import early_window

    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(0)
    corners = set()
    for _ in range(20):
        window = early_window(x, 24, generator)
        assert window.shape == (4, 3, 24, 24) and window.is_contiguous(memory_format=torch.channels_last)
        found = [(top, left) for top in range(9) for left in range(9)
                 if torch.equal(window, x[:, :, top : top + 24, left : left + 24])]  # fmt: skip
        assert len(found) == 1
        corners.add(found[0])
    assert len(corners) > 5  # random windows
    assert early_window(x, 32, generator) is x  # a window as large as the image is the image


def test_orthogonalised_matrices_have_singular_values_near_one():
    from zoo_train.muon import orthogonalised

    torch.manual_seed(0)
    for shape in ((64, 216), (256, 64)):  # wide and tall
        gradient = torch.randn(*shape) @ torch.diag(torch.logspace(-1, 0, shape[1]))  # condition number 6 to 14
        assert torch.linalg.cond(gradient) > 5
        values = torch.linalg.svdvals(orthogonalised(gradient).float())
        assert orthogonalised(gradient).shape == shape
        assert values.min() > 0.6 and values.max() < 1.25, values  # three steps: near 1, not exactly 1


def test_muon_sgd_steps_other_groups_as_torch_sgd_and_keeps_filter_norms():
    from zoo_train.muon import MuonSGD

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, bias=True)
    head = torch.nn.Linear(8, 4)
    twin = [p.detach().clone().requires_grad_() for p in (head.weight, head.bias)]
    groups = [{"params": [conv.weight], "muon": True, "momentum": 0.6},
              {"params": [head.weight, head.bias, conv.bias], "weight_decay": 0.01}]  # fmt: skip
    ours = MuonSGD(groups, lr=0.1, momentum=0.85)
    theirs = torch.optim.SGD(twin, lr=0.1, momentum=0.85, nesterov=True, weight_decay=0.01)
    x, y = torch.randn(16, 3, 5, 5), torch.randint(0, 4, (16,))
    losses = []
    for _ in range(5):
        for opt in (ours, theirs):
            opt.zero_grad()
        features = conv(x).amax((2, 3))
        loss = F.cross_entropy(head(features), y)
        loss.backward()
        F.cross_entropy(F.linear(features.detach(), *twin), y).backward()
        ours.step()
        theirs.step()
        losses.append(float(loss))
        assert torch.allclose(head.weight, twin[0], atol=1e-6) and torch.allclose(head.bias, twin[1], atol=1e-6)
        norm = float(conv.weight.norm())
        assert abs(norm - 8**0.5) < 1.0  # reset to sqrt(out channels), then one step of norm ~ lr * sqrt(rank)
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="two or more dimensions"):
        MuonSGD([{"params": [head.bias], "muon": True}], lr=0.1, momentum=0.9)


def test_the_fast_trainers_options_are_refused_by_the_classifier_trainer(capsys):
    for option in (["--optimizer", "muon"], ["--early-crop", "8", "--early-crop-epochs", "1"]):
        code, _, err = run_cli(capsys, "train", "simplecnn", *TINY, "--epochs", "1", *option)
        assert code == 2 and "fast trainer" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "train", "--recipe", "cifar10-fast", *TINY, "--early-crop", "0")
    assert code == 2 and "--early-crop must be a positive side" in err and "Traceback" not in err


def test_the_linear_schedule_warms_up_then_falls_to_zero_and_decay_falls_from_the_start():
    cfg = SimpleNamespace(schedule="linear", lr=1.0, epochs=10)
    lrs = [scheduled_lr(cfg, epoch, step, 10) for epoch in range(1, 11) for step in range(1, 11)]
    assert lrs[0] == pytest.approx(0.2) and max(lrs) == pytest.approx(lrs[20], abs=0.01) and lrs[20] > 0.99
    assert all(a <= b for a, b in zip(lrs[:20], lrs[1:21], strict=True))  # up, then
    assert all(a >= b for a, b in zip(lrs[20:-1], lrs[21:], strict=True)) and lrs[-1] < 0.02  # down to ~0
    cfg.schedule = "decay"
    lrs = [scheduled_lr(cfg, epoch, step, 10) for epoch in range(1, 11) for step in range(1, 11)]
    assert lrs[0] == 1.0 and lrs[50] == pytest.approx(0.5) and lrs[-1] == pytest.approx(0.01)  # no warm-up


def test_a_short_cifar10_fast_run_trains_tests_with_its_tta_and_eval_reproduces_it(capsys):
    code, out, err = run_cli(capsys, "train", "--recipe", "cifar10-fast", *TINY, "--epochs", "4", "--batch-size",
                             "64", "--precision", "fp32", "--tag", "tiny", "--json")  # fmt: skip
    assert code == 0, err
    assert "whitening filters set" in err
    recipe = get_recipe("cifar10-fast").metadata
    tta = recipe["train"]["tta"]
    result = json.loads(out)
    metrics, training = result["metrics"], result["training"]
    assert training["trainer"] == "train:fast" and training["model"] == "train:fastcnn"
    assert training["recipe"] == "train:cifar10-fast" and training["tta"] == tta
    replaced = {"dataset": recipe["dataset"], **{k: recipe["train"][k] for k in ("epochs", "batch_size", "precision")}}
    assert training["recipe_overrides"] == replaced  # each option the command line gave, with the recipe's value
    assert training["pipeline"]["augment"] == "flip-translate" and training["optimizer"] == recipe["train"]["optimizer"]
    assert all(training[k] == recipe["train"][k] for k in ("early_crop", "early_crop_epochs"))
    assert metrics["tta"] == tta and metrics["top1"] > 60  # four classes: chance is 25%
    assert [h["epoch"] for h in training["history"]] == [1, 2, 3, 4] and "val_top1" in training["history"][-1]
    # with --val-fraction 0 the one validation is the test, with the same protocol
    assert metrics["val_top1"] == metrics["top1"]

    code, out, err = run_cli(capsys, "eval", "fastcnn.tiny", *TINY, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["tta"] == tta and report["top1"] == metrics["top1"]  # the weights' own protocol
    code, out, _ = run_cli(capsys, "eval", "fastcnn.tiny", *TINY, "--tta", "none", "--json")
    assert json.loads(out)["tta"] == "none"

    weights = store.get("fastcnn", "tiny")
    assert weights.config["training"]["recipe"] == "train:cifar10-fast"


def test_fastcnn_declares_the_counts_counting_gives():
    """`zoo list` takes fastcnn's size and cost from its registration (zoo_train's code is not fingerprinted for
    shipped counts): they must be what counting the model gives."""
    from zoo_core import stats_cache

    entry = plugins.get_catalogue().get("model", "train:fastcnn")
    declared = {f: entry.metadata[f] for f in stats_cache.FIELDS}
    query = stats_cache.model_query(entry)
    assert stats_cache.count(query, stats_cache.FIELDS) == declared


def test_flip_translate_tta_sums_the_image_its_mirror_and_both_one_pixel_diagonal_shifts():
    from zoo_train.evaluation import tta_logits

    torch.manual_seed(0)
    weight = torch.randn(3, 5, 6)  # a linear "model": its logit is the image weighted pixel by pixel
    seen: list[torch.Tensor] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(x)
        return (x * weight).sum((1, 2, 3))[:, None]

    x = torch.randn(2, 3, 5, 6)

    def shifted(d: int) -> torch.Tensor:  # pixel (i, j) shows (i + d, j + d), the border mirrored
        rows = [(i + d) if 0 <= i + d < 5 else (i - d) for i in range(5)]
        cols = [(j + d) if 0 <= j + d < 6 else (j - d) for j in range(6)]
        return x[:, :, rows][:, :, :, cols]

    def logit(image: torch.Tensor) -> torch.Tensor:
        return (image * weight).sum((1, 2, 3))[:, None]

    assert torch.equal(tta_logits(model, x, "none"), logit(x)) and len(seen) == 1
    assert torch.allclose(tta_logits(model, x, "flip"), logit(x) + logit(x.flip(3)))
    expected = logit(x) + logit(x.flip(3)) + sum(0.5 * (logit(v) + logit(v.flip(3))) for v in map(shifted, (-1, 1)))
    assert torch.allclose(tta_logits(model, x, "flip-translate"), expected, atol=1e-5)
    assert len(seen) == 1 + 2 + 6


def test_unsure_tta_takes_the_flip_translate_views_only_for_images_the_plain_prediction_is_unsure_of():
    from zoo_train.evaluation import FLIP_TRANSLATE_WEIGHT, UNSURE_BELOW, tta_logits

    torch.manual_seed(0)
    weight = torch.randn(4, 3, 5, 6)  # a linear "model" with four classes
    rows_seen: list[int] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        rows_seen.append(len(x))
        return torch.einsum("nchw,kchw->nk", x, weight)

    x = 0.01 * torch.randn(8, 3, 5, 6)  # faint images: logits near 0, no class much more likely than another
    x[:3] = weight[0]  # three images the model is sure of: class 0
    plain = model(x)
    rows_seen.clear()
    sure = plain.softmax(1).amax(1) >= UNSURE_BELOW
    assert sure[:3].all() and not sure.all()
    got = tta_logits(model, x, "unsure")
    full = tta_logits(model, x, "flip-translate")
    assert torch.allclose(got[sure], FLIP_TRANSLATE_WEIGHT * plain[sure], rtol=1e-5)
    assert torch.allclose(got[~sure], full[~sure], rtol=1e-5, atol=1e-4)
    assert rows_seen[:6] == [8] + [int((~sure).sum())] * 5  # the five other views of the unsure images only
