//! Adam in one pass over each parameter on the CPU.
//!
//! burn's [`Adam`] updates a parameter with about a dozen tensor operations (scale the first
//! moment, scale the gradient, add, square, …), each a pass over the parameter and most with a
//! fresh buffer: ≈ 10 ms of a 128×128 training step here, on one thread. [`FusedAdam`] reads the
//! parameter, its gradient and both moments once and writes the three results in place, on
//! rayon's threads, with the same arithmetic in the same order, so its results are bit-identical
//! to burn's (`fused_adam_matches_burn_adam_bit_for_bit`). Its state is burn's [`AdamState`], so
//! checkpoints written with either load into the other. Off the CPU (GPU backends) and for
//! anything but f32 it runs burn's [`Adam`].

use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

/// Parameter values per parallel task.
const CHUNK: usize = 1 << 14;

/// Adam (no weight decay, no AMSGrad) as one fused pass per parameter on Flex; see the module
/// documentation.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// burn's Adam with the same settings, for the tensors the fused pass does not take.
    burn: Adam,
}

impl FusedAdam {
    /// Adam with `β₁ = 0.9`, `β₂ = 0.999` (Keras' and burn's defaults) and `epsilon`.
    pub fn new(epsilon: f32) -> Self {
        let (beta_1, beta_2) = (0.9, 0.999);
        Self {
            beta_1,
            beta_2,
            epsilon,
            burn: AdamConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .build(),
        }
    }

    /// A [`ModuleOptimizer`] that updates every parameter with this optimizer.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    /// The fused update of `param`, `grad` and the moments `m`, `v` (all the same length,
    /// updated in place) at step `time` (1 for the first), with burn's arithmetic.
    fn update(
        &self,
        lr: f32,
        time: i32,
        param: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        let (b1, b2) = (self.beta_1, self.beta_2);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let bias_correction2_sqrt = (1.0 - b2.powi(time)).sqrt();
        let combined_factor = bias_correction2_sqrt / (1.0 - b1.powi(time));
        let denominator_epsilon = self.epsilon * bias_correction2_sqrt;
        let first = time == 1;
        param
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
                    // As burn: the first step starts the moments from the gradient alone.
                    let (m1, m2) = if first {
                        (g * f1, (g * g) * f2)
                    } else {
                        (*m * b1 + g * f1, *v * b2 + (g * g) * f2)
                    };
                    let step = (m1 * combined_factor) / (m2.sqrt() + denominator_epsilon);
                    *p -= step * lr;
                    *m = m1;
                    *v = m2;
                }
            });
    }
}

/// The f32 values of a CPU tensor, without a copy when nothing else holds them.
fn host_values<const D: usize>(t: Tensor<D>) -> Option<Vec<f32>> {
    t.into_data().try_into_vec::<f32>().ok()
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let device = tensor.device();
        let on_cpu = device.clone().without_autodiff() == Device::flex()
            && tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && state.as_ref().is_none_or(|s| {
                s.momentum.max_moment_2.is_none()
                    && s.momentum.moment_1.dtype() == DType::F32
                    && s.momentum.moment_2.dtype() == DType::F32
            });
        if !on_cpu {
            return self.burn.step(lr, tensor, grad, state);
        }
        let shape = tensor.shape();
        let n = shape.num_elements();
        let (time, m, v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                host_values(s.momentum.moment_1),
                host_values(s.momentum.moment_2),
            ),
            None => (1, Some(vec![0.0; n]), Some(vec![0.0; n])),
        };
        let (Some(mut param), Some(grad), Some(mut m), Some(mut v)) =
            (host_values(tensor), host_values(grad), m, v)
        else {
            unreachable!("f32 tensors on Flex give f32 values (checked above)")
        };
        let time_i32 = i32::try_from(time).unwrap_or(i32::MAX);
        self.update(lr as f32, time_i32, &mut param, &grad, &mut m, &mut v);
        let tensor = |values: Vec<f32>| {
            Tensor::<D>::from_data(TensorData::new(values, shape.clone()), &device)
        };
        let momentum = AdaptiveMomentumState::new(time, tensor(m), tensor(v));
        (tensor(param), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn tensor(rng: &mut SplitMix64, n: usize, scale: f32) -> Tensor<2> {
        let values: Vec<f32> = (0..n).map(|_| rng.uniform(scale)).collect();
        Tensor::from_data(TensorData::new(values, [1, n]), &Device::flex())
    }

    fn bits<const D: usize>(t: &Tensor<D>) -> Vec<u32> {
        let values = t
            .clone()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        assert!(!values.is_empty());
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn fused_adam_matches_burn_adam_bit_for_bit() {
        // More values than one parallel task takes, with gradients from tiny to large.
        let n = 3 * CHUNK + 35;
        let mut rng = SplitMix64::new(7);
        let fused = FusedAdam::new(1e-7);
        let burn = AdamConfig::new().with_epsilon(1e-7).build();
        let start = tensor(&mut rng, n, 0.5);
        let (mut p_fused, mut p_burn) = (start.clone(), start);
        let (mut s_fused, mut s_burn) = (None, None);
        for (step, (scale, lr)) in [(1e-6, 1e-3), (1.0, 1e-4), (30.0, 5e-4), (0.01, 1e-4)]
            .into_iter()
            .enumerate()
        {
            let grad = tensor(&mut rng, n, scale);
            (p_fused, s_fused) = fused.step(lr, p_fused, grad.clone(), s_fused);
            (p_burn, s_burn) = burn.step(lr, p_burn, grad, s_burn);
            assert_eq!(
                bits(&p_fused),
                bits(&p_burn),
                "parameters after step {step}"
            );
            let (Some(f), Some(b)) = (&s_fused, &s_burn) else {
                panic!("both optimizers keep a state");
            };
            assert_eq!(f.momentum.time, b.momentum.time);
            assert_eq!(bits(&f.momentum.moment_1), bits(&b.momentum.moment_1));
            assert_eq!(bits(&f.momentum.moment_2), bits(&b.momentum.moment_2));
        }
        // The parameters moved: the comparison was not between two unchanged tensors.
        let moved = bits(&p_fused) != bits(&tensor(&mut SplitMix64::new(7), n, 0.5));
        assert!(moved);
    }
}
