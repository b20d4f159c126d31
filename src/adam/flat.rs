//! One flat buffer each for the weights, their gradients and Adam's two moments, every
//! variable a view into it, so an Adam step is seven passes over four buffers instead of
//! seven small passes per variable (a GPU step at batch 32 is bound by kernel launches).
//!
//! Each view keeps its variable's shape and strides (NCHW or channels-last), laid out in
//! memory order, so the flat buffers hold the same numbers in the same places as the
//! variables' own storage would: the element-wise arithmetic, and so every result, is
//! bit for bit the per-variable one.

use tch::{TchError, Tensor};

/// The buffers, and where each variable lies in them.
pub(super) struct Flat {
    pub w: Tensor,
    pub g: Option<Tensor>,
    pub m: Tensor,
    pub v: Tensor,
    /// (element offset, shape, strides) of each variable, in the optimiser's order.
    spans: Vec<Span>,
    /// The weights' data pointers once they were moved in; a variable whose storage was
    /// replaced since (a new layout) sends the steps back to one variable at a time.
    pointers: Vec<usize>,
    /// The gradients' data pointers once they were moved in; a gradient that left the
    /// buffer sends that step back to one variable at a time.
    grad_pointers: Vec<usize>,
}

struct Span {
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

impl Span {
    fn view(&self, flat: &Tensor) -> Result<Tensor, TchError> {
        flat.f_as_strided(&self.size, &self.stride, self.offset)
    }
}

/// Where `t`'s gradient's data lies (0 without a gradient).
fn grad_pointer(t: &Tensor) -> usize {
    let g = t.grad();
    if g.defined() {
        g.data_ptr() as usize
    } else {
        0
    }
}

/// Whether `t`'s strides cover exactly `numel` consecutive elements (no gaps, no
/// overlap): then the tensor can be a view of a slice of a flat buffer.
fn dense(t: &Tensor) -> bool {
    let mut dims: Vec<(i64, i64)> = t.size().into_iter().zip(t.stride()).collect();
    dims.sort_by_key(|&(_, stride)| stride);
    let mut expect = 1;
    for (size, stride) in dims {
        if size == 1 {
            continue;
        }
        if stride != expect {
            return false;
        }
        expect *= size;
    }
    true
}

impl Flat {
    /// Moves the weights into one buffer and makes zeroed moments beside it. `None` when
    /// the variables cannot share one (different kinds or devices, gaps in a layout):
    /// the optimiser then steps variable by variable.
    pub(crate) fn adopt(vars: &mut [(String, Tensor)]) -> Result<Option<Flat>, TchError> {
        let Some((_, first)) = vars.first() else {
            return Ok(None);
        };
        let (kind, device) = (first.kind(), first.device());
        if vars
            .iter()
            .any(|(_, t)| t.kind() != kind || t.device() != device || !dense(t))
        {
            return Ok(None);
        }
        let mut spans = Vec::with_capacity(vars.len());
        let mut total = 0;
        for (_, t) in vars.iter() {
            spans.push(Span {
                offset: total,
                size: t.size(),
                stride: t.stride(),
            });
            total += t.numel() as i64;
        }
        let w = Tensor::f_empty([total], (kind, device))?;
        tch::no_grad(|| -> Result<(), TchError> {
            for ((_, t), span) in vars.iter_mut().zip(&spans) {
                let mut view = span.view(&w)?;
                view.f_copy_(t)?;
                t.f_set_data(&view)?;
            }
            Ok(())
        })?;
        let pointers = vars.iter().map(|(_, t)| t.data_ptr() as usize).collect();
        Ok(Some(Flat {
            m: w.f_zeros_like()?,
            v: w.f_zeros_like()?,
            w,
            g: None,
            spans,
            pointers,
            grad_pointers: Vec::new(),
        }))
    }

    /// The moments' views, one per variable, shaped and strided as the variables.
    pub fn moments(&self) -> Result<(Vec<Tensor>, Vec<Tensor>), TchError> {
        let views = |flat: &Tensor| -> Result<Vec<Tensor>, TchError> {
            self.spans.iter().map(|s| s.view(flat)).collect()
        };
        Ok((views(&self.m)?, views(&self.v)?))
    }

    /// Whether every weight still lies in the buffer.
    pub fn holds(&self, vars: &[(String, Tensor)]) -> bool {
        vars.len() == self.pointers.len()
            && vars
                .iter()
                .zip(&self.pointers)
                .all(|((_, t), &p)| t.data_ptr() as usize == p)
    }

    /// Makes the gradients' buffer on the first step that has every gradient: each
    /// gradient's storage becomes its view, so backward accumulates into it in place.
    /// False while a gradient is missing, or when one no longer lies in the buffer.
    pub(crate) fn gather_gradients(&mut self, vars: &[(String, Tensor)]) -> Result<bool, TchError> {
        if self.g.is_some() {
            return Ok(self.grads_in_buffer(vars));
        }
        let grads: Vec<Tensor> = vars.iter().map(|(_, t)| t.grad()).collect();
        // The spans' strides are dense, so a gradient with its variable's strides fits.
        let fits = |(g, s): (&Tensor, &Span)| {
            g.defined() && g.kind() == self.w.kind() && g.stride() == s.stride
        };
        if !grads.iter().zip(&self.spans).all(fits) {
            return Ok(false);
        }
        let flat = self.w.f_zeros_like()?;
        for (mut g, span) in grads.into_iter().zip(&self.spans) {
            let mut view = span.view(&flat)?;
            view.f_copy_(&g)?;
            g.f_set_data(&view)?;
        }
        self.g = Some(flat);
        self.grad_pointers = vars.iter().map(|(_, t)| grad_pointer(t)).collect();
        Ok(true)
    }

    /// Whether every gradient still lies in the buffer.
    fn grads_in_buffer(&self, vars: &[(String, Tensor)]) -> bool {
        let pointers = vars.iter().map(|(_, t)| grad_pointer(t));
        self.g.is_some() && pointers.eq(self.grad_pointers.iter().copied())
    }

    /// Zeroes every gradient in one pass; false when the gradients are not (all) in the
    /// buffer, for the caller to zero them one by one.
    pub fn zero_grad(&mut self, vars: &[(String, Tensor)]) -> Result<bool, TchError> {
        if !self.grads_in_buffer(vars) {
            return Ok(false);
        }
        if let Some(g) = &mut self.g {
            let _ = g.f_zero_()?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn dense_layouts_are_recognised() {
        let t = Tensor::zeros([4, 3, 2, 2], (Kind::Float, Device::Cpu));
        assert!(dense(&t));
        assert!(dense(
            &t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
        ));
        assert!(!dense(&t.narrow(1, 0, 2)));
        let row = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        assert!(!dense(&row.expand([2, 3], false)));
    }
}
