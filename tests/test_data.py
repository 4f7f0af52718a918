"""inception_fer.data: reading FER2013 as CSV, Kaggle folders, .npy arrays and class folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inception_fer.classes import EMOTIONS
from inception_fer.data import FerData, load_fer
from inception_fer.errors import DataError

HEADER = "emotion,pixels,Usage\n"


def pixel_row(label: int, usage: str, value: int = 7) -> str:
    return f"{label},{' '.join([str(value)] * 2304)},{usage}\n"


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(rows))
    return path


def write_image(path: Path, value: int, size: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size, size), value, dtype=np.uint8)
    image[:8, :16] = 255 - value  # top-left block: a transposed or flipped read would show
    assert cv2.imwrite(str(path), image)


def make_kaggle(root: Path) -> Path:
    """train: 3 happy + 2 sad; test: 2 PublicTest + 1 PrivateTest + 1 unprefixed."""
    for i in range(3):
        write_image(root / "train" / "happy" / f"Training_{i}.jpg", 100)
    for i in range(2):
        write_image(root / "train" / "sad" / f"Training_{10 + i}.png", 50)
    write_image(root / "test" / "happy" / "PublicTest_1.jpg", 100)
    write_image(root / "test" / "sad" / "PublicTest_2.jpg", 50)
    write_image(root / "test" / "sad" / "PrivateTest_3.jpg", 50)
    write_image(root / "test" / "angry" / "face.png", 20)
    (root / "train" / "happy" / ".DS_Store").write_text("x")
    (root / "train" / "happy" / "notes.txt").write_text("x")
    (root / "train" / ".ipynb_checkpoints").mkdir()
    return root


# --- CSV ----------------------------------------------------------------------------------


def test_csv_splits_by_usage(tmp_path: Path) -> None:
    csv = write_csv(
        tmp_path / "fer2013.csv",
        [
            pixel_row(0, "Training", 1),
            pixel_row(3, "Training", 2),
            pixel_row(6, "Training", 3),
            pixel_row(4, "PublicTest", 4),
            pixel_row(5, "PrivateTest", 5),
            pixel_row(1, "PrivateTest", 6),
        ],
    )
    for path in (csv, tmp_path):  # the file or the folder holding it
        data = load_fer(path)
        assert data.source == "csv"
        assert data.class_names == EMOTIONS
        assert data.train.labels.tolist() == [0, 3, 6]
        assert data.train.images.shape == (3, 48, 48)
        assert data.train.images.dtype == np.uint8
        assert data.train.images[1, 10, 10] == 2
        assert data.val.labels.tolist() == [4]
        assert data.test is not None
        assert data.test.labels.tolist() == [5, 1]
        assert data.test.images[0, 47, 47] == 5


def test_csv_pixel_order_is_row_major(tmp_path: Path) -> None:
    values = np.arange(2304) % 256
    row = f"3,{' '.join(map(str, values))},Training\n"
    write_csv(tmp_path / "fer2013.csv", [row, pixel_row(3, "PublicTest")])
    data = load_fer(tmp_path)
    assert np.array_equal(data.train.images[0], values.reshape(48, 48).astype(np.uint8))


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (f"3,{' '.join(['1'] * 2000)},Training\n", "has 2000 pixel values, expected 2304"),
        (f"3,{' '.join(['1'] * 2303)} 2.5,Training\n", "'2.5' is not an integer"),
        (f"3,{' '.join(['1'] * 2303)} 256,Training\n", "256 is outside 0..255"),
        (f"7,{' '.join(['1'] * 2304)},Training\n", "label 7 is out of range 0..6"),
        (f"x,{' '.join(['1'] * 2304)},Training\n", "emotion 'x' is not an integer"),
        (f"3,{' '.join(['1'] * 2304)},Validation\n", "unknown Usage 'Validation'"),
    ],
)
def test_csv_bad_row_names_line(tmp_path: Path, bad_row: str, message: str) -> None:
    rows = [pixel_row(0, "Training"), pixel_row(1, "Training"), bad_row, pixel_row(2, "Training")]
    write_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(DataError, match=r"line 4: .*" + message.replace(".", r"\.")):
        load_fer(tmp_path)


def test_csv_truncated_last_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "fer2013.csv", [pixel_row(0, "Training"), pixel_row(1, "Training")])
    with path.open("a") as handle:
        handle.write("3,12 34 56")  # cut off mid-row, no newline
    with pytest.raises(DataError, match=r"line 4: expected 3 fields .* got 2"):
        load_fer(path)


def test_csv_skip_bad_rows(tmp_path: Path) -> None:
    rows = [pixel_row(0, "Training"), "3,1 2 3,Training\n", pixel_row(0, "Training")]
    path = write_csv(tmp_path / "fer2013.csv", rows)
    data = load_fer(path, skip_bad=True, val_fraction=0.5)
    assert len(data.train) + len(data.val) == 2
    assert data.bad_files == (f"{path}:3",)


def test_csv_without_header_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "fer2013.csv").write_text(pixel_row(0, "Training"))
    with pytest.raises(DataError, match="line 1: expected a header"):
        load_fer(tmp_path)


def test_csv_resized_to_image_size_with_warning(tmp_path: Path) -> None:
    write_csv(tmp_path / "fer2013.csv", [pixel_row(0, "Training"), pixel_row(1, "PublicTest")])
    with pytest.warns(UserWarning, match="resized 2 of 2 images .* to 64x64"):
        data = load_fer(tmp_path, image_size=64)
    assert data.train.images.shape == (1, 64, 64)


# --- Image folders -------------------------------------------------------------------------


def test_kaggle_folders(tmp_path: Path) -> None:
    data = load_fer(make_kaggle(tmp_path / "fer"))
    assert data.source == "folders"
    assert data.class_names == EMOTIONS
    happy, sad, angry = EMOTIONS.index("happy"), EMOTIONS.index("sad"), EMOTIONS.index("angry")
    assert sorted(data.train.labels.tolist()) == [happy] * 3 + [sad] * 2
    assert sorted(data.val.labels.tolist()) == sorted([happy, sad, angry])  # Public + unprefixed
    assert data.test is not None and data.test.labels.tolist() == [sad]
    assert data.train.images.shape == (5, 48, 48)
    assert data.train.images.flags.c_contiguous
    first_happy = data.train.images[data.train.labels == happy][0]
    assert abs(int(first_happy[2, 12]) - 155) <= 3
    assert abs(int(first_happy[12, 2]) - 100) <= 3
    assert abs(int(first_happy[2, 40]) - 100) <= 3
    assert data.bad_files == ()


def test_kaggle_without_private_has_no_test(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "fer")
    (root / "test" / "sad" / "PrivateTest_3.jpg").unlink()
    data = load_fer(root)
    assert data.test is None
    with pytest.raises(DataError, match="no test split"):
        data.split("test")
    assert data.split("val") is data.val
    with pytest.raises(DataError, match="unknown split 'dev'"):
        data.split("dev")


def test_train_val_test_folders(tmp_path: Path) -> None:
    write_image(tmp_path / "train" / "happy" / "a.jpg", 10)
    write_image(tmp_path / "validation" / "happy" / "b.jpg", 20)
    write_image(tmp_path / "test" / "happy" / "PublicTest_c.jpg", 30)
    data = load_fer(tmp_path)
    assert data.test is not None
    assert [len(data.train), len(data.val), len(data.test)] == [1, 1, 1]


def test_single_class_folder_is_all_train(tmp_path: Path) -> None:
    for i in range(10):
        write_image(tmp_path / "Happy" / f"{i}.png", 100)
        write_image(tmp_path / "surprised" / f"{i}.png", 200)
    data = load_fer(tmp_path)
    assert len(data.train) + len(data.val) == 20
    assert len(data.val) == 2  # default val_fraction 0.1, one per class
    assert sorted(data.val.labels.tolist()) == [EMOTIONS.index("happy"), EMOTIONS.index("surprise")]


def make_ckplus(root: Path) -> Path:
    for name, value in (("anger", 10), ("sadness", 20), ("contempt", 30)):
        for i in range(4):
            write_image(root / name / f"S{i:03d}.png", value)
    return root


def test_unknown_class_folder_lists_known_names(tmp_path: Path) -> None:
    root = make_ckplus(tmp_path)
    with pytest.raises(DataError, match=r"contempt is not a known emotion; known names: angry"):
        load_fer(root)


def test_ckplus_with_classes(tmp_path: Path) -> None:
    root = make_ckplus(tmp_path)
    data = load_fer(root, classes=["Contempt", "angry", "sad"], val_fraction=0.25)
    assert data.class_names == ("Contempt", "angry", "sad")
    all_labels = np.concatenate([data.train.labels, data.val.labels])
    all_images = np.concatenate([data.train.images, data.val.images])
    assert np.bincount(all_labels).tolist() == [4, 4, 4]
    for label, value in ((0, 30), (1, 10), (2, 20)):  # contempt=30, anger=10, sadness=20
        assert abs(int(all_images[all_labels == label][0, 20, 20]) - value) <= 2


def test_folder_not_in_classes(tmp_path: Path) -> None:
    root = make_ckplus(tmp_path)
    with pytest.raises(DataError, match=r"contempt is not in classes \['anger', 'sad'\]"):
        load_fer(root, classes=["anger", "sad"])


def test_duplicate_classes_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="same class twice"):
        load_fer(make_ckplus(tmp_path), classes=["anger", "angry", "contempt"])


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds no dataset"):
        load_fer(tmp_path)
    (tmp_path / "train" / "happy").mkdir(parents=True)
    (tmp_path / "train" / "happy" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=r"train has no images"):
        load_fer(tmp_path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_fer(tmp_path / "nope")


def test_corrupt_image_named(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "fer")
    good = (root / "train" / "happy" / "Training_0.jpg").read_bytes()
    bad = root / "train" / "happy" / "Training_9.jpg"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"Training_9\.jpg is corrupt or truncated"):
        load_fer(root)


def test_skip_bad_counts(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "fer")
    (root / "train" / "happy" / "Training_8.jpg").write_bytes(b"not a jpeg")
    (root / "train" / "sad" / "Training_9.png").write_bytes(b"")
    data = load_fer(root, skip_bad=True)
    assert len(data.train) == 5
    assert sorted(Path(name).name for name in data.bad_files) == [
        "Training_8.jpg",
        "Training_9.png",
    ]


def test_odd_sized_and_color_images_resized_with_one_warning(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "fer")
    write_image(root / "train" / "happy" / "big.png", 100, size=96)
    color = np.zeros((60, 60, 4), dtype=np.uint8)
    color[..., 1] = 200
    color[..., 3] = 255
    cv2.imwrite(str(root / "train" / "sad" / "rgba.png"), color)
    deep = np.full((48, 48), 40000, dtype=np.uint16)
    cv2.imwrite(str(root / "train" / "sad" / "deep.png"), deep)
    with pytest.warns(UserWarning, match=r"resized 2 of 12 images") as record:
        data = load_fer(root)
    assert len(record) == 1
    assert len(data.train) == 8
    gray = cv2.cvtColor(np.full((1, 1, 3), (0, 200, 0), np.uint8), cv2.COLOR_BGR2GRAY)[0, 0]
    assert int(gray) in data.train.images[:, 30, 30].tolist()
    assert 40000 >> 8 in data.train.images[:, 30, 30].tolist()


# --- .npy -------------------------------------------------------------------------------------


def save_npy(folder: Path, **arrays: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    return folder


def base_images(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)


@pytest.mark.parametrize("form", ["nhw", "nhwc1", "nhwc3", "nchw", "flat", "float01", "float255"])
def test_npy_image_forms(tmp_path: Path, form: str) -> None:
    gray = base_images(6)
    x = {
        "nhw": gray,
        "nhwc1": gray[..., None],
        "nhwc3": np.repeat(gray[..., None], 3, axis=3),
        "nchw": gray[:, None],
        "flat": gray.reshape(6, -1),
        "float01": gray.astype(np.float32) / 255.0,
        "float255": gray.astype(np.float64),
    }[form]
    y = np.array([0, 0, 3, 3, 6, 6])
    folder = save_npy(tmp_path, X_train=x, y_train=y, X_test=x[:2], y_test=y[:2])
    data = load_fer(folder, val_fraction=0.5)
    assert data.source == "npy"
    assert data.test is not None
    assert np.abs(data.test.images.astype(int) - gray[:2]).max() <= 1
    assert data.test.images.dtype == np.uint8
    merged = np.concatenate([data.train.images, data.val.images])
    labels = np.concatenate([data.train.labels, data.val.labels])
    assert len(merged) == 6
    for image, label in zip(merged, labels, strict=True):
        error = np.abs(gray.astype(int) - image).max(axis=(1, 2))
        assert error.min() <= 1 and y[error.argmin()] == label


def test_npy_one_hot_and_val(tmp_path: Path) -> None:
    x = base_images(4)
    one_hot = np.eye(7, dtype=np.float32)[[3, 6, 0, 1]]
    save_npy(tmp_path, X_train=x, y_train=one_hot, X_val=x[:2], y_val=np.array([[5], [4]]))
    data = load_fer(tmp_path / "X_train.npy")
    assert data.train.labels.tolist() == [3, 6, 0, 1]
    assert data.train.labels.dtype == np.int64
    assert data.val.labels.tolist() == [5, 4]
    assert data.test is None


def test_npy_length_mismatch(tmp_path: Path) -> None:
    save_npy(tmp_path, X_train=base_images(5), y_train=np.zeros(4, dtype=np.int64))
    with pytest.raises(DataError, match=r"X_train\.npy holds 5 images but .*y_train\.npy holds 4"):
        load_fer(tmp_path)


def test_npy_label_out_of_range(tmp_path: Path) -> None:
    save_npy(tmp_path, X_train=base_images(3), y_train=np.array([0, 9, 1]))
    with pytest.raises(DataError, match=r"y_train\.npy: label 9 at index 1 is out of range 0\.\.6"):
        load_fer(tmp_path)


def test_npy_standardised_values_rejected(tmp_path: Path) -> None:
    save_npy(tmp_path, X_train=np.full((2, 48, 48), -1.5), y_train=np.array([0, 1]))
    with pytest.raises(DataError, match=r"values from -1\.5"):
        load_fer(tmp_path)


def test_npy_missing_labels(tmp_path: Path) -> None:
    save_npy(tmp_path, X_train=base_images(2))
    with pytest.raises(DataError, match=r"no labels file y_train\.npy"):
        load_fer(tmp_path)


def test_options_validated(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="val_fraction"):
        load_fer(tmp_path, val_fraction=1.5)
    with pytest.raises(DataError, match="image_size"):
        load_fer(tmp_path, image_size=0)


def test_fer_data_is_frozen(tmp_path: Path) -> None:
    data = load_fer(make_kaggle(tmp_path / "fer"))
    assert isinstance(data, FerData)
    with pytest.raises(AttributeError):
        data.source = "x"  # type: ignore[misc]
