"""Drives a running mhe-serve through Triton's own Python HTTP client (tritonclient.http), a V2 client we did not
write, and prints one JSON report of what the client got back; test/system/v2-client.test.ts checks it.

Usage: python3 tritonclient_drive.py HOST:PORT MODEL VERSION FEATURES.f32 N D TOP_K DENSE(0|1)
FEATURES.f32 holds N x D little-endian float32 values.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, model, version, path = sys.argv[1:5]
n, d, top_k, dense = (int(a) for a in sys.argv[5:9])
x = np.fromfile(path, dtype=np.float32).reshape(n, d)
report = {}


def features(rows, binary):
    tensor = httpclient.InferInput("features", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return tensor


def tensors(result, names):
    out = {}
    for name in names:
        value = result.as_numpy(name)
        if value.dtype == np.object_:
            out[name] = {"shape": list(value.shape), "data": [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in value.flatten()]}
        else:
            out[name] = {"shape": list(value.shape), "dtype": str(value.dtype), "data": value.flatten().tolist()}
    return out


def failure(call):
    try:
        call()
    except InferenceServerException as e:
        return e.message()
    return None


client = httpclient.InferenceServerClient(url, concurrency=8)
report["live"] = client.is_server_live()
report["ready"] = client.is_server_ready()
report["server"] = client.get_server_metadata()
report["model"] = client.get_model_metadata(model)
report["model_version"] = client.get_model_metadata(model, version)
report["model_ready"] = client.is_model_ready(model)
report["model_version_ready"] = client.is_model_ready(model, version)
report["unknown_model_ready"] = client.is_model_ready("no-such-model")
report["unknown_model_metadata"] = failure(lambda: client.get_model_metadata("no-such-model"))

defaults = ["label_ids", "scores", "labels", "head_ids"]

# JSON tensors both ways: data in the JSON body, outputs asked for as JSON.
result = client.infer(model, [features(x, False)], outputs=[httpclient.InferRequestedOutput(o, binary_data=False) for o in defaults],
                      request_id="json-1", parameters={"top_k": top_k})
report["json"] = {"id": result.get_response().get("id"), "binary_outputs": [o.get("parameters", {}).get("binary_data_size") is not None for o in result.get_response()["outputs"]],
                  "tensors": tensors(result, defaults)}

# Binary tensors both ways: the client's defaults (binary input; no outputs named, so binary_data_output).
result = client.infer(model, [features(x, True)], model_version=version, request_id="binary-1", parameters={"top_k": top_k})
report["binary"] = {"id": result.get_response().get("id"), "names": [o["name"] for o in result.get_response()["outputs"]],
                    "binary_outputs": [o.get("parameters", {}).get("binary_data_size") is not None for o in result.get_response()["outputs"]],
                    "tensors": tensors(result, defaults)}

# The request body gzip-compressed by the client (Content-Encoding: gzip).
result = client.infer(model, [features(x, True)], parameters={"top_k": top_k}, request_compression_algorithm="gzip")
report["gzip"] = tensors(result, defaults)

# Classification extension, as binary BYTES and as JSON.
for binary in (True, False):
    result = client.infer(model, [features(x, True)], outputs=[httpclient.InferRequestedOutput("probabilities", binary_data=binary, class_count=top_k)])
    report["classification_binary" if binary else "classification_json"] = tensors(result, ["probabilities"])

if dense:  # the first row only: n x C stays under the dense limit
    result = client.infer(model, [features(x[:1], True)], outputs=[httpclient.InferRequestedOutput("probabilities")])
    report["dense"] = tensors(result, ["probabilities"])

# Faults the client must see as InferenceServerException with our message.
report["wrong_shape"] = failure(lambda: client.infer(model, [features(np.zeros((1, d - 1), dtype=np.float32), True)]))
report["wrong_shape_json"] = failure(lambda: client.infer(model, [features(np.zeros((2, d + 1), dtype=np.float32), False)]))
report["unknown_model_infer"] = failure(lambda: client.infer("no-such-model", [features(x, True)]))
report["unknown_version_infer"] = failure(lambda: client.infer(model, [features(x, True)], model_version="no-such-version"))
report["bad_top_k"] = failure(lambda: client.infer(model, [features(x, True)], parameters={"top_k": 0}))

# Concurrent: one async_infer per row, all in flight together (concurrency=8 connections), answers matched by id.
pending = [client.async_infer(model, [features(x[i:i + 1], True)], request_id=f"row-{i}", parameters={"top_k": top_k}) for i in range(n)]
report["concurrent"] = []
for handle in pending:
    result = handle.get_result()
    report["concurrent"].append({"id": result.get_response()["id"], "tensors": tensors(result, ["label_ids", "scores", "labels"])})

client.close()
print(json.dumps(report))
