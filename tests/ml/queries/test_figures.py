"""PNG figures of query answers: a grid of images and a scatter of points, exact in size and
pixels, the same bytes for the same input, and clear errors for what they cannot draw."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.queries.figures import MIN_SIDE, PAD_VALUE, PADDING, image_grid_png, scatter_png

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decoded(png: bytes) -> Image.Image:
    assert png.startswith(SIGNATURE)
    return Image.open(io.BytesIO(png))


def test_a_grid_of_digits_is_enlarged_and_padded() -> None:
    images = np.zeros((5, 1, 8, 8), np.float32)
    image = decoded(image_grid_png(images, columns=None))  # 5 images: 3 columns, 2 rows
    scale = MIN_SIDE // 8
    assert image.mode == "L"
    assert image.size == (3 * (8 * scale + PADDING) + PADDING, 2 * (8 * scale + PADDING) + PADDING)
    one_row = decoded(image_grid_png(images, columns=5))
    assert one_row.size == (5 * (MIN_SIDE + PADDING) + PADDING, MIN_SIDE + 2 * PADDING)


def test_pixels_map_from_minus_one_black_to_plus_one_white() -> None:
    images = np.stack([np.full((1, 8, 8), v, np.float32) for v in (-1.0, 1.0, 0.0, -5.0, 5.0)])
    pixels = np.asarray(decoded(image_grid_png(images, columns=5)))
    step = MIN_SIDE + PADDING
    centres = [
        int(pixels[PADDING + MIN_SIDE // 2, PADDING + i * step + MIN_SIDE // 2]) for i in range(5)
    ]
    assert centres == [0, 255, 128, 0, 255]  # outside [-1, 1]: clipped
    assert pixels[0, 0] == PAD_VALUE


def test_nearest_neighbour_keeps_each_pixel_a_square() -> None:
    image = -np.ones((1, 1, 8, 8), np.float32)
    image[0, 0, 2, 3] = 1.0  # one white pixel
    pixels = np.asarray(decoded(image_grid_png(image)))
    tile = pixels[PADDING : PADDING + MIN_SIDE, PADDING : PADDING + MIN_SIDE]
    scale = MIN_SIDE // 8
    white = np.argwhere(tile == 255)
    assert len(white) == scale * scale
    assert white.min(axis=0).tolist() == [2 * scale, 3 * scale]


def test_colour_images_are_rgb_and_large_ones_are_not_enlarged() -> None:
    images = -np.ones((2, 3, 40, 40), np.float32)
    images[:, 0] = 1.0  # red
    image = decoded(image_grid_png(images, columns=2))
    assert image.mode == "RGB" and image.size == (2 * 40 + 3 * PADDING, 40 + 2 * PADDING)
    assert image.getpixel((PADDING + 5, PADDING + 5)) == (255, 0, 0)


def test_the_same_input_gives_the_same_bytes() -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(4, 1, 8, 8))
    assert image_grid_png(images) == image_grid_png(images.copy())
    points = rng.normal(size=(50, 2))
    first = scatter_png(points, "fifty points")
    assert first == scatter_png(points.copy(), "fifty points")
    assert first != scatter_png(points, "another title")
    assert b"Software" not in first  # no matplotlib version in the file


def test_scatter_and_path() -> None:
    points = np.random.default_rng(1).normal(size=(30, 2))
    image = decoded(scatter_png(points, "points"))
    assert image.size[0] >= 300 and image.size == (image.size[0], image.size[0])
    walk = decoded(scatter_png(points[:6], "walk", path=True))
    assert walk.size == image.size


@pytest.mark.parametrize(
    "images",
    [np.zeros((2, 8, 8)), np.zeros((0, 1, 8, 8)), np.zeros((2, 2, 8, 8)), np.zeros((1, 4, 8, 8))],
)
def test_a_grid_refuses_what_is_not_grey_or_colour_images(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"grid|channels"):
        image_grid_png(images)


def test_a_grid_too_large_to_draw_is_refused() -> None:
    with pytest.raises(ValueError, match="ask for fewer"):
        image_grid_png(np.broadcast_to(np.float32(0), (10_000, 3, 64, 64)))  # a view: no memory


@pytest.mark.parametrize("points", [np.zeros((3, 3)), np.zeros(4), np.zeros((0, 2))])
def test_a_scatter_refuses_what_is_not_2d_points(points: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        scatter_png(points)
