"""Checkpoint files: round trip, nested training state, and every way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inception_fer.errors import CheckpointError
from inception_fer.training.checkpoint import (
    CheckpointMeta,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)


def _meta(**overrides) -> CheckpointMeta:
    values = dict(
        model_name="mini_xception",
        model_kwargs={"in_chans": 1},
        class_names=["a", "b", "c"],
        mean=0.5,
        std=0.25,
    )
    values.update(overrides)
    return CheckpointMeta(**values)


def test_round_trip_restores_weights_meta_and_state(tmp_path: Path) -> None:
    meta = _meta(epoch=3, metrics={"val_acc": 0.5})
    model = meta.build_model()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 48, 48)).sum().backward()
    optimizer.step()
    state = {
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "rows": [{"x": 1.0}],
    }
    path = save_checkpoint(tmp_path / "c.safetensors", model, meta, state)

    loaded = load_checkpoint(path, with_train_state=True)
    assert loaded.meta == meta
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert loaded.train_state is not None
    assert torch.equal(loaded.train_state["rng"], state["rng"])
    assert loaded.train_state["rows"] == [{"x": 1.0}]
    fresh = torch.optim.Adam(loaded.model.parameters())
    fresh.load_state_dict(loaded.train_state["optimizer"])
    exp_avg = optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], exp_avg)


def test_flatten_keeps_int_keys_and_nesting() -> None:
    tensors: dict[str, torch.Tensor] = {}
    state = {0: {"t": torch.ones(2)}, "list": [1, None, torch.zeros(1)], "s": "x"}
    skeleton = flatten_state(state, tensors, "state.")
    assert len(tensors) == 2
    back = unflatten_state(skeleton, tensors)
    assert set(back) == {0, "list", "s"}
    assert torch.equal(back[0]["t"], torch.ones(2))
    assert back["list"][1] is None


def test_weights_only_checkpoint_has_no_train_state(tmp_path: Path) -> None:
    meta = _meta()
    path = save_checkpoint(tmp_path / "w.safetensors", meta.build_model(), meta)
    assert load_checkpoint(path, with_train_state=True).train_state is None


def test_run_directory_resolves_to_best(tmp_path: Path) -> None:
    meta = _meta(epoch=7)
    save_checkpoint(tmp_path / "best.safetensors", meta.build_model(), meta)
    assert load_checkpoint(tmp_path).meta.epoch == 7


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(path)


def test_plain_safetensors_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match="not an inception-fer checkpoint"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_model(tmp_path: Path) -> None:
    meta = _meta()
    path = save_checkpoint(tmp_path / "c.safetensors", meta.build_model(), meta)
    # Same file, but claim a different class count: the head no longer fits.
    from inception_fer.training.checkpoint import load_model_weights, read_checkpoint_file

    _, tensors = read_checkpoint_file(path)
    other = _meta(class_names=["a", "b"]).build_model()
    with pytest.raises(CheckpointError, match=r"does not fit .*wrong shape"):
        load_model_weights(other, tensors, str(path))


def test_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    meta = _meta(epoch=1)
    model = meta.build_model()
    path = save_checkpoint(tmp_path / "last.safetensors", model, meta)
    before = path.read_bytes()

    def write_half_then_fail(self: Path, data: bytes) -> int:
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    with pytest.raises(
        CheckpointError, match=r"No space left on device.*previous checkpoint is intact"
    ):
        save_checkpoint(path, model, _meta(epoch=2))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).meta.epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]
