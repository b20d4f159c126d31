//! Adam as tf-keras computes it, which is not libtorch's Adam: epsilon sits outside the
//! bias correction.
//!
//! Per step t (1-based), in float32 as tf-keras's `Adam.update_step`:
//!   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
//!   m += (g - m) * (1 - beta1);  v += (g^2 - v) * (1 - beta2)
//!   w -= (m * alpha) / (sqrt(v) + epsilon)
//! libtorch adds epsilon to sqrt(v_hat) instead. With the Dice loss, early gradients are
//! far below epsilon, so the two forms train differently.
//! Reference: tf-keras 2.21 `tf_keras/src/optimizers/adam.py`.
//!
//! The weights, gradients and moments live in one flat buffer each ([`flat`]), so a step
//! is seven passes in all, whatever the number of variables.

mod flat;

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{TchError, Tensor};

use crate::keras::AdamState;

/// The optimiser's settings; defaults are the tutorial's (lr 1e-5) and tf-keras's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-5,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

/// Adam over every variable of a VarStore, in name order.
pub struct KerasAdam {
    cfg: AdamConfig,
    iterations: i64,
    vars: Vec<(String, Tensor)>,
    /// The moments, one per variable (views of `flat`'s buffers when there is one).
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    flat: Option<flat::Flat>,
}

impl KerasAdam {
    /// Moves the VarStore's variables into one flat buffer (their values, shapes and
    /// layouts unchanged) and starts with zero moments.
    pub fn new(vs: &VarStore, cfg: AdamConfig) -> Result<KerasAdam, TchError> {
        Self::with_layout(vs, cfg, true)
    }

    /// `flat`: false keeps every variable and moment in its own tensor, stepped one by
    /// one (the layout the flat buffers are checked against).
    pub(crate) fn with_layout(
        vs: &VarStore,
        cfg: AdamConfig,
        flat: bool,
    ) -> Result<KerasAdam, TchError> {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let flat = if flat {
            flat::Flat::adopt(&mut vars)?
        } else {
            None
        };
        let (m, v) = match &flat {
            Some(f) => f.moments()?,
            None => {
                let zeros = || -> Result<Vec<Tensor>, TchError> {
                    vars.iter().map(|(_, t)| t.f_zeros_like()).collect()
                };
                (zeros()?, zeros()?)
            }
        };
        Ok(KerasAdam {
            cfg,
            iterations: 0,
            vars,
            m,
            v,
            flat,
        })
    }

    /// Whether the step runs over the flat buffers.
    #[cfg(test)]
    pub(crate) fn is_flat(&self) -> bool {
        self.flat.as_ref().is_some_and(|f| f.holds(&self.vars))
    }

    /// Sets the learning rate of the next steps (a schedule's).
    pub(crate) fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// Steps taken so far.
    pub fn iterations(&self) -> i64 {
        self.iterations
    }

    pub fn zero_grad(&mut self) -> Result<(), TchError> {
        if let Some(f) = &mut self.flat {
            if f.zero_grad(&self.vars)? {
                return Ok(());
            }
        }
        for (_, t) in &self.vars {
            let mut g = t.f_grad()?;
            if g.defined() {
                let _ = g.f_detach_()?.f_zero_()?;
            }
        }
        Ok(())
    }

    /// One update from the gradients left by `backward`.
    pub fn step(&mut self) -> Result<(), TchError> {
        let c = self.cfg;
        let t = (self.iterations + 1) as f32;
        let beta1_power = (c.beta1 as f32).powf(t);
        let beta2_power = (c.beta2 as f32).powf(t);
        let alpha = (c.lr as f32) * (1.0 - beta2_power).sqrt() / (1.0 - beta1_power);
        // A variable given new storage since (another layout) leaves the flat buffers:
        // the moments stay valid views, and the steps go variable by variable.
        if self.flat.as_ref().is_some_and(|f| !f.holds(&self.vars)) {
            self.flat = None;
        }
        let gathered = match &mut self.flat {
            Some(f) => f.gather_gradients(&self.vars)?,
            None => false,
        };
        let flat = self.flat.as_mut().filter(|_| gathered);
        tch::no_grad(|| -> Result<(), TchError> {
            if let Some(flat::Flat {
                w,
                g: Some(g),
                m,
                v,
                ..
            }) = flat
            {
                return update(w, g, m, v, c, alpha);
            }
            for ((_, w), (m, v)) in self
                .vars
                .iter_mut()
                .zip(self.m.iter_mut().zip(self.v.iter_mut()))
            {
                let g = w.f_grad()?;
                if g.defined() {
                    update(w, &g, m, v, c, alpha)?;
                }
            }
            Ok(())
        })?;
        self.iterations += 1;
        Ok(())
    }

    /// The state to save for `--resume`.
    pub fn state(&self) -> AdamState {
        let names = self.vars.iter().map(|(n, _)| n.clone());
        AdamState {
            iterations: self.iterations,
            m: names
                .clone()
                .zip(self.m.iter().map(Tensor::shallow_clone))
                .collect(),
            v: names
                .zip(self.v.iter().map(Tensor::shallow_clone))
                .collect(),
        }
    }

    /// Variable names and shapes in the order the state lists them.
    pub fn shapes(&self) -> Vec<(String, Vec<i64>)> {
        self.vars
            .iter()
            .map(|(n, t)| (n.clone(), t.size()))
            .collect()
    }

    /// Restores a saved state (moments moved to the variables' device).
    pub(crate) fn load_state(&mut self, state: &AdamState) -> Result<()> {
        if state.m.len() != self.vars.len() || state.v.len() != self.vars.len() {
            bail!(
                "the saved optimizer state has {} variables, the model {}",
                state.m.len(),
                self.vars.len()
            );
        }
        tch::no_grad(|| -> Result<()> {
            for (i, (name, w)) in self.vars.iter().enumerate() {
                let (mn, m) = &state.m[i];
                let (_, v) = &state.v[i];
                if mn != name || m.size() != w.size() || v.size() != w.size() {
                    bail!("the saved optimizer state does not fit variable {name}");
                }
                self.m[i].f_copy_(m)?;
                self.v[i].f_copy_(v)?;
            }
            Ok(())
        })?;
        self.iterations = state.iterations;
        Ok(())
    }
}

/// One Adam update of `w` from `g`. m += (g - m)(1 - b1) and v += (g^2 - v)(1 - b2)
/// are lerps; the update -(m alpha) / (sqrt(v) + eps) is one addcdiv. Seven passes over
/// the weights instead of twelve, three temporaries instead of nine.
fn update(
    w: &mut Tensor,
    g: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    c: AdamConfig,
    alpha: f32,
) -> Result<(), TchError> {
    let _ = m.f_lerp_(g, 1.0 - c.beta1)?;
    let _ = v.f_lerp_(&g.f_square()?, 1.0 - c.beta2)?;
    let mut denom = v.f_sqrt()?;
    let _ = denom.f_add_scalar_(c.epsilon)?;
    let _ = w.f_addcdiv_(&m.f_mul_scalar(-(alpha as f64))?, &denom)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    /// One step by hand: with m = (1-b1) g and v = (1-b2) g^2, the update is
    /// lr * sqrt(1-b2)/(1-b1) * (1-b1) g / (sqrt(1-b2)|g| + eps).
    #[test]
    fn first_step_puts_epsilon_outside() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[3], nn::Init::Const(0.0));
        let mut opt = KerasAdam::new(&vs, AdamConfig::default()).unwrap();
        let g = [1e-3f64, 1e-9, -2e-8];
        let target = Tensor::from_slice(&g).to_kind(Kind::Float);
        (&w * &target).sum(Kind::Float).backward();
        opt.step().unwrap();
        let c = AdamConfig::default();
        for (i, gi) in g.iter().enumerate() {
            let alpha = c.lr * (1.0 - c.beta2).sqrt() / (1.0 - c.beta1);
            let want =
                -alpha * (1.0 - c.beta1) * gi / ((1.0 - c.beta2).sqrt() * gi.abs() + c.epsilon);
            let got = w.double_value(&[i as i64]);
            assert!(
                (got - want).abs() < 1e-12 + 1e-5 * want.abs(),
                "{i}: {got} vs {want}"
            );
        }
        // The libtorch form would move the 1e-9 gradient by about lr * 1e-9 / (1e-9 + eps')
        // with eps' = 1e-7 added to the corrected sqrt: different.
        let textbook = -c.lr * 1e-9 / (1e-9 + c.epsilon);
        assert!((w.double_value(&[1]) - textbook).abs() > 1e-8);
        assert_eq!(opt.iterations(), 1);
    }

    /// Variables of several sizes (one of them channels-last), three steps of a loss
    /// whose gradient changes each step: the flat buffers give the per-variable result
    /// bit for bit, and backward wrote into the flat gradient buffer.
    #[test]
    fn flat_buffers_step_as_variable_by_variable() {
        let run = |flat: bool| {
            tch::manual_seed(7);
            let vs = nn::VarStore::new(Device::Cpu);
            let root = vs.root();
            let randn = nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            };
            let a = root.var("a", &[8, 3, 3, 3], randn);
            let b = root.var("b", &[13], randn);
            let c = root.var("c", &[5, 7], randn);
            tch::no_grad(|| {
                let mut a = a.shallow_clone();
                let cl = a.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
                a.set_data(&cl);
            });
            let mut opt = KerasAdam::with_layout(&vs, AdamConfig::default(), flat).unwrap();
            assert_eq!(opt.is_flat(), flat);
            for step in 0..3 {
                opt.zero_grad().unwrap();
                let k = 1.0 + step as f64;
                let loss = (&a * &a * k).sum(Kind::Float)
                    + (&b * k).sin().sum(Kind::Float)
                    + (&c * &c * &c).sum(Kind::Float) * 1e-4;
                loss.backward();
                opt.step().unwrap();
            }
            assert!(a.stride()[1] == 1, "a keeps its channels-last layout");
            if flat {
                let g = opt
                    .flat
                    .as_ref()
                    .and_then(|f| f.g.as_ref())
                    .expect("gradients");
                let (start, end) = (g.data_ptr() as usize, g.data_ptr() as usize + 4 * 242);
                let at = b.grad().data_ptr() as usize;
                assert!(
                    start <= at && at < end,
                    "backward wrote into the flat buffer"
                );
            }
            let vec = |t: &Tensor| Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap();
            let state = opt.state();
            [&a, &b, &c]
                .into_iter()
                .map(vec)
                .chain(state.m.iter().map(|(_, t)| vec(t)))
                .collect::<Vec<_>>()
        };
        let (flat, single) = (run(true), run(false));
        assert_eq!(flat.len(), 6);
        for (x, y) in flat.iter().zip(&single) {
            let bits = |v: &Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(x), bits(y));
        }
        assert_ne!(flat[0], run_untrained());
    }

    /// A gradient given storage of its own after the buffers were made is zeroed and
    /// stepped on its own, not through the stale buffer.
    #[test]
    fn a_gradient_that_left_the_buffer_is_still_zeroed() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[5], nn::Init::Const(1.0));
        let mut opt = KerasAdam::new(&vs, AdamConfig::default()).unwrap();
        (&w * &w).sum(Kind::Float).backward();
        opt.step().unwrap();
        let mut g = w.grad();
        g.set_data(&Tensor::ones([5], (Kind::Float, Device::Cpu)));
        opt.zero_grad().unwrap();
        assert_eq!(w.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
        (&w * 3.0).sum(Kind::Float).backward();
        let before = w.double_value(&[0]);
        opt.step().unwrap();
        assert!(
            w.double_value(&[0]) < before,
            "the step used the gradient 3"
        );
    }

    fn run_untrained() -> Vec<f32> {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let a = vs.root().var(
            "a",
            &[8, 3, 3, 3],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        Vec::<f32>::try_from(&a.flatten(0, -1)).unwrap()
    }
}
