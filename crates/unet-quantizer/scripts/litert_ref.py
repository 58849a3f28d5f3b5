"""Runs an int8 .tflite with LiteRT's reference kernels (OpResolverType.BUILTIN_REF).

    python3 litert_ref.py MODEL INPUTS.npy OUTPUTS.npy

INPUTS.npy holds N samples of the model input (int8); OUTPUTS.npy receives the N outputs.
Used by unet-quantizer to check that our runtime and LiteRT agree bit for bit.
"""
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def main(model, inputs, outputs):
    interp = Interpreter(model_path=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    xs = np.load(inputs)
    results = []
    for x in xs:
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(inp["dtype"]))
        interp.invoke()
        results.append(interp.get_tensor(out["index"]).copy())
    np.save(outputs, np.stack(results))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
