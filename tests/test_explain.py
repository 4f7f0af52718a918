"""Grad-CAM: maps of the right shape and range, for the right class, and the explain command."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inception_fer import create_model
from inception_fer.cli.main import main
from inception_fer.errors import InceptionFerError
from inception_fer.explain import GradCamExplainer, grad_cam

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image gives the test's face")


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_grad_cam_shapes_range_and_model_left_alone() -> None:
    torch.manual_seed(0)
    model = create_model("inception_fer_s").train()
    x = torch.randn(3, 1, 48, 48)
    cams, probs = grad_cam(model, x)
    assert cams.shape == (3, 48, 48) and probs.shape == (3, 7)
    assert float(cams.min()) >= 0 and float(cams.max()) <= 1
    assert torch.allclose(probs.sum(1), torch.ones(3), atol=1e-5)
    assert model.training and all(p.grad is None for p in model.parameters())
    # Another class gives another map; a named earlier layer gives a map too.
    other, _ = grad_cam(model, x, targets=(probs.argmax(1) + 1) % 7)
    assert not torch.allclose(cams, other)
    fine, _ = grad_cam(model, x, layer="stages.0")
    assert fine.shape == (3, 48, 48) and not torch.allclose(fine, cams)


def test_grad_cam_finds_the_evidence() -> None:
    """A network whose class 1 sums the top-left quarter of its input: on an input bright only
    there, class 1's map lights up there and nowhere else; class 0 (a constant) has no map."""

    class Quarter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 1, bias=False)
            torch.nn.init.ones_(self.conv.weight)

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

        def forward_head(self, f: torch.Tensor) -> torch.Tensor:
            evidence = f[:, 0, :4, :4].sum(dim=(1, 2))
            return torch.stack([torch.zeros_like(evidence), evidence], dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.forward_head(self.forward_features(x))

    x = torch.zeros(1, 1, 8, 8)
    x[..., :3, :3] = 1
    cams, probs = grad_cam(Quarter(), x)
    assert probs.argmax() == 1
    assert float(cams[0, :2, :2].min()) > 0.9 and float(cams[0, 4:, 4:].max()) == 0
    none, _ = grad_cam(Quarter(), x, targets=torch.tensor([0]))
    assert float(none.abs().max()) == 0


def test_bad_layer_and_target(astronaut: Path) -> None:
    with pytest.raises(InceptionFerError, match="has no layer 'nope'"):
        grad_cam(create_model("inception_fer_s"), torch.zeros(1, 1, 48, 48), layer="nope")
    with pytest.raises(InceptionFerError, match="unknown class 'bored'"):
        GradCamExplainer().explain(cv2.imread(str(astronaut)), target="bored")


def test_smile_evidence_is_in_the_lower_face(astronaut: Path) -> None:
    (explained,) = GradCamExplainer().explain(cv2.imread(str(astronaut)))
    assert explained.target == "happy"
    rows = explained.cam.sum(axis=1)
    assert rows[24:].sum() > rows[:24].sum()  # the mouth, not the forehead


def test_explain_command_writes_overlays(astronaut: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    assert main(["explain", str(astronaut), str(bad), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "astronaut.jpg: face 0 at" in text and "happy" in text and "bad.png: error:" in text
    photo = cv2.imread(str(astronaut))
    overview = cv2.imread(str(out / "astronaut.gradcam.png"))
    panel = cv2.imread(str(out / "astronaut.face0.gradcam.png"))
    assert overview.shape == photo.shape and panel.shape == (192, 388, 3)
    changed = np.abs(overview.astype(int) - photo.astype(int)).sum(axis=2) > 30
    ys, xs = np.nonzero(changed)
    # Only the face region (the astronaut's face is near (220, 120) in this 512x512 photo).
    assert 150 < xs.mean() < 300 and 50 < ys.mean() < 200 and changed.mean() < 0.15
    assert main(["explain", str(astronaut), "--target", "bored", "-o", str(out)]) == 2
    assert "unknown class 'bored'" in capsys.readouterr().err
    assert main(["explain", str(astronaut), "--layer", "nope", "-o", str(out)]) == 2
    assert "has no layer 'nope'" in capsys.readouterr().err
