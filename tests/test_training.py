"""train-blend: a few steps on tiny images, the artifact, resuming; and the data bootstrap."""

import io
import json
import zipfile

import pytest
import torch
from blend_weights import random_image

from consumer.engines.blend import BlendParams
from consumer.engines.blend_engine import create_engine
from consumer.engines.blend_model import load_blend_model
from consumer.training.data import bootstrap, fetch_subset
from consumer.training.settings import TrainSettings
from consumer.training.trainer import Trainer
from stylequeue.errors import ArtifactError, ValidationError

pytestmark = pytest.mark.usefixtures("blend_single_thread")


@pytest.fixture
def image_dirs(tmp_path):
    content, style = tmp_path / "content", tmp_path / "style" / "Impressionism"
    for folder, seed in ((content, 0), (style, 100)):
        folder.mkdir(parents=True)
        for i in range(3):
            random_image(48 + 8 * i, 40, seed + i).save(folder / f"{i}.jpg")
    return content, tmp_path / "style"


def _settings(image_dirs, blend_pair, out, **changes):
    content, style = image_dirs
    base = dict(
        content_dir=content, style_dir=style, out=out, encoder=str(blend_pair[0]), steps=3,
        batch_size=2, load_size=24, crop_size=16, checkpoint_every=100, device="cpu", lr=1e-3,
    )  # fmt: skip
    return TrainSettings(**(base | changes))


def test_training_writes_a_loadable_artifact(image_dirs, blend_pair, blend_config, tmp_path):
    settings = _settings(image_dirs, blend_pair, tmp_path / "ours.pt")
    trainer = Trainer(settings, config=blend_config)
    seen = []
    out = trainer.run(progress=lambda step, losses: seen.append((step, losses)))
    assert [s for s, _ in seen] == [1, 2, 3]
    assert all(logged["loss"] > 0 and logged["content"] >= 0 and logged["style"] >= 0 for _, logged in seen)
    model = load_blend_model(blend_config.model_copy(update={"blend_model": str(out)}))
    assert model.source.kind == "stylequeue"
    assert model.source.metadata["training"]["steps"] == 3
    assert model.source.metadata["training"]["content_images"] == 3
    # The frozen encoder went into the artifact unchanged.
    torch.testing.assert_close(model.module.encoder[2].weight, trainer.encoder[2].weight)
    engine = create_engine(blend_config.model_copy(update={"blend_model": str(out)}))
    assert engine.run(
        random_image(32, 32, 9), [random_image(32, 32, 8)], BlendParams(image_size=32)
    ).image.size == (32, 32)


def test_the_loss_goes_down_on_a_fixed_pair(image_dirs, blend_pair, blend_config, tmp_path):
    trainer = Trainer(_settings(image_dirs, blend_pair, tmp_path / "x.pt", lr=1e-3), config=blend_config)
    generator = torch.Generator().manual_seed(1)
    content, style = trainer.content.batch(2, generator), trainer.style.batch(2, generator)
    before = trainer.losses(content, style)["loss"].item()
    for _ in range(3):
        loss = trainer.losses(content, style)["loss"]
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
    assert trainer.losses(content, style)["loss"].item() < before


def test_resuming_continues_exactly(image_dirs, blend_pair, blend_config, tmp_path):
    straight = Trainer(_settings(image_dirs, blend_pair, tmp_path / "a.pt"), config=blend_config)
    straight.run()
    half = _settings(image_dirs, blend_pair, tmp_path / "b.pt", steps=2)  # checkpoints at its end
    Trainer(half, config=blend_config).run()
    assert half.checkpoint_path.is_file()
    resumed = Trainer(half.model_copy(update={"steps": 3}), config=blend_config)
    resumed.run(resume=True)
    assert resumed.step == 3
    for (name, a), b in zip(
        straight.decoder.state_dict().items(), resumed.decoder.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=name)


def test_bad_settings_and_folders_name_the_field(image_dirs, blend_pair, tmp_path):
    with pytest.raises(ValidationError) as info:
        _settings(image_dirs, blend_pair, tmp_path / "x.pt", crop_size=30)
    assert info.value.field == "crop_size"
    with pytest.raises(ValidationError) as info:
        _settings(image_dirs, blend_pair, tmp_path / "x.pt", encoder="")
    assert info.value.field == "encoder"
    with pytest.raises(ValidationError) as info:
        Trainer(_settings(image_dirs, blend_pair, tmp_path / "x.pt", content_dir=tmp_path / "empty"))
    assert info.value.field == "content_dir"


def test_a_corrupt_checkpoint_is_reported(image_dirs, blend_pair, blend_config, tmp_path):
    settings = _settings(image_dirs, blend_pair, tmp_path / "c.pt")
    settings.checkpoint_path.write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="checkpoint"):
        Trainer(settings, config=blend_config).run(resume=True)


def _zip_of_images(path, names):
    with zipfile.ZipFile(path, "w") as archive:
        for i, name in enumerate(names):
            buffer = io.BytesIO()
            random_image(24, 20, i).save(buffer, "JPEG")
            archive.writestr(name, buffer.getvalue())
        archive.writestr(names[0].split("/")[0] + "/README.txt", "not an image")


def test_bootstrap_fetches_subsets_over_http_ranges(blend_http_server, tmp_path):
    root, base = blend_http_server
    (root / "zips").mkdir()
    _zip_of_images(root / "zips" / "train2017.zip", [f"train2017/{i:012d}.jpg" for i in range(9)])
    (root / "ICIP2017").mkdir()
    _zip_of_images(root / "ICIP2017" / "wikiart.zip", [f"wikiart/Cubism/artist_{i}.jpg" for i in range(6)])
    out = tmp_path / "data"
    result = bootstrap(
        out,
        coco=4,
        wikiart=3,
        coco_url=f"{base}/zips/train2017.zip",
        wikiart_url=f"{base}/ICIP2017/wikiart.zip",
    )
    assert len(list((out / "content").glob("*.jpg"))) == 4
    assert len(list((out / "style").glob("*.jpg"))) == 3
    sources = json.loads((out / "SOURCES.json").read_text())
    assert all(s["member"].startswith("train2017/") for s in sources["content"])
    with zipfile.ZipFile(root / "zips" / "train2017.zip") as archive:
        member = result["content"][0].member
        assert open(result["content"][0].path, "rb").read() == archive.read(member)
    # Same seed, same sample: a second run finds every file already there.
    again = fetch_subset(f"{base}/zips/train2017.zip", 4, out / "content")
    assert [f.member for f in again] == [f.member for f in result["content"]]


def test_bootstrap_errors(blend_http_server, tmp_path):
    root, base = blend_http_server
    (root / "plain.zip").write_bytes(b"this is not a zip file" * 10)
    with pytest.raises(ArtifactError, match="not a zip archive"):
        fetch_subset(f"{base}/plain.zip", 1, tmp_path / "x")
    with pytest.raises(ArtifactError, match="missing.zip"):
        fetch_subset(f"{base}/missing.zip", 1, tmp_path / "x")
    with pytest.raises(ValidationError) as info:
        bootstrap(tmp_path, coco=0, wikiart=1)
    assert info.value.field == "coco"
