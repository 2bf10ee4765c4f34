from setuptools import find_packages, setup

setup(
    name="nnunet-kd",
    version="0.1.0",
    description="Multi-dataset cross-domain knowledge distillation for nnU-Net v2",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["nnunet_kd", "nnunet_kd.*"]),
    package_data={"nnunet_kd": ["presets/*.json"]},
    install_requires=[
        "nnunetv2>=2.8.1,<2.9",
        "torch",
        "SimpleITK",
        "batchgeneratorsv2",
        "dynamic-network-architectures",
        "numpy",
        "pandas",
        "matplotlib",
        "scikit-learn",
        "Pillow",
        "pycocotools",
        "torchvision",  # box IoU of the detection metrics; already pulled in by dynamic-network-architectures
    ],
    extras_require={"test": ["pytest", "pytest-xdist"]},
    entry_points={"console_scripts": ["nnunet_kd=nnunet_kd.cli:main"]},
)
