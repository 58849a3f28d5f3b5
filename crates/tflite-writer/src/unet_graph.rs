//! The layer sequence of IntelAI's 2D U-Net, in one place for every builder of its graph.
//!
//! Two builders make this graph: `unet-train`'s float export of a trained model and
//! `tflite-runtime`'s random-weight test models (f32 or int8). Each implements [`UNetEmitter`]
//! (how one layer becomes tensors and an operator, and where its weights come from);
//! [`emit_unet`] calls it layer by layer in graph order, with IntelAI's layer names, and the
//! option constructors below give every builder the same operator options.
//!
//! The topology: four levels `A`–`D` of two 3×3 SAME conv+ReLU (`encodeXa`, `encodeXb`) and a
//! 2×2/2 max-pool (`poolX`), a bottom level `E` with 16·fms channels, then four times an
//! upsampling (`upE`, `upC`, `upB`, `upA`: a 2×2/2 transposed convolution or nearest resize)
//! concatenated with the skip (`concatD` … `concatA`, `[upsampled, skip]`) and two conv+ReLU
//! (`decodeCa/b`, `decodeBa/b`, `decodeAa/b`, `convOuta/b`), a 1×1 conv to one channel
//! (`PredictionMask/logits`) and a sigmoid.

use crate::ir::{
    Activation, ConcatenationOptions, Conv2DOptions, Padding, Pool2DOptions, TransposeConvOptions,
};

/// One builder of the U-Net graph: [`emit_unet`] calls these in graph order.
pub trait UNetEmitter {
    /// The builder's handle of a tensor.
    type Tensor: Copy;

    /// The graph input, `[1, size, size, channels]`.
    fn input(&mut self, size: usize, channels: usize) -> Self::Tensor;
    /// A SAME convolution of `x` to `out_c` channels with a `k × k` kernel: 3×3 with a fused
    /// ReLU, or the 1×1 head without activation (`relu` false).
    fn conv(
        &mut self,
        name: &str,
        x: Self::Tensor,
        out_c: usize,
        k: usize,
        relu: bool,
    ) -> Self::Tensor;
    /// A 2×2/2 VALID max-pool.
    fn max_pool(&mut self, name: &str, x: Self::Tensor) -> Self::Tensor;
    /// Doubles height and width, to `out_c` channels when the upsampling is learned (a 2×2/2
    /// transposed convolution); a nearest resize keeps the channels of `x`.
    fn upsample(&mut self, name: &str, x: Self::Tensor, out_c: usize) -> Self::Tensor;
    /// Concatenation on the channel axis, `[upsampled, skip]`.
    fn concat(&mut self, name: &str, upsampled: Self::Tensor, skip: Self::Tensor) -> Self::Tensor;
    /// The sigmoid that turns the logits into the output mask.
    fn sigmoid(&mut self, logits: Self::Tensor) -> Self::Tensor;
}

/// Emits the whole U-Net through `emitter`; returns its input and output tensors.
pub fn emit_unet<E: UNetEmitter>(
    emitter: &mut E,
    size: usize,
    in_channels: usize,
    fms: usize,
) -> (E::Tensor, E::Tensor) {
    let input = emitter.input(size, in_channels);
    let mut x = input;
    let mut skips = Vec::with_capacity(4);
    let mut channels = fms;
    for level in ['A', 'B', 'C', 'D'] {
        x = emitter.conv(&format!("encode{level}a"), x, channels, 3, true);
        x = emitter.conv(&format!("encode{level}b"), x, channels, 3, true);
        skips.push(x);
        x = emitter.max_pool(&format!("pool{level}"), x);
        channels *= 2;
    }
    x = emitter.conv("encodeEa", x, channels, 3, true);
    x = emitter.conv("encodeEb", x, channels, 3, true);
    // IntelAI's names: the decoder level after `upE` is C, and the last one is `convOut`.
    let decoder = [
        ("upE", "concatD", "decodeC"),
        ("upC", "concatC", "decodeB"),
        ("upB", "concatB", "decodeA"),
        ("upA", "concatA", "convOut"),
    ];
    for (up, concat, decode) in decoder {
        channels /= 2;
        let skip = skips.pop().expect("one skip per level");
        let upsampled = emitter.upsample(up, x, channels);
        x = emitter.concat(concat, upsampled, skip);
        x = emitter.conv(&format!("{decode}a"), x, channels, 3, true);
        x = emitter.conv(&format!("{decode}b"), x, channels, 3, true);
    }
    let logits = emitter.conv("PredictionMask/logits", x, 1, 1, false);
    let output = emitter.sigmoid(logits);
    (input, output)
}

/// CONV_2D options of the U-Net: SAME, stride 1, ReLU fused or no activation.
pub fn conv_options(relu: bool) -> Conv2DOptions {
    Conv2DOptions {
        padding: Padding::Same,
        stride_w: 1,
        stride_h: 1,
        fused_activation: if relu {
            Activation::Relu
        } else {
            Activation::None
        },
        dilation_w: 1,
        dilation_h: 1,
    }
}

/// MAX_POOL_2D options of the U-Net: 2×2, stride 2, VALID.
pub fn pool_options() -> Pool2DOptions {
    Pool2DOptions {
        padding: Padding::Valid,
        stride_w: 2,
        stride_h: 2,
        filter_width: 2,
        filter_height: 2,
        fused_activation: Activation::None,
    }
}

/// TRANSPOSE_CONV options of the U-Net: 2×2 kernel, stride 2, SAME.
pub fn transpose_conv_options() -> TransposeConvOptions {
    TransposeConvOptions {
        padding: Padding::Same,
        stride_w: 2,
        stride_h: 2,
        fused_activation: Activation::None,
    }
}

/// CONCATENATION options of the U-Net: the channel axis.
pub fn concat_options() -> ConcatenationOptions {
    ConcatenationOptions {
        axis: 3,
        fused_activation: Activation::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the calls: (layer name, output channels).
    struct Trace(Vec<(String, usize)>, Vec<usize>);

    impl UNetEmitter for Trace {
        type Tensor = usize;
        fn input(&mut self, _size: usize, channels: usize) -> usize {
            self.1.push(channels);
            self.1.len() - 1
        }
        fn conv(&mut self, name: &str, _x: usize, out_c: usize, _k: usize, _relu: bool) -> usize {
            self.0.push((name.into(), out_c));
            self.1.push(out_c);
            self.1.len() - 1
        }
        fn max_pool(&mut self, name: &str, x: usize) -> usize {
            self.0.push((name.into(), self.1[x]));
            self.1.push(self.1[x]);
            self.1.len() - 1
        }
        fn upsample(&mut self, name: &str, _x: usize, out_c: usize) -> usize {
            self.0.push((name.into(), out_c));
            self.1.push(out_c);
            self.1.len() - 1
        }
        fn concat(&mut self, name: &str, a: usize, b: usize) -> usize {
            let c = self.1[a] + self.1[b];
            self.0.push((name.into(), c));
            self.1.push(c);
            self.1.len() - 1
        }
        fn sigmoid(&mut self, x: usize) -> usize {
            self.0.push(("sigmoid".into(), self.1[x]));
            self.1.push(self.1[x]);
            self.1.len() - 1
        }
    }

    #[test]
    fn intelai_layer_names_and_channels() {
        let mut trace = Trace(Vec::new(), Vec::new());
        emit_unet(&mut trace, 128, 1, 16);
        let names: Vec<&str> = trace.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 32);
        assert_eq!(&names[..3], ["encodeAa", "encodeAb", "poolA"]);
        assert_eq!(&names[12..16], ["encodeEa", "encodeEb", "upE", "concatD"]);
        assert_eq!(
            &names[names.len() - 4..],
            ["convOuta", "convOutb", "PredictionMask/logits", "sigmoid"]
        );
        let channels = |name: &str| trace.0.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(channels("encodeEb"), 256);
        assert_eq!(channels("concatD"), 256);
        assert_eq!(channels("decodeCb"), 128);
        assert_eq!(channels("convOutb"), 16);
    }
}
