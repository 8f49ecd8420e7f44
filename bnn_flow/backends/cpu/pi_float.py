"""Times a float ONNX model with onnxruntime; standalone (numpy + onnxruntime only) so it runs on a Pi.

pi-bench copies this file to the Pi and runs, once per round:

    python3 pi_float.py MODEL.onnx IMAGES.npy THREADS LATENCY_SAMPLES [PER_SAMPLE]

It prints one JSON line: {"onnxruntime": version, "latency_s": [per-image seconds], "batch_s": seconds for
all images in one batch, "images": N}, or {"error": "..."} when onnxruntime or numpy is missing. Each
latency sample is the mean of PER_SAMPLE (default 1) back-to-back runs of one image, as the C runner's
samples are on the Pi. The session uses the same settings as on the host
(bnn_flow.backends.cpu.float_twin.session): intra-op threads = THREADS, one inter-op thread, sequential,
every graph optimization, pool threads that sleep between runs. One warm-up single image and one warm-up
batch come first.
"""

import json
import sys
import time


def main(argv: list) -> int:
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        print(json.dumps({"error": f"float baseline not available on this machine ({e})"}))
        return 0
    model, images, threads, k_lat = argv[0], argv[1], int(argv[2]), int(argv[3])
    per = int(argv[4]) if len(argv) > 4 else 1
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.load(images).astype(np.float32)
    sess.run(None, {name: x[:1]})
    sess.run(None, {name: x})
    lat = []
    for i in range(k_lat):
        one = x[i % len(x) : i % len(x) + 1]
        t0 = time.perf_counter()
        for _ in range(per):
            sess.run(None, {name: one})
        lat.append((time.perf_counter() - t0) / per)
    t0 = time.perf_counter()
    sess.run(None, {name: x})
    batch = time.perf_counter() - t0
    print(json.dumps({"onnxruntime": ort.__version__, "latency_s": lat, "batch_s": batch, "images": len(x)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
