//! IntelAI's 2D U-Net (`2D/model.py` of IntelAI/unet) in burn.
//!
//! Five levels A–E with two 3×3 "same" ReLU convolutions each, 2×2 max pooling on the way down,
//! 2×2/2 transposed convolutions (or nearest ×2 upsampling) on the way up, skip concatenation
//! `[up, encoder]` in that channel order, two more convolutions per decoder level, and a 1×1
//! sigmoid head. Spatial dropout (whole channels) follows the first convolution of levels C and
//! D during training. Tensors are NCHW here; [`crate::export`] turns them into NHWC.
//!
//! Initialisation follows Keras as IntelAI configures it: He-uniform for the 3×3 convolutions
//! (`kernel_initializer="he_uniform"`), Glorot-uniform (the Keras default) for the transposed
//! convolutions and the 1×1 head, and zero biases everywhere.

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::conv3x3::{conv3x3_relu, conv3x3_relu_cat, max_pool2x2, upconv2x2};
use crate::rng::SplitMix64;

/// How the decoder doubles the spatial size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Upsampling {
    /// `Conv2DTranspose(kernel 2×2, stride 2, padding same)` with learned weights (IntelAI's
    /// `use_upsampling=False`, the default here).
    #[default]
    TransposedConv,
    /// `UpSampling2D(2×2)`: nearest-neighbour repetition, no weights.
    Nearest,
}

/// Architecture of the U-Net.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Feature maps of the first level; level k has `fms · 2^k` (IntelAI: 16 or 32).
    pub fms: usize,
    /// Input height and width (square, a multiple of 16).
    pub size: usize,
    /// Decoder upsampling.
    pub upsampling: Upsampling,
    /// Spatial dropout rate after the first convolution of levels C and D (0 disables it).
    pub dropout: f64,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            fms: 16,
            size: 128,
            upsampling: Upsampling::TransposedConv,
            dropout: 0.2,
        }
    }
}

impl UNetConfig {
    /// Checks the configuration: `fms ≥ 1`, `size` a positive multiple of 16, dropout in [0, 1).
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.fms == 0 {
            return Err(TrainError::InvalidConfig("fms must be at least 1".into()));
        }
        if self.size == 0 || !self.size.is_multiple_of(16) {
            return Err(TrainError::InvalidConfig(format!(
                "size {} is not a positive multiple of 16 (the U-Net pools four times)",
                self.size
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(TrainError::InvalidConfig(format!(
                "dropout {} is outside [0, 1)",
                self.dropout
            )));
        }
        Ok(())
    }

    /// Number of parameters (weights and biases) of the model this configuration builds,
    /// computed without building it; `None` when it overflows `u64` (an absurd `fms`).
    pub fn parameter_count(&self) -> Option<u64> {
        let f = self.fms as u64;
        let times = |k: u64| f.checked_mul(k);
        let conv3x3 =
            |c_in: u64, c_out: u64| c_in.checked_mul(c_out)?.checked_mul(9)?.checked_add(c_out);
        let upconv =
            |c_in: u64, c_out: u64| c_in.checked_mul(c_out)?.checked_mul(4)?.checked_add(c_out);
        let (f2, f4, f8, f16) = (times(2)?, times(4)?, times(8)?, times(16)?);
        let up_channels = |below: u64, target: u64| match self.upsampling {
            Upsampling::TransposedConv => target,
            Upsampling::Nearest => below,
        };
        let mut parts = vec![
            conv3x3(1, f)?,
            conv3x3(f, f)?,
            conv3x3(f, f2)?,
            conv3x3(f2, f2)?,
            conv3x3(f2, f4)?,
            conv3x3(f4, f4)?,
            conv3x3(f4, f8)?,
            conv3x3(f8, f8)?,
            conv3x3(f8, f16)?,
            conv3x3(f16, f16)?,
            conv3x3(up_channels(f16, f8).checked_add(f8)?, f8)?,
            conv3x3(f8, f8)?,
            conv3x3(up_channels(f8, f4).checked_add(f4)?, f4)?,
            conv3x3(f4, f4)?,
            conv3x3(up_channels(f4, f2).checked_add(f2)?, f2)?,
            conv3x3(f2, f2)?,
            conv3x3(up_channels(f2, f).checked_add(f)?, f)?,
            conv3x3(f, f)?,
            f.checked_add(1)?, // the 1×1 head
        ];
        if self.upsampling == Upsampling::TransposedConv {
            parts.extend([
                upconv(f16, f8)?,
                upconv(f8, f4)?,
                upconv(f4, f2)?,
                upconv(f2, f)?,
            ]);
        }
        parts.into_iter().try_fold(0u64, u64::checked_add)
    }

    /// Builds the model with weights drawn from `seed` on `device`.
    pub fn init(&self, device: &Device, seed: u64) -> Result<UNet, TrainError> {
        self.validate()?;
        let mut rng = SplitMix64::stream(seed, 0x1A17);
        let f = self.fms;
        let mut conv = |c_in: usize, c_out: usize| Conv3x3::init(c_in, c_out, &mut rng, device);
        let encode_a = [conv(1, f), conv(f, f)];
        let encode_b = [conv(f, 2 * f), conv(2 * f, 2 * f)];
        let encode_c = [conv(2 * f, 4 * f), conv(4 * f, 4 * f)];
        let encode_d = [conv(4 * f, 8 * f), conv(8 * f, 8 * f)];
        let encode_e = [conv(8 * f, 16 * f), conv(16 * f, 16 * f)];
        // Channels coming up from the level below: transposed convs halve them, nearest keeps them.
        let up_channels = |below: usize, target: usize| match self.upsampling {
            Upsampling::TransposedConv => target,
            Upsampling::Nearest => below,
        };
        let decode_c = [
            conv(up_channels(16 * f, 8 * f) + 8 * f, 8 * f),
            conv(8 * f, 8 * f),
        ];
        let decode_b = [
            conv(up_channels(8 * f, 4 * f) + 4 * f, 4 * f),
            conv(4 * f, 4 * f),
        ];
        let decode_a = [
            conv(up_channels(4 * f, 2 * f) + 2 * f, 2 * f),
            conv(2 * f, 2 * f),
        ];
        let conv_out = [conv(up_channels(2 * f, f) + f, f), conv(f, f)];
        let (transconv_e, transconv_c, transconv_b, transconv_a) = match self.upsampling {
            Upsampling::TransposedConv => (
                Some(UpConv::init(16 * f, 8 * f, &mut rng, device)),
                Some(UpConv::init(8 * f, 4 * f, &mut rng, device)),
                Some(UpConv::init(4 * f, 2 * f, &mut rng, device)),
                Some(UpConv::init(2 * f, f, &mut rng, device)),
            ),
            Upsampling::Nearest => (None, None, None, None),
        };
        let prediction = Conv1x1::init(f, 1, &mut rng, device);
        let [encode_a0, encode_a1] = encode_a;
        let [encode_b0, encode_b1] = encode_b;
        let [encode_c0, encode_c1] = encode_c;
        let [encode_d0, encode_d1] = encode_d;
        let [encode_e0, encode_e1] = encode_e;
        let [decode_c0, decode_c1] = decode_c;
        let [decode_b0, decode_b1] = decode_b;
        let [decode_a0, decode_a1] = decode_a;
        let [conv_out0, conv_out1] = conv_out;
        Ok(UNet {
            encode_a0,
            encode_a1,
            encode_b0,
            encode_b1,
            encode_c0,
            encode_c1,
            encode_d0,
            encode_d1,
            encode_e0,
            encode_e1,
            transconv_e,
            decode_c0,
            decode_c1,
            transconv_c,
            decode_b0,
            decode_b1,
            transconv_b,
            decode_a0,
            decode_a1,
            transconv_a,
            conv_out0,
            conv_out1,
            prediction,
            dropout: self.dropout,
            size: self.size,
        })
    }
}

fn param_from(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Param<Tensor<4>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

fn zero_bias(n: usize, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::zeros([n], device))
}

/// A 3×3 "same" convolution followed by ReLU. Weight `[out, in, 3, 3]`, bias `[out]`.
#[derive(Module, Debug)]
pub struct Conv3x3 {
    /// Kernel, `[out, in, 3, 3]`.
    pub weight: Param<Tensor<4>>,
    /// Bias, `[out]`.
    pub bias: Param<Tensor<1>>,
}

impl Conv3x3 {
    fn init(c_in: usize, c_out: usize, rng: &mut SplitMix64, device: &Device) -> Self {
        // He-uniform: limit = sqrt(6 / fan_in), fan_in = c_in · 3 · 3.
        let limit = (6.0 / (c_in * 9) as f32).sqrt();
        let values = (0..c_out * c_in * 9).map(|_| rng.uniform(limit)).collect();
        Self {
            weight: param_from(values, [c_out, c_in, 3, 3], device),
            bias: zero_bias(c_out, device),
        }
    }

    /// Convolution + ReLU ([`crate::conv3x3::conv3x3_relu`]: shifted GEMMs with the ReLU fused
    /// and a handwritten backward on Flex, burn's `conv2d` and `relu` elsewhere).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv3x3_relu(x, self.weight.val(), self.bias.val())
    }

    /// [`Self::forward`] of `[a, b]` concatenated over channels
    /// ([`crate::conv3x3::conv3x3_relu_cat`]: Flex convolves both without concatenating them).
    pub fn forward_cat(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
        conv3x3_relu_cat(a, b, self.weight.val(), self.bias.val())
    }
}

/// A 2×2 stride-2 transposed convolution. Weight `[in, out, 2, 2]` (burn's layout), bias `[out]`.
#[derive(Module, Debug)]
pub struct UpConv {
    /// Kernel, `[in, out, 2, 2]`.
    pub weight: Param<Tensor<4>>,
    /// Bias, `[out]`.
    pub bias: Param<Tensor<1>>,
}

impl UpConv {
    fn init(c_in: usize, c_out: usize, rng: &mut SplitMix64, device: &Device) -> Self {
        // Keras Conv2DTranspose's default glorot_uniform: its kernel is (2, 2, out, in), so
        // fan_in = 4 · out and fan_out = 4 · in.
        let limit = (6.0 / (4 * (c_in + c_out)) as f32).sqrt();
        let values = (0..c_in * c_out * 4).map(|_| rng.uniform(limit)).collect();
        Self {
            weight: param_from(values, [c_in, c_out, 2, 2], device),
            bias: zero_bias(c_out, device),
        }
    }

    /// Doubles height and width ([`crate::conv3x3::upconv2x2`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        upconv2x2(x, self.weight.val(), self.bias.val())
    }
}

/// The 1×1 convolution of the head (logits; the sigmoid is applied by the caller).
#[derive(Module, Debug)]
pub struct Conv1x1 {
    /// Kernel, `[out, in, 1, 1]`.
    pub weight: Param<Tensor<4>>,
    /// Bias, `[out]`.
    pub bias: Param<Tensor<1>>,
}

impl Conv1x1 {
    fn init(c_in: usize, c_out: usize, rng: &mut SplitMix64, device: &Device) -> Self {
        let limit = (6.0 / (c_in + c_out) as f32).sqrt();
        let values = (0..c_out * c_in).map(|_| rng.uniform(limit)).collect();
        Self {
            weight: param_from(values, [c_out, c_in, 1, 1], device),
            bias: zero_bias(c_out, device),
        }
    }

    /// The 1×1 convolution (no activation).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::conv3x3::conv1x1(x, self.weight.val(), self.bias.val())
    }
}

/// The U-Net. Field names follow IntelAI's layer names (`encodeAa` → `encode_a0`, …).
#[derive(Module, Debug)]
pub struct UNet {
    /// encodeAa.
    pub encode_a0: Conv3x3,
    /// encodeAb.
    pub encode_a1: Conv3x3,
    /// encodeBa.
    pub encode_b0: Conv3x3,
    /// encodeBb.
    pub encode_b1: Conv3x3,
    /// encodeCa (spatial dropout follows it in training).
    pub encode_c0: Conv3x3,
    /// encodeCb.
    pub encode_c1: Conv3x3,
    /// encodeDa (spatial dropout follows it in training).
    pub encode_d0: Conv3x3,
    /// encodeDb.
    pub encode_d1: Conv3x3,
    /// encodeEa.
    pub encode_e0: Conv3x3,
    /// encodeEb.
    pub encode_e1: Conv3x3,
    /// transconvE (absent with nearest upsampling).
    pub transconv_e: Option<UpConv>,
    /// decodeCa.
    pub decode_c0: Conv3x3,
    /// decodeCb.
    pub decode_c1: Conv3x3,
    /// transconvC.
    pub transconv_c: Option<UpConv>,
    /// decodeBa.
    pub decode_b0: Conv3x3,
    /// decodeBb.
    pub decode_b1: Conv3x3,
    /// transconvB.
    pub transconv_b: Option<UpConv>,
    /// decodeAa.
    pub decode_a0: Conv3x3,
    /// decodeAb.
    pub decode_a1: Conv3x3,
    /// transconvA.
    pub transconv_a: Option<UpConv>,
    /// convOuta.
    pub conv_out0: Conv3x3,
    /// convOutb.
    pub conv_out1: Conv3x3,
    /// PredictionMask (1×1, sigmoid applied in [`UNet::forward`]).
    pub prediction: Conv1x1,
    /// Spatial dropout rate.
    pub dropout: f64,
    /// Input height and width it was configured for (the export's static shape).
    pub size: usize,
}

/// Nearest-neighbour ×2 upsampling: every pixel becomes a 2×2 block (Keras `UpSampling2D`,
/// TFLite `RESIZE_NEAREST_NEIGHBOR` without align-corners or half-pixel centres).
pub fn upsample_nearest2x(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

fn pool(x: Tensor<4>) -> Tensor<4> {
    max_pool2x2(x)
}

/// Zeroes whole channels with probability `p` and scales the rest by `1 / (1 − p)`
/// (Keras `SpatialDropout2D`). The mask comes from `rng`, so it is reproducible.
pub fn spatial_dropout(x: Tensor<4>, p: f64, rng: &mut SplitMix64) -> Tensor<4> {
    if p <= 0.0 {
        return x;
    }
    let [b, c, _, _] = x.dims();
    let keep = (1.0 / (1.0 - p)) as f32;
    let mask: Vec<f32> = (0..b * c)
        .map(|_| {
            if (rng.next_f32() as f64) < p {
                0.0
            } else {
                keep
            }
        })
        .collect();
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, c, 1, 1]), &x.device());
    x * mask
}

impl UNet {
    /// Logits `[B, 1, H, W]` for images `[B, 1, H, W]`. With `dropout_rng`, spatial dropout is
    /// applied (training); without, the pass is deterministic (inference).
    pub fn forward_logits(
        &self,
        x: Tensor<4>,
        mut dropout_rng: Option<&mut SplitMix64>,
    ) -> Tensor<4> {
        let p = self.dropout;
        let mut drop = |t: Tensor<4>| match dropout_rng.as_deref_mut() {
            Some(rng) => spatial_dropout(t, p, rng),
            None => t,
        };
        let encode_a = self.encode_a1.forward(self.encode_a0.forward(x));
        let encode_b = self
            .encode_b1
            .forward(self.encode_b0.forward(pool(encode_a.clone())));
        let c0 = drop(self.encode_c0.forward(pool(encode_b.clone())));
        let encode_c = self.encode_c1.forward(c0);
        let d0 = drop(self.encode_d0.forward(pool(encode_c.clone())));
        let encode_d = self.encode_d1.forward(d0);
        let encode_e = self
            .encode_e1
            .forward(self.encode_e0.forward(pool(encode_d.clone())));

        let up = |t: Tensor<4>, conv: &Option<UpConv>| match conv {
            Some(conv) => conv.forward(t),
            None => upsample_nearest2x(t),
        };
        // Each decoder level convolves the concatenation `[up, skip]` (without building it on
        // Flex: `Conv3x3::forward_cat`), then convolves again.
        let decode =
            |low: Tensor<4>, transconv: &Option<UpConv>, skip, [first, second]: [&Conv3x3; 2]| {
                second.forward(first.forward_cat(up(low, transconv), skip))
            };
        let decode_c = decode(
            encode_e,
            &self.transconv_e,
            encode_d,
            [&self.decode_c0, &self.decode_c1],
        );
        let decode_b = decode(
            decode_c,
            &self.transconv_c,
            encode_c,
            [&self.decode_b0, &self.decode_b1],
        );
        let decode_a = decode(
            decode_b,
            &self.transconv_b,
            encode_b,
            [&self.decode_a0, &self.decode_a1],
        );
        let conv_out = decode(
            decode_a,
            &self.transconv_a,
            encode_a,
            [&self.conv_out0, &self.conv_out1],
        );
        self.prediction.forward(conv_out)
    }

    /// Probabilities `[B, 1, H, W]` (sigmoid of the logits), inference mode.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        sigmoid(self.forward_logits(x, None))
    }

    /// The upsampling this model was built with.
    pub fn upsampling(&self) -> Upsampling {
        if self.transconv_e.is_some() {
            Upsampling::TransposedConv
        } else {
            Upsampling::Nearest
        }
    }

    /// Feature maps of the first level.
    pub fn fms(&self) -> usize {
        self.encode_a0.weight.dims()[0]
    }

    /// The configuration this model corresponds to.
    pub fn config(&self) -> UNetConfig {
        UNetConfig {
            fms: self.fms(),
            size: self.size,
            upsampling: self.upsampling(),
            dropout: self.dropout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest absolute difference of two equally long slices.
    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .fold(0.0, |m, (x, y)| f32::max(m, (x - y).abs()))
    }

    #[test]
    fn default_model_has_intelai_parameter_count() {
        let device = Device::flex();
        let model = UNetConfig::default()
            .init(&device, 0)
            .expect("default config is valid");
        assert_eq!(model.num_params(), 1_940_817);
        assert_eq!(UNetConfig::default().parameter_count(), Some(1_940_817));
    }

    #[test]
    fn parameter_count_matches_the_built_model() {
        let device = Device::flex();
        for upsampling in [Upsampling::TransposedConv, Upsampling::Nearest] {
            for fms in [1, 3] {
                let cfg = UNetConfig {
                    fms,
                    size: 16,
                    upsampling,
                    dropout: 0.0,
                };
                let model = cfg.init(&device, 0).expect("valid");
                assert_eq!(cfg.parameter_count(), Some(model.num_params() as u64));
            }
        }
        let absurd = UNetConfig {
            fms: usize::MAX / 2,
            ..UNetConfig::default()
        };
        assert_eq!(absurd.parameter_count(), None);
    }

    #[test]
    fn nearest_variant_has_no_transposed_convs_and_keeps_shape() {
        let device = Device::flex();
        let cfg = UNetConfig {
            fms: 2,
            size: 32,
            upsampling: Upsampling::Nearest,
            dropout: 0.2,
        };
        let model = cfg.init(&device, 1).expect("valid config");
        assert_eq!(model.upsampling(), Upsampling::Nearest);
        let y = model.forward(Tensor::zeros([2, 1, 32, 32], &device));
        assert_eq!(y.dims(), [2, 1, 32, 32]);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let bad_size = UNetConfig {
            size: 40,
            ..UNetConfig::default()
        };
        assert!(matches!(
            bad_size.validate(),
            Err(TrainError::InvalidConfig(_))
        ));
        let bad_fms = UNetConfig {
            fms: 0,
            ..UNetConfig::default()
        };
        assert!(bad_fms.validate().is_err());
        let bad_dropout = UNetConfig {
            dropout: 1.0,
            ..UNetConfig::default()
        };
        assert!(bad_dropout.validate().is_err());
    }

    #[test]
    fn init_is_deterministic_from_seed_and_biases_start_at_zero() {
        let device = Device::flex();
        let cfg = UNetConfig {
            fms: 2,
            size: 16,
            ..UNetConfig::default()
        };
        let a = cfg.init(&device, 5).expect("valid");
        let b = cfg.init(&device, 5).expect("valid");
        let c = cfg.init(&device, 6).expect("valid");
        let wa: Vec<f32> = a.decode_b0.weight.val().into_data().iter::<f32>().collect();
        let wb: Vec<f32> = b.decode_b0.weight.val().into_data().iter::<f32>().collect();
        let wc: Vec<f32> = c.decode_b0.weight.val().into_data().iter::<f32>().collect();
        assert_eq!(wa, wb);
        assert_ne!(wa, wc);
        let bias: Vec<f32> = a.encode_a0.bias.val().into_data().iter::<f32>().collect();
        assert!(bias.iter().all(|&v| v == 0.0));
        // He-uniform bound for decodeBa: fan_in = (2·fms + 2·fms) · 9.
        let limit = (6.0f32 / (8.0 * 9.0)).sqrt();
        assert!(wa.iter().all(|v| v.abs() <= limit));
        assert!(wa.iter().any(|v| v.abs() > 0.5 * limit));
    }

    fn conv3x3_layers(m: &UNet) -> Vec<&Conv3x3> {
        vec![
            &m.encode_a0,
            &m.encode_a1,
            &m.encode_b0,
            &m.encode_b1,
            &m.encode_c0,
            &m.encode_c1,
            &m.encode_d0,
            &m.encode_d1,
            &m.encode_e0,
            &m.encode_e1,
            &m.decode_c0,
            &m.decode_c1,
            &m.decode_b0,
            &m.decode_b1,
            &m.decode_a0,
            &m.decode_a1,
            &m.conv_out0,
            &m.conv_out1,
        ]
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    /// The shifted-GEMM convolutions (with their handwritten backward) against burn's
    /// `conv2d`/`conv_transpose2d`: inference output, loss and every convolution's weight and
    /// bias gradient.
    #[test]
    fn shifted_gemm_convolution_matches_burn_conv2d() {
        use crate::LossKind;
        use crate::conv3x3::{ConvImpl, set_conv_impl};
        let base = Device::flex();
        let device = base.clone().autodiff();
        let mut rng = SplitMix64::stream(11, 2);
        let shape = [2, 1, 32, 32];
        let image: Vec<f32> = (0..2 * 32 * 32).map(|_| rng.uniform(1.0)).collect();
        let mask: Vec<f32> = (0..2 * 32 * 32)
            .map(|k| {
                if (k / 32) % 32 < 12 && k % 32 > 10 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        for upsampling in [Upsampling::TransposedConv, Upsampling::Nearest] {
            let cfg = UNetConfig {
                fms: 4,
                size: 32,
                upsampling,
                dropout: 0.2,
            };
            let model = cfg.init(&device, 7).expect("valid config");
            let run = |choice: ConvImpl| {
                set_conv_impl(choice);
                let x = Tensor::<4>::from_data(TensorData::new(image.clone(), shape), &base);
                let inference = values(model.valid().forward(x));
                let x = Tensor::<4>::from_data(TensorData::new(image.clone(), shape), &device);
                let t = Tensor::<4>::from_data(TensorData::new(mask.clone(), shape), &device);
                let loss = LossKind::Dice.compute(model.forward_logits(x, None), t);
                let grads = loss.backward();
                let mut grad_values = Vec::new();
                for layer in conv3x3_layers(&model) {
                    let dw = layer.weight.val().grad(&grads).expect("weight gradient");
                    let db = layer.bias.val().grad(&grads).expect("bias gradient");
                    grad_values.push((values(dw), values(db)));
                }
                for up in [
                    &model.transconv_e,
                    &model.transconv_c,
                    &model.transconv_b,
                    &model.transconv_a,
                ]
                .into_iter()
                .flatten()
                {
                    let dw = up.weight.val().grad(&grads).expect("weight gradient");
                    let db = up.bias.val().grad(&grads).expect("bias gradient");
                    grad_values.push((values(dw), values(db)));
                }
                (inference, values(loss), grad_values)
            };
            let (ours_out, ours_loss, ours_grads) = run(ConvImpl::ShiftedGemm);
            let (burn_out, burn_loss, burn_grads) = run(ConvImpl::BurnConv2d);
            set_conv_impl(ConvImpl::ShiftedGemm);
            assert!(
                max_abs_diff(&ours_out, &burn_out) <= 1e-4,
                "{upsampling:?} forward"
            );
            assert!(
                max_abs_diff(&ours_loss, &burn_loss) <= 1e-5,
                "{upsampling:?} loss"
            );
            for (i, ((dw, db), (bw, bb))) in ours_grads.iter().zip(&burn_grads).enumerate() {
                let scale = 1.0 + bw.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(
                    max_abs_diff(dw, bw) <= 1e-4 * scale,
                    "{upsampling:?} layer {i} weight gradient"
                );
                assert!(
                    max_abs_diff(db, bb) <= 1e-4 * scale,
                    "{upsampling:?} layer {i} bias gradient"
                );
                assert!(bw.iter().any(|v| *v != 0.0), "layer {i} has a gradient");
            }
        }
    }

    #[test]
    fn nearest_upsampling_repeats_pixels() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]),
            &device,
        );
        let y: Vec<f32> = upsample_nearest2x(x).into_data().iter::<f32>().collect();
        assert_eq!(
            y,
            vec![
                1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.
            ]
        );
    }
}
