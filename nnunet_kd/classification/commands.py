"""The classification commands of `nnunet_kd`: convert-cls (a dataset in nnU-Net's layout) and predict-cls."""
import argparse

from nnunet_kd.cli import add_predict_args

EXAMPLES = {
    "predict-cls": "Example: nnunet_kd predict-cls -i imagesTs -o probs.csv -m $nnUNet_results/Dataset501_ChestXray/nnUNetTrainerClsJointKD__nnUNetPlans_kd_1a2b3c4d__2d",
    "convert-cls": "Example: nnunet_kd convert-cls --images xrays/ --labels xrays.csv -d 501 -n ChestXray",
}


def _convert_cls(args) -> None:
    from nnunet_kd.classification.convert import convert_cls
    print(convert_cls(args.images, args.labels, args.d, args.n, classes=args.classes, id_column=args.id_column,
                      class_column=args.class_column))


def _predict_cls(args) -> None:
    from nnunet_kd.classification.predict import predict_cls
    predict_cls(args.i, args.o, args.m, args.f, args.chk, args.c, args.device, truth=args.truth)
    print(args.o)


def add_commands(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("convert-cls", epilog=EXAMPLES["convert-cls"], help="Convert a folder of images and a CSV of classes to an nnU-Net dataset.",
                       description="Write $nnUNet_raw/DatasetXXX_NAME from a folder of images (PNG, JPEG, NIfTI, "
                                   "single-file DICOM) and a CSV with one row per image: its file name (with or "
                                   "without ending) and class name. Images become imagesTr (RGB as channels R, G, B; "
                                   "JPEG as PNG), labelsTr holds all-ones masks, the classes go to labels.csv and "
                                   "dataset.json's 'classes'. Everything is checked first: on any problem, or if the "
                                   "id is taken, nothing is written. Prints the dataset folder.")
    p.add_argument("--images", required=True, metavar="DIR", help="Folder holding the images.")
    p.add_argument("--labels", required=True, metavar="CSV", help="CSV with a header line and one row per image.")
    p.add_argument("-d", type=int, required=True, help="Dataset id of the new dataset (1-999, not yet used).")
    p.add_argument("-n", required=True, help="Dataset name, e.g. ChestXray: the folder is DatasetXXX_NAME.")
    p.add_argument("--classes", nargs="+", default=None,
                   help="Class names in class-index order. Default: the sorted names found in the CSV.")
    p.add_argument("--id-column", default=None, help="CSV column of the image file names. Default: the first.")
    p.add_argument("--class-column", default=None, help="CSV column of the class names. Default: the second.")
    p.set_defaults(func=_convert_cls)

    p = sub.add_parser("predict-cls", epilog=EXAMPLES["predict-cls"], help="Class probabilities of images from a classification model folder.",
                       description="Preprocesses the images like nnU-Net (the model folder's plans), resizes each whole "
                                   "image to the patch size, averages the softmax of the given folds and writes a CSV: "
                                   "case, p_<class> for every class, predicted class.")
    add_predict_args(p, "CSV", "classification", "classes (a CSV case,class such as the dataset's labelsTs.csv)")
    p.set_defaults(func=_predict_cls)
