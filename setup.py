"""Installs din_tf: faithful Keras 3 ports of Alibaba's DIN and DIEN models."""

from setuptools import find_packages, setup

setup(
    name="din_tf",
    version="0.1.0",
    description=(
        "DIN and DIEN (Alibaba user-interest CTR models) for TensorFlow 2 / "
        "Keras 3, numerically faithful to the original TensorFlow-1 code."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # `experiments/` in the checkout is only a deprecated alias of din_tf.experiments;
    # it is not installed, so nothing named `experiments` lands in site-packages.
    packages=find_packages(include=["din_tf", "din_tf.*"]),
    package_data={"din_tf.experiments": ["examples/*/*.json", "examples/*/*.md"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        # CTRModel overrides the Keras-private Model._maybe_symbolic_build
        # (keras-team/keras#20329); verified on 3.15.1, checked by
        # tests/models/test_keras_private_api.py. Widen only after that test passes.
        "keras>=3.15.1,<3.16",
        "numpy",
        "absl-py",
        "tensorboard",  # the runner's TensorBoard logs (TF 2.21 no longer pulls it in)
    ],
    extras_require={
        "dev": ["pytest", "matplotlib"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "parquet": ["pyarrow"],  # Parquet logs (and faster CSV reading) in din_tf.data.logs
        "plots": ["matplotlib"],  # the runner's curves.png and the notebook's inline curves
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
