"""The detection commands of `nnunet_kd`: convert-det (a dataset in nnU-Net's layout) and predict-det."""
import argparse

from nnunet_kd.cli import add_predict_args
from nnunet_kd.core.errors import KDError

EXAMPLES = {
    "predict-det": "Example: nnunet_kd predict-det -i imagesTs -o boxes.json -m $nnUNet_results/Dataset601_Polyps/nnUNetTrainerDetJointKD__nnUNetPlans_kd_1a2b3c4d__2d",
    "convert-det": "Example: nnunet_kd convert-det --coco train.json --images images/ -d 601 -n Polyps",
}


def _convert_det(args) -> None:
    from nnunet_kd.detection.convert import convert_det
    print(convert_det(args.coco, args.images, args.d, args.n))


def _predict_det(args) -> None:
    from nnunet_kd.detection.predict import predict_det
    if not 0 < args.step_size <= 1:
        raise KDError(f"-step_size {args.step_size} must be in (0, 1].")
    predict_det(args.i, args.o, args.m, args.f, args.chk, args.c, args.device, tile_step_size=args.step_size,
                truth=args.truth)
    print(args.o)


def add_commands(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("convert-det", epilog=EXAMPLES["convert-det"], help="Convert a COCO box annotation file and its images to an nnU-Net dataset.",
                       description="Write $nnUNet_raw/DatasetXXX_NAME from a COCO object detection JSON file and the "
                                   "folder its images (PNG, JPEG) are in. Images become imagesTr (RGB as channels R, "
                                   "G, B), the boxes of each image an instance map in labelsTr (smaller boxes painted "
                                   "over larger ones) and boxes.json; the category names go to dataset.json's "
                                   "'detection'. Everything is checked first: on any problem, or if the id is taken, "
                                   "nothing is written. Prints the dataset folder.")
    p.add_argument("--coco", required=True, metavar="JSON", help="COCO JSON file with images, annotations, categories.")
    p.add_argument("--images", required=True, metavar="DIR", help="Folder the images' file_name entries are in.")
    p.add_argument("-d", type=int, required=True, help="Dataset id of the new dataset (1-999, not yet used).")
    p.add_argument("-n", required=True, help="Dataset name: the folder is DatasetXXX_NAME.")
    p.set_defaults(func=_convert_det)

    p = sub.add_parser("predict-det", epilog=EXAMPLES["predict-det"], help="Boxes of images from a detection model folder, as COCO result JSON.",
                       description="Preprocesses the images like nnU-Net (the model folder's plans), detects in "
                                   "sliding windows of the patch size, pools the boxes of the tiles and folds with "
                                   "class-wise NMS, maps them back to the original pixels and writes COCO result "
                                   "entries: image_id (the case), category_id (category index + 1), category, bbox "
                                   "[x, y, w, h], score.")
    add_predict_args(p, "JSON", "detection", "boxes (such as the dataset's boxesTs.json)")
    p.add_argument("-step_size", type=float, default=0.5,
                   help="Sliding-window step as a fraction of the patch size, as in nnUNetv2_predict. Default: 0.5.")
    p.set_defaults(func=_predict_det)
