"""2D object detection sibling: COCO boxes as nnU-Net instance maps, Faster R-CNN on the plans' encoder, metrics.

3D detection is not covered. The 2D design would need for it: a 3D detector (torchvision's anchors, RPN, RoIAlign and
box coder are 2D only; nnDetection's Retina U-Net is the usual 3D choice), 3D boxes (z0, y0, x0, z1, y1, x1) in
boxes.json and in the instance-map rasterisation/recomputation (which is per axis and extends directly), a 3D
RoIAlign for the KD of ROI logits, FROC/mAP with 3D IoU (pycocotools is 2D only; nnDetection's matcher is 3D), and
a third axis in the sliding-window detection of `inference.py` (tiling and the cut-box rule extend per axis; weighted
box clustering, as in nnDetection, would merge the parts of objects larger than the tile overlap better than NMS).
"""
