"""Transfer learning: --init from our checkpoints and torchvision weights, freezing, new classes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch
from safetensors.torch import save_file
from skimage import data as skimage_data
from torch import nn

from conftest import make_faces
from inception_fer.classes import EMOTIONS
from inception_fer.cli.main import main
from inception_fer.errors import InceptionFerError
from inception_fer.inference import EmotionRecognizer
from inception_fer.models import create_model
from inception_fer.pretrained import list_pretrained
from inception_fer.training.checkpoint import load_checkpoint
from inception_fer.training.config import TrainConfig
from inception_fer.training.fit import Trainer, fit, resume
from inception_fer.training.torchvision_weights import googlenet_key_map, inception_v3_key_map
from inception_fer.training.transfer import init_weights
from test_training import interrupt_after, tiny_data

CLASSES8 = [*EMOTIONS, "contempt"]

# torchvision's architectures as its source declares them (torchvision/models/googlenet.py and
# inception.py): only the layers that hold weights, under torchvision's attribute names, so their
# state_dict keys and shapes are exactly torchvision's.


class TvConv(nn.Module):
    """torchvision's BasicConv2d: conv (no bias) then BatchNorm (eps 0.001)."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)


class TvInception(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pp: int) -> None:
        super().__init__()
        self.branch1 = TvConv(cin, c1, 1)
        self.branch2 = nn.Sequential(TvConv(cin, c3r, 1), TvConv(c3r, c3, 3))
        self.branch3 = nn.Sequential(TvConv(cin, c5r, 1), TvConv(c5r, c5, 3))  # the "5x5" is 3x3
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), TvConv(cin, pp, 1))


class TvGoogLeNetAux(nn.Module):
    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__()
        self.conv = TvConv(cin, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)


class TvGoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = TvConv(3, 64, 7)
        self.conv2 = TvConv(64, 64, 1)
        self.conv3 = TvConv(64, 192, 3)
        self.inception3a = TvInception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = TvInception(256, 128, 128, 192, 32, 96, 64)
        self.inception4a = TvInception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = TvInception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = TvInception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = TvInception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = TvInception(528, 256, 160, 320, 32, 128, 128)
        self.inception5a = TvInception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = TvInception(832, 384, 192, 384, 48, 128, 128)
        self.aux1 = TvGoogLeNetAux(512, num_classes)
        self.aux2 = TvGoogLeNetAux(528, num_classes)
        self.fc = nn.Linear(1024, num_classes)


class TvInceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = TvConv(cin, 64, 1)
        self.branch5x5_1 = TvConv(cin, 48, 1)
        self.branch5x5_2 = TvConv(48, 64, 5)
        self.branch3x3dbl_1 = TvConv(cin, 64, 1)
        self.branch3x3dbl_2 = TvConv(64, 96, 3)
        self.branch3x3dbl_3 = TvConv(96, 96, 3)
        self.branch_pool = TvConv(cin, pool_features, 1)


class TvInceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = TvConv(cin, 384, 3)
        self.branch3x3dbl_1 = TvConv(cin, 64, 1)
        self.branch3x3dbl_2 = TvConv(64, 96, 3)
        self.branch3x3dbl_3 = TvConv(96, 96, 3)


class TvInceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = TvConv(cin, 192, 1)
        self.branch7x7_1 = TvConv(cin, c7, 1)
        self.branch7x7_2 = TvConv(c7, c7, (1, 7))
        self.branch7x7_3 = TvConv(c7, 192, (7, 1))
        self.branch7x7dbl_1 = TvConv(cin, c7, 1)
        self.branch7x7dbl_2 = TvConv(c7, c7, (7, 1))
        self.branch7x7dbl_3 = TvConv(c7, c7, (1, 7))
        self.branch7x7dbl_4 = TvConv(c7, c7, (7, 1))
        self.branch7x7dbl_5 = TvConv(c7, 192, (1, 7))
        self.branch_pool = TvConv(cin, 192, 1)


class TvInceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = TvConv(cin, 192, 1)
        self.branch3x3_2 = TvConv(192, 320, 3)
        self.branch7x7x3_1 = TvConv(cin, 192, 1)
        self.branch7x7x3_2 = TvConv(192, 192, (1, 7))
        self.branch7x7x3_3 = TvConv(192, 192, (7, 1))
        self.branch7x7x3_4 = TvConv(192, 192, 3)


class TvInceptionE(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch1x1 = TvConv(cin, 320, 1)
        self.branch3x3_1 = TvConv(cin, 384, 1)
        self.branch3x3_2a = TvConv(384, 384, (1, 3))
        self.branch3x3_2b = TvConv(384, 384, (3, 1))
        self.branch3x3dbl_1 = TvConv(cin, 448, 1)
        self.branch3x3dbl_2 = TvConv(448, 384, 3)
        self.branch3x3dbl_3a = TvConv(384, 384, (1, 3))
        self.branch3x3dbl_3b = TvConv(384, 384, (3, 1))
        self.branch_pool = TvConv(cin, 192, 1)


class TvInceptionAux(nn.Module):
    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = TvConv(cin, 128, 1)
        self.conv1 = TvConv(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)


class TvInception3(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = TvConv(3, 32, 3)
        self.Conv2d_2a_3x3 = TvConv(32, 32, 3)
        self.Conv2d_2b_3x3 = TvConv(32, 64, 3)
        self.Conv2d_3b_1x1 = TvConv(64, 80, 1)
        self.Conv2d_4a_3x3 = TvConv(80, 192, 3)
        self.Mixed_5b = TvInceptionA(192, 32)
        self.Mixed_5c = TvInceptionA(256, 64)
        self.Mixed_5d = TvInceptionA(288, 64)
        self.Mixed_6a = TvInceptionB(288)
        self.Mixed_6b = TvInceptionC(768, 128)
        self.Mixed_6c = TvInceptionC(768, 160)
        self.Mixed_6d = TvInceptionC(768, 160)
        self.Mixed_6e = TvInceptionC(768, 192)
        self.AuxLogits = TvInceptionAux(768, num_classes)
        self.Mixed_7a = TvInceptionD(768)
        self.Mixed_7b = TvInceptionE(1280)
        self.Mixed_7c = TvInceptionE(2048)
        self.fc = nn.Linear(2048, num_classes)


def _params(model: nn.Module, skip: tuple[str, ...] = ()) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith(skip))


def _torchvision_file(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """``model``'s state_dict with random values everywhere (BatchNorm statistics included),
    saved to ``path`` as torchvision's .pth files are (or as .safetensors)."""
    generator = torch.Generator().manual_seed(0)
    state = {
        k: (torch.rand(v.shape, generator=generator) + 0.5 if v.is_floating_point() else v + 7)
        for k, v in model.state_dict().items()
    }
    if path.suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    return state


def test_torchvision_transcriptions_have_torchvisions_parameter_counts() -> None:
    googlenet = TvGoogLeNet()
    assert _params(googlenet) == 13_004_888
    assert _params(googlenet, skip=("aux1", "aux2")) == 6_624_904
    inception = TvInception3()
    assert _params(inception) == 27_161_264
    assert _params(inception, skip=("AuxLogits",)) == 23_834_568
    assert set(googlenet_key_map(imagenet_stem=True)) == set(googlenet.state_dict())
    assert set(inception_v3_key_map()) == set(inception.state_dict())


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torchvision_googlenet_loads_completely(tmp_path: Path, suffix: str) -> None:
    state = _torchvision_file(TvGoogLeNet(), tmp_path / f"googlenet{suffix}")
    kwargs = {"in_chans": 1, "stem": "imagenet", "conv5x5_kernel": 3}
    model = create_model("googlenet", num_classes=8, **kwargs)
    report = init_weights(
        model,
        str(tmp_path / f"googlenet{suffix}"),
        model_name="googlenet",
        model_kwargs=kwargs,
        class_names=CLASSES8,
    )
    heads = {f"{m}.{p}" for m in ("fc", "aux1.fc2", "aux2.fc2") for p in ("weight", "bias")}
    assert set(report.reinitialised) == heads
    assert report.missing == report.skipped == report.unused == []
    assert len(report.loaded) == len(model.state_dict()) - len(heads)
    assert report.normalisation == (0.5, 0.5)
    ours = model.state_dict()
    for tv_key, our_key in googlenet_key_map(imagenet_stem=True).items():
        if our_key == "stem.0.0.weight":
            assert torch.allclose(ours[our_key], state[tv_key].sum(dim=1, keepdim=True))
            assert ours[our_key].shape == (64, 1, 7, 7)
        elif our_key not in heads:
            assert torch.equal(ours[our_key], state[tv_key]), our_key
    assert any("summed over the source's 3 RGB" in note for note in report.notes)


def test_torchvision_googlenet_into_the_fer_stem_skips_the_stem(tmp_path: Path) -> None:
    _torchvision_file(TvGoogLeNet(), tmp_path / "googlenet.pth")
    kwargs = {"in_chans": 1, "conv5x5_kernel": 3}
    model = create_model("googlenet", num_classes=7, **kwargs)
    report = init_weights(
        model, str(tmp_path / "googlenet.pth"), model_name="googlenet",
        model_kwargs=kwargs, class_names=list(EMOTIONS),
    )  # fmt: skip
    assert {key.split(".")[0] for key in report.unused} == {"conv1", "conv2", "conv3"}
    assert {key.split(".")[0] for key in report.missing} == {"stem"}
    assert any("stem=imagenet" in note for note in report.notes)
    assert "stem not loaded" in "\n".join(report.lines())


def test_torchvision_googlenet_needs_its_3x3_branches(tmp_path: Path) -> None:
    _torchvision_file(TvGoogLeNet(), tmp_path / "googlenet.pth")
    model = create_model("googlenet", stem="imagenet")
    with pytest.raises(InceptionFerError, match="--model-arg conv5x5_kernel=3"):
        init_weights(
            model, str(tmp_path / "googlenet.pth"), model_name="googlenet",
            model_kwargs={"stem": "imagenet"}, class_names=list(EMOTIONS),
        )  # fmt: skip
    with pytest.raises(InceptionFerError, match="fit --model googlenet, not inception_v3"):
        init_weights(
            create_model("inception_v3"), str(tmp_path / "googlenet.pth"),
            model_name="inception_v3", model_kwargs={}, class_names=list(EMOTIONS),
        )  # fmt: skip


def test_torchvision_inception_v3_loads_completely(tmp_path: Path) -> None:
    state = _torchvision_file(TvInception3(), tmp_path / "inception_v3_google.pth")
    model = create_model("inception_v3", num_classes=8, aux_logits=True)
    report = init_weights(
        model, str(tmp_path / "inception_v3_google.pth"), model_name="inception_v3",
        model_kwargs={"in_chans": 1, "aux_logits": True}, class_names=CLASSES8,
    )  # fmt: skip
    heads = {"fc.weight", "fc.bias", "aux.fc.weight", "aux.fc.bias"}
    assert set(report.reinitialised) == heads
    assert report.missing == report.skipped == report.unused == []
    ours = model.state_dict()
    for tv_key, our_key in inception_v3_key_map().items():
        if our_key == "stem.0.0.weight":
            assert torch.allclose(ours[our_key], state[tv_key].sum(dim=1, keepdim=True))
        elif our_key not in heads:
            assert torch.equal(ours[our_key], state[tv_key]), our_key


def test_unreadable_and_unmatched_sources(tmp_path: Path) -> None:
    model = create_model("inception_fer_s")
    args = {"model_name": "inception_fer_s", "model_kwargs": {}, "class_names": list(EMOTIONS)}
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(InceptionFerError, match=r"junk\.pth is not a loadable state_dict"):
        init_weights(model, str(tmp_path / "junk.pth"), **args)
    torch.save({"other.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(InceptionFerError, match=r"\(state_dict\): none of its 1 tensors fit "):
        init_weights(model, str(tmp_path / "other.pt"), **args)
    with pytest.raises(InceptionFerError, match="not a shipped model"):
        init_weights(model, str(tmp_path / "absent.safetensors"), **args)


def _source_run(tmp_path: Path) -> Path:
    """A 7-class inception_fer_s trained for one epoch."""
    config = TrainConfig(model="inception_fer_s", epochs=1, batch_size=16, threads=1, seed=1)
    fit(config, tmp_path / "source", data=tiny_data(), quiet=True, log=lambda _: None)
    return tmp_path / "source"


def _is_backbone(name: str) -> bool:
    return not name.startswith("fc.")


def test_frozen_backbone_stays_bit_identical(tmp_path: Path) -> None:
    source = _source_run(tmp_path)
    config = TrainConfig(
        model="inception_fer_s", epochs=2, batch_size=16, threads=1, optimizer="adamw",
        weight_decay=0.05, freeze_backbone=True, unfreeze_at=2, head_lr_mult=10.0,
    )  # fmt: skip
    trainer = Trainer(config, tiny_data(), tmp_path / "run", True, lambda _: None)
    report = trainer.initialize(str(source))
    assert report.reinitialised == [] and len(report.loaded) == report.total
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train_epoch(0)
    after = trainer.model.state_dict()
    for name, param in trainer.model.named_parameters():
        assert param.requires_grad != _is_backbone(name), name
        assert (param.grad is None) == _is_backbone(name), name
    for name in before:  # weights and BatchNorm statistics alike
        assert torch.equal(before[name], after[name]) == _is_backbone(name), name
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-2])
    trainer.train_epoch(1)  # --unfreeze-at 2: the whole network trains
    assert all(p.requires_grad for p in trainer.model.parameters())
    assert not torch.equal(before["stem.0.0.weight"], trainer.model.state_dict()["stem.0.0.weight"])
    assert not torch.equal(
        before["stem.0.1.running_mean"], trainer.model.state_dict()["stem.0.1.running_mean"]
    )


def test_resume_across_the_unfreeze_epoch_is_exact(tmp_path: Path) -> None:
    source = _source_run(tmp_path)
    config = TrainConfig(
        model="inception_fer_s", epochs=3, batch_size=16, threads=1, optimizer="adamw",
        freeze_backbone=True, unfreeze_at=2, head_lr_mult=5.0, init=str(source), seed=2,
    )  # fmt: skip
    data = tiny_data()
    fit(config, tmp_path / "full", data=data, quiet=True, log=lambda _: None)

    with pytest.raises(KeyboardInterrupt):
        fit(config, tmp_path / "cut", data=data, quiet=True, log=interrupt_after(1))
    resume(tmp_path / "cut", data=data, quiet=True, log=lambda _: None)
    full = load_checkpoint(tmp_path / "full" / "last.safetensors").model.state_dict()
    cut = load_checkpoint(tmp_path / "cut" / "last.safetensors").model.state_dict()
    for name in full:
        assert torch.equal(full[name], cut[name]), name


def _eight_class_folders(root: Path) -> Path:
    """train/ and test/ folders of 8 classes, the eighth one 'contempt' (as in CK+)."""
    for split, n, seed in (("train", 64, 5), ("test", 32, 6)):
        images, labels = make_faces(n, num_classes=8, seed=seed)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = root / split / CLASSES8[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    return root


def test_fine_tune_to_eight_classes_then_evaluate_and_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _source_run(tmp_path)
    data = _eight_class_folders(tmp_path / "ckplus")
    run = tmp_path / "eight"
    args = [
        "train", "--model", "inception_fer_s", "--data", str(data), "--out", str(run),
        "--classes", ",".join(CLASSES8), "--init", str(source), "--freeze-backbone",
        "--unfreeze-at", "2", "--epochs", "2", "--batch-size", "16", "--threads", "1", "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "re-initialised head (2): fc.weight, fc.bias" in out
    assert "classes differ from the source's" in out
    assert "backbone frozen" in out and "backbone unfrozen" in out
    checkpoint = load_checkpoint(run)
    assert checkpoint.meta.class_names == CLASSES8
    source_meta = load_checkpoint(source).meta
    assert (checkpoint.meta.mean, checkpoint.meta.std) == (source_meta.mean, source_meta.std)
    assert json.loads((run / "run.json").read_text())["classes"] == CLASSES8

    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    report = json.loads((run / "eval-val-none" / "report.json").read_text())
    assert "contempt" in json.dumps(report)

    recognizer = EmotionRecognizer(model=run)
    assert recognizer.classes == tuple(CLASSES8)
    faces = recognizer.predict(skimage_data.astronaut())
    assert faces and list(faces[0].probabilities) == CLASSES8
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    capsys.readouterr()
    assert main(["predict", str(photo), "--model", str(run), "--json"]) == 0
    assert "contempt" in capsys.readouterr().out


def test_bad_transfer_options() -> None:
    with pytest.raises(InceptionFerError, match="--unfreeze-at must be an epoch >= 2"):
        TrainConfig(unfreeze_at=3)
    with pytest.raises(InceptionFerError, match="--unfreeze-at must be an epoch >= 2"):
        TrainConfig(freeze_backbone=True, unfreeze_at=1)
    with pytest.raises(InceptionFerError, match="head lr multiplier must be > 0"):
        TrainConfig(head_lr_mult=0.0)


@pytest.mark.skipif(
    "inception_fer_f_pair" not in list_pretrained(), reason="the pair is not shipped"
)
def test_init_from_the_shipped_pair_says_it_is_an_ensemble() -> None:
    """The default is two networks: one network cannot start from it, and the error says why."""
    model = create_model("inception_fer_f")
    args = {"model_name": "inception_fer_f", "model_kwargs": {}, "class_names": list(EMOTIONS)}
    with pytest.raises(InceptionFerError, match=r"--init default \(ensemble checkpoint"):
        init_weights(model, "default", **args)
