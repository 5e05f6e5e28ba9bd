"""Pictures users actually have, through `zoo predict`, `zoo gradcam`, `zoo activations` and the decoder
(`zoo_core.images`): decompression bombs refused from their header by name, a batch that keeps the readable
ones, and truncated, CMYK, 16-bit, animated and 1x1 files that work or are refused by name."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_registry import publish

from zoo_core.cli import main
from zoo_core.errors import UsageError
from zoo_core.images import DEFAULT_MAX_IMAGE_PIXELS, image_mode, load_image

REF = "simplecnn.pictures"  # random weights published by test_registry.publish: 3 classes, 16x16 inputs


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def model() -> str:
    publish("pictures")
    return REF


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 30_000) -> Path:
    """A black ``side`` x ``side`` PNG of 1-bit pixels: ~110 KB on disk, 900 million pixels once decoded."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte "none", then the packed bits
    compressor = zlib.compressobj(9)
    rows = 1000  # side must be a multiple
    data = b"".join(compressor.compress(row * rows) for _ in range(side // rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grayscale, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def photo(path: Path, size: tuple[int, int] = (40, 30), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def truncated(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# -- decompression bombs ---------------------------------------------------------------------------------


def test_a_bomb_is_refused_from_its_header_by_name(tmp_path, monkeypatch):
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200_000

    def no_decoding(self):
        raise AssertionError("the pixels of a refused picture were decoded")

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    for read in (load_image, image_mode):
        with pytest.raises(UsageError) as info:
            read(bomb)
        assert str(info.value) == (f"{bomb}: 900,000,000 pixels (30000x30000) is over the limit of 178,956,970 "
                                   "(set ZOO_MAX_IMAGE_PIXELS to read larger pictures)")  # fmt: skip
    assert DEFAULT_MAX_IMAGE_PIXELS == 2 * Image.MAX_IMAGE_PIXELS  # where PIL itself refuses


def test_the_pixel_limit_is_set_by_zoo_max_image_pixels(tmp_path, monkeypatch, capsys, model):
    picture = photo(tmp_path / "p.png", (40, 30))  # 1,200 pixels
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "1000")
    code, out, err = run(capsys, "predict", model, str(picture))
    assert code == 2 and out.count("\n") <= 1
    assert err == f"zoo: error: {picture}: 1,200 pixels (40x30) is over the limit of 1,000 (set ZOO_MAX_IMAGE_PIXELS " \
        "to read larger pictures)\n"
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "1_200")
    assert run(capsys, "predict", model, str(picture))[0] == 0
    # above PIL's own limit: the header of the bomb is read (its pixels would be, too)
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "1000000000")
    assert image_mode(bomb_png(tmp_path / "bomb.png")) == ("1", "PNG")
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "none")
    assert image_mode(tmp_path / "bomb.png") == ("1", "PNG")
    for bad in ("lots", "0", "-5"):
        monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", bad)
        code, _, err = run(capsys, "predict", model, str(picture))
        assert code == 2 and err.count("\n") == 1 and "ZOO_MAX_IMAGE_PIXELS=" in err and "'none'" in err


def test_predict_and_gradcam_refuse_a_bomb_in_one_line(tmp_path, monkeypatch, capsys, model):
    monkeypatch.chdir(tmp_path)
    bomb = str(bomb_png(tmp_path / "bomb.png"))
    for args in (["predict", model, bomb], ["gradcam", model, "--image", bomb],
                 ["activations", model, "--image", bomb]):  # fmt: skip
        code, _, err = run(capsys, *args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert err.startswith(f"zoo: error: {bomb}: 900,000,000 pixels (30000x30000) is over the limit of "
                              "178,956,970"), err  # fmt: skip
    assert [p.name for p in tmp_path.glob("*.*")] == ["bomb.png"]  # no picture written


def test_a_batch_keeps_the_readable_pictures_and_lists_the_others(tmp_path, capsys, model):
    ok = photo(tmp_path / "ok.jpg")
    bomb = bomb_png(tmp_path / "bomb.png")
    broken = truncated(tmp_path / "broken.png", photo(tmp_path / "whole.png", (60, 60), seed=1))
    code, out, err = run(capsys, "predict", model, str(ok), str(bomb), "--json")
    report = json.loads(out)  # valid JSON on stdout, whatever else happened
    assert [p["image"] for p in report["predictions"]] == [str(ok)]
    assert len(report["predictions"][0]["top"]) == 3
    assert report["errors"] == [{"image": str(bomb), "error": f"{bomb}: 900,000,000 pixels (30000x30000) is over "
                                 "the limit of 178,956,970 (set ZOO_MAX_IMAGE_PIXELS to read larger pictures)"}]
    assert f"zoo: warning: skipped {bomb}: 900,000,000 pixels" in err and "Traceback" not in err
    assert code == 1 and err.splitlines()[-1] == "zoo: error: 1 of 2 images could not be read"

    code, out, err = run(capsys, "predict", model, str(ok), str(bomb), "--top-k", "1")  # the table too
    assert code == 1 and out.splitlines()[1] == str(ok) and str(bomb) not in out

    code, out, err = run(capsys, "predict", model, str(bomb), str(broken), "--json")
    report = json.loads(out)
    assert code == 1 and report["predictions"] == [] and [e["image"] for e in report["errors"]] == [str(bomb),
                                                                                                    str(broken)]
    assert "truncated" in report["errors"][1]["error"]
    assert err.count("zoo: warning: skipped") == 2 and err.splitlines()[-1] == (
        "zoo: error: none of the 2 images could be read")


# -- modes and shapes ----------------------------------------------------------------------------------------


def test_truncated_pictures_are_refused_by_name(tmp_path, capsys, model):
    jpeg = photo(tmp_path / "whole.jpg", (60, 60))
    for path in (truncated(tmp_path / "half.jpg", jpeg), truncated(tmp_path / "half.png", photo(tmp_path / "w.png"))):
        with pytest.raises(UsageError, match=f"cannot decode image {path}: "):
            load_image(path)
        code, _, err = run(capsys, "predict", model, str(path))
        assert code == 2 and err.startswith(f"zoo: error: cannot decode image {path}: ") and err.count("\n") == 1
        code, _, err = run(capsys, "gradcam", model, "--image", str(path), "--out", str(tmp_path / "cam.png"))
        assert code == 2 and err.startswith(f"zoo: error: cannot decode image {path}: ") and err.count("\n") == 1


def test_cmyk_16_bit_and_animated_pictures_are_read_in_their_true_colours(tmp_path, capsys, model):
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("RGB", (24, 24), (200, 30, 40)).convert("CMYK").save(cmyk, quality=95)
    assert Image.open(cmyk).mode == "CMYK"
    assert np.abs(np.asarray(load_image(cmyk), dtype=int) - [200, 30, 40]).max() <= 3

    sixteen = tmp_path / "sixteen.png"
    values = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(values).save(sixteen)
    assert Image.open(sixteen).mode == "I;16"
    decoded = load_image(sixteen)
    assert decoded.mode == "L" and np.array_equal(np.asarray(decoded), np.rint(values / 257).astype(np.uint8))

    animated = tmp_path / "animated.gif"
    frames = [Image.new("RGB", (24, 24), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].save(animated, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(animated).n_frames == 3
    first = load_image(animated)
    assert first.mode == "RGB" and np.unique(np.asarray(first).reshape(-1, 3), axis=0).tolist() == [[255, 0, 0]]
    still = tmp_path / "first-frame.png"
    frames[0].save(still)

    code, out, err = run(capsys, "predict", model, str(cmyk), str(sixteen), str(animated), str(still), "--json")
    assert code == 0 and err == "", err
    predictions = {Path(p["image"]).name: p["top"] for p in json.loads(out)["predictions"]}
    assert set(predictions) == {"cmyk.jpg", "sixteen.png", "animated.gif", "first-frame.png"}
    assert predictions["animated.gif"] == predictions["first-frame.png"]  # the first frame, nothing else
    for args in (["gradcam", model, "--image", str(animated), "--json", "--out", str(tmp_path / "cam.png")],
                 ["activations", model, "--image", str(sixteen), "--json", "--out", str(tmp_path / "maps.png")]):
        code, out, err = run(capsys, *args)
        assert code == 0 and "Traceback" not in err, err
    assert Image.open(tmp_path / "cam.png").size == (24, 24)


def test_a_one_pixel_picture_works_in_all_three_commands(tmp_path, capsys, model):
    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (250, 120, 10)).save(dot)
    code, out, err = run(capsys, "predict", model, str(dot), "--json")
    assert code == 0, err
    (prediction,) = json.loads(out)["predictions"]
    assert sum(t["probability"] for t in prediction["top"]) == pytest.approx(1.0, abs=1e-5)
    code, out, err = run(capsys, "gradcam", model, "--image", str(dot), "--json", "--out", str(tmp_path / "cam.png"),
                         "--save-map", str(tmp_path / "cam.npy"))  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["image_size"] == [1, 1] and Image.open(tmp_path / "cam.png").size == (1, 1)
    heat = np.load(tmp_path / "cam.npy")
    assert heat.shape == (1, 1) and np.isfinite(heat).all()
    code, out, err = run(capsys, "activations", model, "--image", str(dot), "--out", str(tmp_path / "maps.png"))
    assert code == 0 and (tmp_path / "maps.png").is_file(), err
