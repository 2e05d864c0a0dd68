"""In-graph image preprocessing for the serving signatures: encoded bytes in, ResNet input out.

Runs inside the SavedModel, so TF Serving and the local server decode and check images the
same way: JPEG/PNG/GIF/BMP, at most MAX_PIXELS (checked from the header, before decoding),
centre-cropped to a square and resized to 224x224, then Keras' ResNet "caffe" preprocessing.
A bad image raises InvalidArgumentError, which servers answer with HTTP 400.
"""

from __future__ import annotations

import tensorflow as tf

IMAGE_SIZE = 224
MAX_PIXELS = 40_000_000
# ImageNet channel means in BGR order (keras.applications.resnet.preprocess_input, "caffe").
BGR_MEANS = (103.939, 116.779, 123.68)


def _header_int(data: tf.Tensor, offset: int, length: int, big_endian: bool) -> tf.Tensor:
    raw = tf.io.decode_raw(tf.strings.substr(data, offset, length), tf.uint8)
    raw = tf.cast(raw, tf.int64)
    order = (
        tf.range(length, dtype=tf.int64)
        if not big_endian
        else tf.range(length - 1, -1, -1, dtype=tf.int64)
    )
    return tf.reduce_sum(raw * tf.bitwise.left_shift(tf.constant(1, tf.int64), 8 * order))


def header_pixels(data: tf.Tensor) -> tf.Tensor:
    """Width x height read from a PNG/GIF/BMP header, or JPEG's SOF; 0 when unknown."""
    length = tf.strings.length(data)
    magic = tf.strings.substr(data, 0, 4)

    def png() -> tf.Tensor:
        return _header_int(data, 16, 4, True) * _header_int(data, 20, 4, True)

    def gif() -> tf.Tensor:
        return _header_int(data, 6, 2, False) * _header_int(data, 8, 2, False)

    def bmp() -> tf.Tensor:
        return tf.abs(_header_int(data, 18, 4, False) * _header_int(data, 22, 4, False))

    def jpeg() -> tf.Tensor:
        shape = tf.image.extract_jpeg_shape(data)
        return tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64)

    return tf.case(
        [
            (tf.logical_and(tf.equal(magic, b"\x89PNG"), length >= 24), png),
            (tf.logical_and(tf.equal(tf.strings.substr(magic, 0, 3), b"GIF"), length >= 10), gif),
            (tf.logical_and(tf.equal(tf.strings.substr(magic, 0, 2), b"BM"), length >= 26), bmp),
            (tf.equal(tf.strings.substr(magic, 0, 2), b"\xff\xd8"), jpeg),
        ],
        default=lambda: tf.constant(0, tf.int64),
    )


def decode_one(data: tf.Tensor) -> tf.Tensor:
    """One encoded image → float32 [224, 224, 3], ready for ResNet."""
    # Control dependencies make the checks run before decoding (graph ops have no order).
    not_empty = tf.debugging.assert_greater(
        tf.strings.length(data), 0, message="empty image: send the bytes of a JPEG, PNG, GIF or BMP"
    )
    with tf.control_dependencies([not_empty]):
        not_huge = tf.debugging.assert_less_equal(
            header_pixels(data),
            tf.constant(MAX_PIXELS, tf.int64),
            message=f"image too large: more than {MAX_PIXELS} pixels; resize it before sending",
        )
    with tf.control_dependencies([not_huge]):
        image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    image = tf.image.crop_to_bounding_box(
        image, (height - side) // 2, (width - side) // 2, side, side
    )
    image = tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE], method="bilinear", antialias=True)
    bgr = tf.reverse(image, axis=[-1])
    return bgr - tf.constant(BGR_MEANS, dtype=tf.float32)


def decode_batch(images: tf.Tensor) -> tf.Tensor:
    """A batch of encoded images (tf.string [N]) → float32 [N, 224, 224, 3]."""
    return tf.map_fn(
        decode_one,
        images,
        fn_output_signature=tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32),
    )
