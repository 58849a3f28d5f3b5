//! Seeded brain-like phantoms: a head ellipse (scalp, skull, CSF rim, cortex, white matter,
//! ventricles) with smooth textured tissue, a bias field and noise, plus 0–2 tumour blobs of
//! varied size, shape and contrast. The mask is exactly the blob pixels.
//!
//! Determinism: every random draw comes from [`Rng`], and every transcendental from `libm`,
//! so a seed gives the same bytes on every machine.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::augment::Augmentation;
use crate::rng::{Rng, mix_seed};
use crate::{DataConfig, DataError, Slice, SliceSource, Split, check_index, z_score};

/// Probability that a phantom has no tumour.
pub const TUMOUR_FREE_PROBABILITY: f64 = 0.2;
/// Probability that a phantom has two tumours (one tumour otherwise).
pub const TWO_TUMOUR_PROBABILITY: f64 = 0.3;

/// Synthetic phantoms, one independent seed stream per (seed, split, index).
#[derive(Debug)]
pub struct SyntheticSource {
    size: usize,
    seed: u64,
    split: Split,
    len: usize,
    augment: bool,
    epoch: AtomicU64,
}

impl SyntheticSource {
    /// The `split` of the synthetic source described by `cfg` (size must already be valid).
    pub fn new(cfg: &DataConfig, split: Split) -> Self {
        Self {
            size: cfg.size,
            seed: cfg.seed,
            split,
            len: cfg.generated_len(split),
            augment: cfg.augment,
            epoch: AtomicU64::new(0),
        }
    }
}

impl SliceSource for SyntheticSource {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Slice, DataError> {
        check_index(index, self.len)?;
        let slice_seed = mix_seed(&[self.seed, self.split.salt(), index as u64]);
        let mut slice = phantom(slice_seed, self.size);
        if self.augment {
            let epoch = self.epoch.load(Ordering::Relaxed);
            let mut rng = Rng::new(mix_seed(&[slice_seed, 0xA0A0, epoch]));
            let aug = Augmentation::random(&mut rng);
            slice.image = aug.apply(&slice.image, self.size);
            slice.mask = aug.apply(&slice.mask, self.size);
        }
        Ok(slice)
    }

    fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!(
            "synthetic phantoms ({} slices of {}x{}, seed {}, {} split{})",
            self.len,
            self.size,
            self.size,
            self.seed,
            self.split,
            if self.augment { ", augmented" } else { "" }
        )
    }
}

/// Smooth random field: random lattice values, smoothstep-bilinear interpolation.
struct ValueNoise {
    cells: usize,
    spacing: f64,
    values: Vec<f64>,
}

impl ValueNoise {
    fn new(rng: &mut Rng, size: usize, spacing: f64) -> Self {
        let spacing = spacing.max(1.0);
        let cells = (size as f64 / spacing) as usize + 3;
        let values = (0..cells * cells).map(|_| rng.uniform(-1.0, 1.0)).collect();
        Self {
            cells,
            spacing,
            values,
        }
    }

    fn at(&self, x: f64, y: f64) -> f64 {
        let gx = (x / self.spacing).max(0.0);
        let gy = (y / self.spacing).max(0.0);
        let ix = (gx as usize).min(self.cells - 2);
        let iy = (gy as usize).min(self.cells - 2);
        let fx = smooth((gx - ix as f64).min(1.0));
        let fy = smooth((gy - iy as f64).min(1.0));
        let v = |cx: usize, cy: usize| self.values[cy * self.cells + cx];
        let top = v(ix, iy) + (v(ix + 1, iy) - v(ix, iy)) * fx;
        let bottom = v(ix, iy + 1) + (v(ix + 1, iy + 1) - v(ix, iy + 1)) * fx;
        top + (bottom - top) * fy
    }
}

fn smooth(t: f64) -> f64 {
    t * t * (3.0 - 2.0 * t)
}

/// 0 below `edge - width/2`, 1 above `edge + width/2`, smooth in between.
fn ramp(value: f64, edge: f64, width: f64) -> f64 {
    let t = ((value - edge) / width + 0.5).clamp(0.0, 1.0);
    smooth(t)
}

/// One tumour: centre, base radius and a few angular harmonics for an irregular outline.
struct Blob {
    cx: f64,
    cy: f64,
    radius: f64,
    harmonics: [(f64, f64); 3],
    contrast: f64,
    necrotic: bool,
}

impl Blob {
    /// Boundary radius in direction `angle`.
    fn radius_at(&self, angle: f64) -> f64 {
        let mut scale = 1.0;
        for (k, &(amplitude, phase)) in self.harmonics.iter().enumerate() {
            scale += amplitude * libm::cos((k as f64 + 2.0) * angle + phase);
        }
        self.radius * scale
    }
}

/// Generates one phantom of `size`×`size` from `seed`: z-scored image, binary mask.
pub fn phantom(seed: u64, size: usize) -> Slice {
    let mut rng = Rng::new(seed);
    let s = size as f64;

    // Head geometry: the axial level changes the head size; a small tilt and offset.
    let semi_x = rng.uniform(0.34, 0.42) * s;
    let semi_y = semi_x * rng.uniform(1.08, 1.22);
    let semi_y = semi_y.min(0.47 * s);
    let centre_x = s / 2.0 + rng.uniform(-0.03, 0.03) * s;
    let centre_y = s / 2.0 + rng.uniform(-0.03, 0.03) * s;
    let tilt = rng.uniform(-0.25, 0.25);
    let (sin_t, cos_t) = (libm::sin(tilt), libm::cos(tilt));
    let outline_wobble = [
        (rng.uniform(0.0, 0.025), rng.uniform(0.0, 6.3)),
        (rng.uniform(0.0, 0.015), rng.uniform(0.0, 6.3)),
    ];

    // Tissue intensities (FLAIR-like: CSF dark, grey matter a little brighter than white).
    let white = rng.uniform(0.42, 0.50);
    let grey = white + rng.uniform(0.06, 0.12);
    let scalp = rng.uniform(0.55, 0.8);
    let csf = rng.uniform(0.03, 0.09);
    let gyri_count = rng.uniform(14.0, 22.0);
    let gyri_phase = rng.uniform(0.0, 6.3);

    // Ventricles: a pair of tilted ellipses near the centre, absent on high/low slices.
    let has_ventricles = rng.chance(0.75);
    let ventricle_scale = rng.uniform(0.6, 1.3);
    let ventricle_spread = rng.uniform(0.04, 0.08);
    let ventricle_shift = rng.uniform(-0.12, 0.02);

    // Smooth random fields: tissue texture (two octaves), gyral perturbation, bias field.
    let texture_coarse = ValueNoise::new(&mut rng, size, s / 6.0);
    let texture_fine = ValueNoise::new(&mut rng, size, s / 20.0);
    let gyri_noise = ValueNoise::new(&mut rng, size, s / 8.0);
    let tumour_texture = ValueNoise::new(&mut rng, size, s / 24.0);
    let bias_x = rng.uniform(-0.15, 0.15);
    let bias_y = rng.uniform(-0.15, 0.15);
    let noise_sigma = rng.uniform(0.015, 0.04);

    // Tumours: 0 (20 %), 1 (50 %) or 2 (30 %) blobs inside the brain.
    let draw = rng.next_f64();
    let n_blobs = if draw < TUMOUR_FREE_PROBABILITY {
        0
    } else if draw < 1.0 - TWO_TUMOUR_PROBABILITY {
        1
    } else {
        2
    };
    let brain_edge = 0.86;
    let mut blobs = Vec::with_capacity(n_blobs);
    for _ in 0..n_blobs {
        // A centre in the ellipse coordinates (u, v), |(u, v)| < 0.62, by rejection.
        let (mut u, mut v);
        loop {
            u = rng.uniform(-0.62, 0.62);
            v = rng.uniform(-0.62, 0.62);
            if u * u + v * v < 0.62 * 0.62 {
                break;
            }
        }
        let (ex, ey) = (u * semi_x, v * semi_y);
        let cx = centre_x + ex * cos_t - ey * sin_t;
        let cy = centre_y + ex * sin_t + ey * cos_t;
        // Radius: log-uniform-ish spread from small foci to large masses, at least 1.5 px.
        let r_frac = 0.03 + 0.10 * rng.next_f64() * rng.next_f64().max(0.3);
        let radius = (r_frac * s).max(1.5);
        let harmonics = [
            (rng.uniform(0.0, 0.22), rng.uniform(0.0, 6.3)),
            (rng.uniform(0.0, 0.12), rng.uniform(0.0, 6.3)),
            (rng.uniform(0.0, 0.08), rng.uniform(0.0, 6.3)),
        ];
        let contrast = rng.uniform(0.25, 0.85);
        let necrotic = radius > 0.06 * s && rng.chance(0.35);
        blobs.push(Blob {
            cx,
            cy,
            radius,
            harmonics,
            contrast,
            necrotic,
        });
    }

    let (ventricle_sin, ventricle_cos) = libm::sincos(0.12);
    let mut image = vec![0.0f32; size * size];
    let mut mask = vec![0.0f32; size * size];
    let pixel = 1.0 / semi_x.min(semi_y); // one pixel in ellipse units
    for row in 0..size {
        for col in 0..size {
            let px = col as f64 + 0.5;
            let py = row as f64 + 0.5;
            let dx = px - centre_x;
            let dy = py - centre_y;
            let u = (dx * cos_t + dy * sin_t) / semi_x;
            let v = (-dx * sin_t + dy * cos_t) / semi_y;
            let rho_plain = libm::sqrt(u * u + v * v);
            let bias = 1.0 + bias_x * (px / s - 0.5) * 2.0 + bias_y * (py / s - 0.5) * 2.0;
            let (noise_real, noise_imaginary) = rng.normal_pair();
            if rho_plain > 1.1 {
                // Well outside the head (the outline wobbles by at most 4 %): background only.
                let (re, im) = (noise_sigma * noise_real, noise_sigma * noise_imaginary);
                image[row * size + col] = libm::sqrt(re * re + im * im) as f32;
                continue;
            }
            let angle = libm::atan2(v, u);
            let mut wobble = 1.0;
            for (k, &(amplitude, phase)) in outline_wobble.iter().enumerate() {
                wobble += amplitude * libm::cos((k as f64 + 2.0) * angle + phase);
            }
            let rho = rho_plain / wobble;

            // Radial layers, outside in: scalp, skull, CSF rim, cortex, white matter.
            let w = 1.5 * pixel;
            let inside_head = 1.0 - ramp(rho, 1.0, w);
            let inside_skull = 1.0 - ramp(rho, 0.95, w);
            let inside_csf = 1.0 - ramp(rho, 0.90, w);
            let inside_brain = 1.0 - ramp(rho, brain_edge, w);
            let gyral = libm::sin(gyri_count * angle + gyri_phase + 4.0 * gyri_noise.at(px, py));
            let cortex_depth = 0.72 + 0.04 * gyral + 0.03 * texture_coarse.at(py, px);
            let in_white = 1.0 - ramp(rho, cortex_depth, 3.0 * pixel);
            let texture = 1.0 + 0.10 * texture_coarse.at(px, py) + 0.05 * texture_fine.at(px, py);
            let mut brain = (white * in_white + grey * (1.0 - in_white)) * texture;
            // Sulci: thin dark CSF lines reaching in from the rim.
            let sulcus_depth = cortex_depth + 0.04 + 0.06 * (1.0 + gyri_noise.at(py, px));
            let sulcus = 0.8 * ramp(gyral, 0.95, 0.06) * ramp(rho, sulcus_depth, 4.0 * pixel);
            brain = brain * (1.0 - sulcus) + csf * sulcus;

            if has_ventricles && u.abs() < 0.7 && (v - ventricle_shift).abs() < 0.45 {
                for side in [-1.0, 1.0] {
                    // Crescents, closest in the middle and diverging at both horns: ")(".
                    let vv = v - ventricle_shift;
                    let bow = 1.4 * vv * vv + 0.1 * vv;
                    let vu = u - side * (ventricle_spread * ventricle_scale + bow);
                    let (sa, ca) = (side * ventricle_sin, ventricle_cos);
                    let a = (vu * ca + vv * sa) / (0.045 * ventricle_scale);
                    let b = (-vu * sa + vv * ca) / (0.24 * ventricle_scale);
                    let r = libm::sqrt(a * a + b * b);
                    let inside = 1.0 - ramp(r, 1.0, 2.0 * pixel / (0.045 * ventricle_scale));
                    brain = brain * (1.0 - inside) + csf * inside;
                }
            }

            let mut value = scalp * inside_head * (1.0 - inside_skull)
                + 0.06 * inside_skull * (1.0 - inside_csf)
                + csf * inside_csf * (1.0 - inside_brain)
                + brain * inside_brain;

            // Tumours: hyperintense, textured, optionally with a darker necrotic core. The mask
            // is the blob outline at the pixel centre, restricted to the brain.
            let mut in_tumour = false;
            for blob in &blobs {
                let bx = px - blob.cx;
                let by = py - blob.cy;
                let reach = blob.radius * 1.5;
                if bx.abs() > reach || by.abs() > reach {
                    continue;
                }
                let d = libm::sqrt(bx * bx + by * by);
                let boundary = blob.radius_at(libm::atan2(by, bx));
                if d < boundary && rho < brain_edge {
                    in_tumour = true;
                    let mut lift = blob.contrast * (0.85 + 0.15 * tumour_texture.at(px, py));
                    if blob.necrotic && d < 0.45 * boundary {
                        lift *= 0.35;
                    }
                    value += lift;
                }
            }
            if in_tumour {
                mask[row * size + col] = 1.0;
            }

            // Bias field, then Rician-like noise (magnitude of a noisy signal).
            let noisy = value * bias + noise_sigma * noise_real;
            let imaginary = noise_sigma * noise_imaginary;
            image[row * size + col] = libm::sqrt(noisy * noisy + imaginary * imaginary) as f32;
        }
    }
    z_score(&mut image);
    Slice {
        image,
        mask,
        height: size,
        width: size,
    }
}
