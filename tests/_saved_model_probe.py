"""Loads SavedModels with plain TensorFlow (never importing din_tf) and runs
TF-Serving-style row requests through their serving_default signature.

    python -m tests._saved_model_probe REQUEST.json RESULT.json

REQUEST: {"models": {key: export_dir}, "calls": [{"model": key, "instances": [...]}]}
RESULT: {"signatures": {key: {"inputs": {name: [dtype, shape]}, "outputs": ...}},
         "results": [[probability, ...], ...], "din_tf_imported": bool}

`probe(tmp_path, model_dirs, calls)` runs it from a test and returns RESULT.
"""

import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _describe(specs):
    return {name: [spec.dtype.name, list(spec.shape.as_list())] for name, spec in specs.items()}


def main(request_path, result_path):
    with open(request_path) as f:
        request = json.load(f)
    signatures, described = {}, {}
    for key, path in request["models"].items():
        signature = tf.saved_model.load(path).signatures["serving_default"]
        args, kwargs = signature.structured_input_signature
        assert not args, args
        signatures[key] = signature
        described[key] = {"inputs": _describe(kwargs),
                          "outputs": _describe(signature.structured_outputs)}
    results = []
    for call in request["calls"]:
        signature = signatures[call["model"]]
        specs = signature.structured_input_signature[1]
        # As TF-Serving does with the row format: stack each input over instances.
        inputs = {name: tf.constant(np.array([row[name] for row in call["instances"]]),
                                    spec.dtype) for name, spec in specs.items()}
        results.append(signature(**inputs)["probability"].numpy().tolist())
    with open(result_path, "w") as f:
        json.dump({"signatures": described, "results": results,
                   "din_tf_imported": "din_tf" in sys.modules}, f)


def probe(tmp_path, model_dirs, calls):
    """Runs this module in a fresh process on {key: export_dir} and the calls;
    returns the parsed RESULT."""
    request, result = tmp_path / "request.json", tmp_path / "result.json"
    request.write_text(json.dumps({"models": model_dirs, "calls": calls}))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "tests._saved_model_probe", str(request),
                           str(result)], cwd=root, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(result.read_text())


if __name__ == "__main__":
    main(*sys.argv[1:])
