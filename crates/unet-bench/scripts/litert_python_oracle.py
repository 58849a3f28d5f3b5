"""Python LiteRT interpreter as the oracle for unet-bench's `litert:cpu` backend.

    python3 litert_python_oracle.py MODEL INPUTS.npy OUTPUTS.npy THREADS

INPUTS.npy holds N slices already in the model's input dtype and shape [N, ...input shape
without batch]; every slice is run through ai_edge_litert's Interpreter (default resolver:
XNNPACK, `num_threads=THREADS`) and the raw outputs are saved stacked as OUTPUTS.npy.
"""
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def main(model, inputs, outputs, threads):
    interp = Interpreter(model_path=model, num_threads=int(threads))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    xs = np.load(inputs)
    ys = []
    for x in xs:
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(inp["dtype"]))
        interp.invoke()
        ys.append(interp.get_tensor(out["index"]).copy())
    np.save(outputs, np.stack(ys))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
