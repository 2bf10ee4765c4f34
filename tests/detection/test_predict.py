import numpy as np

from nnunet_kd.detection.predict import to_original_pixels


def test_boxes_return_to_the_original_pixels():
    # nnU-Net cropped rows 10-50 and columns 4-64 of the image, then resampled the 40 x 60 crop to 80 x 30
    properties = {"shape_after_cropping_and_before_resampling": (1, 40, 60),
                  "bbox_used_for_cropping": [[0, 1], [10, 50], [4, 64]]}
    boxes = np.array([[3.0, 8.0, 15.0, 20.0]])  # x0, y0, x1, y1 on the 80 x 30 preprocessed image
    np.testing.assert_allclose(to_original_pixels(boxes, properties, (80, 30), [0, 1, 2]),
                               [[4 + 6.0, 10 + 4.0, 4 + 30.0, 10 + 10.0]])
    np.testing.assert_allclose(to_original_pixels(boxes, properties, (80, 30), [0, 2, 1]),
                               [[10 + 4.0, 4 + 6.0, 10 + 10.0, 4 + 30.0]])
