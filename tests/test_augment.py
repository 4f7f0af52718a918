"""inception_fer.data augmentation and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inception_fer.data import AugmentConfig, BatchAugment, compute_mean_std, to_float
from inception_fer.errors import InceptionFerError


def batch(b: int = 8, c: int = 1, size: int = 48) -> torch.Tensor:
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(0))


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_from_string_forms() -> None:
    assert AugmentConfig.from_string("default") == AugmentConfig()
    none = AugmentConfig.from_string("none")
    assert not none.enabled
    config = AugmentConfig.from_string("flip,translate=0.2,rotate=15,scale=0.1,erase=0.5")
    assert config.flip and config.translate == 0.2 and config.rotate == 15
    assert config.scale == pytest.approx((0.9, 1.1)) and config.erase_prob == 0.5
    only_rotate = AugmentConfig.from_string("rotate")
    assert only_rotate.rotate == 10 and not only_rotate.flip and only_rotate.translate == 0
    assert AugmentConfig.from_string("default,flip=0,erase_fill=random") == AugmentConfig(
        flip=False, erase_fill="random"
    )
    assert AugmentConfig.from_string("scale=0.8:1.3").scale == (0.8, 1.3)
    assert AugmentConfig.from_string("default,translate=0,crop=40").crop == 40
    assert AugmentConfig.from_string("crop").crop == 40
    assert AugmentConfig.from_string("flip,shift").shift == 2
    shifted = AugmentConfig.from_string("flip,shift=3,erase=0.5")
    assert shifted.shift == 3 and shifted.enabled and not shifted.geometric
    cropped = AugmentConfig(crop=44, translate=0.0)
    originals = (
        AugmentConfig(),
        none,
        config,
        AugmentConfig(erase_fill="random"),
        cropped,
        shifted,
    )
    for original in originals:
        assert AugmentConfig.from_string(original.to_string()) == original


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("flip,blur=2", "unknown augmentation 'blur'; valid: flip"),
        ("rotate=abc", "bad augmentation value 'rotate=abc'"),
        ("erase=2", "erase must be a probability"),
        ("erase_fill=mean", "erase_fill must be one of zero, random"),
        ("scale=1.5", "scale must be 0 < low <= high"),
        ("crop=4", "crop must be 0 \\(off\\) or at least 8"),
        ("crop=4.5", "bad augmentation value 'crop=4.5'"),
        ("shift=-1", "shift must be 0 \\(off\\) or more pixels"),
        ("shift=1.5", "bad augmentation value 'shift=1.5'"),
    ],
)
def test_from_string_errors(spec: str, message: str) -> None:
    with pytest.raises(InceptionFerError, match=message):
        AugmentConfig.from_string(spec)


def test_none_is_identity_and_eval_is_identity() -> None:
    x = batch()
    assert BatchAugment(AugmentConfig.from_string("none"))(x, seeded()) is x
    module = BatchAugment().eval()
    assert module(x, seeded()) is x


@pytest.mark.parametrize("spec", ["default", "flip", "rotate=30", "erase=1,erase_fill=random"])
def test_shapes_dtypes_ranges(spec: str) -> None:
    x = batch(c=3)
    out = BatchAugment(AugmentConfig.from_string(spec))(x, seeded())
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()
    if "random" not in spec:  # bilinear + reflection + zero fill stay inside the input range
        assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.equal(out, x)


def test_half_and_channels_last_kept() -> None:
    x = batch(c=3).to(memory_format=torch.channels_last)
    out = BatchAugment()(x, seeded())
    assert out.is_contiguous(memory_format=torch.channels_last)
    half = BatchAugment()(batch().half(), seeded())
    assert half.dtype == torch.float16


def test_deterministic_with_generator() -> None:
    x = batch()
    module = BatchAugment()
    first, second = module(x, seeded(5)), module(x, seeded(5))
    assert torch.equal(first, second)
    assert not torch.equal(first, module(x, seeded(6)))


def test_flip_really_flips() -> None:
    x = batch(b=64)
    out = BatchAugment(AugmentConfig.from_string("flip"))(x, seeded())
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert (flipped | kept).all()
    assert 10 < int(flipped.sum()) < 54


def test_flip_through_affine_is_exact() -> None:
    x = batch(b=64)
    config = AugmentConfig(flip=True, translate=0.0, rotate=0.0, scale=(1.0, 1.0001), erase_prob=0)
    out = BatchAugment(config)(x, seeded())
    inner = (slice(None), slice(8, 40), slice(8, 40))
    as_flip = torch.tensor(
        [
            torch.allclose(o[inner], i.flip(-1)[inner], atol=1e-2)
            for o, i in zip(out, x, strict=True)
        ]
    )
    as_kept = torch.tensor(
        [torch.allclose(o[inner], i[inner], atol=1e-2) for o, i in zip(out, x, strict=True)]
    )
    assert (as_flip ^ as_kept).all() and as_flip.any() and as_kept.any()


def test_scale_zooms_about_the_centre() -> None:
    x = torch.zeros(1, 1, 48, 48)
    x[..., 19:29, 19:29] = 1.0  # 10x10 centred square
    zoom = AugmentConfig(flip=False, translate=0, rotate=0, scale=(1.2, 1.2), erase_prob=0)
    out = BatchAugment(zoom)(x, seeded())
    assert int((out[0, 0] > 0.5).sum()) == 12 * 12


def test_translation_moves_content() -> None:
    x = torch.zeros(32, 1, 48, 48)
    x[..., 20:28, 20:28] = 1.0  # centred square, shifts of up to 4.8 px keep it off the border
    shift = AugmentConfig(flip=False, translate=0.1, rotate=0, scale=(1, 1), erase_prob=0)
    out = BatchAugment(shift)(x, seeded())
    rows = torch.arange(48.0)[:, None]
    mass = out.sum(dim=(1, 2, 3))
    centre_y = (out[:, 0] * rows).sum(dim=(1, 2)) / mass
    assert torch.allclose(mass, torch.full_like(mass, 64.0), atol=1e-3)
    assert (centre_y - 23.5).abs().max() <= 4.8 + 1e-3
    assert (centre_y - 23.5).abs().max() > 2.0


def _windows(image: torch.Tensor, crop: int) -> torch.Tensor:
    """Every crop x crop window of a (C, H, W) image, (n_windows, C, crop, crop)."""
    patches = image.unfold(1, crop, 1).unfold(2, crop, 1)  # C, rows, cols, crop, crop
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, image.shape[0], crop, crop)


def test_crop_alone_cuts_whole_pixel_windows_at_random_places() -> None:
    x = batch(b=32, c=2)
    config = AugmentConfig.none()
    config.crop = 40
    out = BatchAugment(config)(x, seeded())
    assert out.shape == (32, 2, 40, 40)
    places = []
    for image, crop in zip(x, out, strict=True):
        windows = _windows(image, 40)
        error = (windows - crop).abs().amax(dim=(1, 2, 3))
        assert error.min() < 1e-5  # exactly one of the 81 windows, no interpolation blur
        places.append(int(error.argmin()))
    assert len(set(places)) > 10  # 32 images, 81 possible windows: the places vary


def test_crop_composes_with_the_warp() -> None:
    x = torch.zeros(64, 1, 48, 48)
    x[..., 20:28, 20:28] = 1.0  # a centred 8x8 square
    config = AugmentConfig(flip=True, translate=0.0, rotate=0, scale=(1.25, 1.25), crop=40,
                           erase_prob=0)  # fmt: skip
    out = BatchAugment(config)(x, seeded())
    assert out.shape == (64, 1, 40, 40)
    mass = out.sum(dim=(1, 2, 3))
    assert torch.allclose(mass, torch.full_like(mass, 100.0), atol=1e-2)  # zoomed to 10x10
    rows = torch.arange(40.0)[:, None]
    centre_y = (out[:, 0] * rows).sum(dim=(1, 2)) / mass
    # The square's centre 23.5 lands at 23.5 - top, top in 0..8: 15.5 .. 23.5 in the crop.
    assert centre_y.min() >= 15.5 - 1e-3 and centre_y.max() <= 23.5 + 1e-3
    assert centre_y.max() - centre_y.min() > 4


def test_a_crop_of_the_whole_image_does_not_resample_it() -> None:
    x = batch(b=16)
    config = AugmentConfig(flip=True, translate=0.0, rotate=0.0, scale=(1.0, 1.0), crop=48,
                           erase_prob=0.0)  # fmt: skip
    out = BatchAugment(config)(x, seeded())
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and same.any() and mirrored.any()  # to the bit
    config.rotate = 10.0
    assert not torch.equal(BatchAugment(config)(x, seeded()), x)


def test_crop_larger_than_the_images_is_an_error() -> None:
    with pytest.raises(InceptionFerError, match="crop=40 is larger than the 32x32 images"):
        BatchAugment(AugmentConfig(crop=40))(batch(size=32), seeded())


def test_shift_moves_whole_pixels_and_repeats_the_edges() -> None:
    x = batch(b=64, c=2)
    config = AugmentConfig.none()
    config.shift = 2
    out = BatchAugment(config)(x.to(memory_format=torch.channels_last), seeded())
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")  # how the views of --tta shift are made
    moves = []
    for index, image in enumerate(out):
        matches = [
            (top - 2, left - 2)
            for top in range(5)
            for left in range(5)
            if torch.equal(image, padded[index, :, top : top + 48, left : left + 48])
        ]
        assert len(matches) == 1  # to the bit: no interpolation
        moves.append(matches[0])
    assert len(set(moves)) > 12  # 64 images, 25 possible moves: they vary
    assert {dy for dy, _ in moves} == {dx for _, dx in moves} == {-2, -1, 0, 1, 2}


def test_shift_too_large_for_the_images_is_an_error() -> None:
    with pytest.raises(InceptionFerError, match="shift=4 is too large for 8x8 images"):
        BatchAugment(AugmentConfig.from_string("shift=4"))(batch(size=8), seeded())


def test_erase_covers_a_rectangle() -> None:
    x = torch.ones(200, 1, 48, 48)
    config = AugmentConfig(flip=False, translate=0, rotate=0, scale=(1, 1), erase_prob=0.5)
    out = BatchAugment(config)(x, seeded())
    erased = (out == 0).flatten(1).sum(1).float() / (48 * 48)
    hit = erased > 0
    assert 60 < int(hit.sum()) < 140
    assert erased[hit].min() >= 0.005 and erased[hit].max() <= 0.35
    for image in out[hit][:20]:
        rows, cols = (image[0] == 0).nonzero(as_tuple=True)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box == len(rows)  # the zeros form a full rectangle


def test_compute_mean_std_exact() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(50, 48, 48), dtype=np.uint8)
    mean, std = compute_mean_std(images)
    scaled = images.astype(np.float64) / 255.0
    assert mean == pytest.approx(scaled.mean(), abs=1e-9)
    assert std == pytest.approx(scaled.std(), abs=1e-9)
    with pytest.raises(InceptionFerError, match="uint8"):
        compute_mean_std(scaled)


def test_to_float() -> None:
    images = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    out = to_float(images)
    assert out.shape == (1, 1, 2, 2) and out.dtype == torch.float32
    assert out.flatten().tolist() == pytest.approx([0.0, 1.0, 0.2, 0.4])
    assert to_float(images[:, None]).shape == (1, 1, 2, 2)
    with pytest.raises(InceptionFerError, match="uint8"):
        to_float(out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_and_keeps_layout() -> None:
    module = BatchAugment(AugmentConfig.from_string("default,erase=0.5"))
    x = batch(b=32, c=3)
    on_cpu = module(x, seeded(3))
    on_cuda = module(x.cuda(), seeded(3))  # CPU generator: same draws, moved to the GPU
    assert on_cuda.device.type == "cuda"
    assert torch.allclose(on_cuda.cpu(), on_cpu, atol=1e-4)
    cuda_gen = torch.Generator(device="cuda").manual_seed(3)
    first = module(x.cuda(), cuda_gen)
    assert torch.equal(first, module(x.cuda(), torch.Generator(device="cuda").manual_seed(3)))
    noisy = BatchAugment(AugmentConfig.from_string("erase=1,erase_fill=random"))
    assert noisy(x.cuda(), cuda_gen).device.type == "cuda"
    for dtype in (torch.float16, torch.bfloat16):
        x_cl = x.cuda().to(dtype).contiguous(memory_format=torch.channels_last)
        out = module(x_cl, cuda_gen)
        assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
