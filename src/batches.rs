//! The one way a pass walks its samples, as burn's `DataLoader` and candle's `batcher`
//! are: batches of a fixed size, in file order over a range or in an epoch's shuffled
//! order, each taken from the pass's tensors (images, masks, maps) onto the device.
//! Training, validation, prediction, evaluation's dice_coef and the benchmarks all take
//! their batches here; the last batch holds what is left.

use std::ops::Range;

use tch::{Device, TchError, Tensor};

/// Which samples a pass visits, in its order.
enum Order {
    /// `from..to` in file order: each batch is a slice of the tensors (no copy).
    Range(Range<usize>),
    /// Indices on the device (an epoch's order): each batch is gathered there.
    Indices { order: Tensor, len: usize },
}

/// How a batch is taken from a tensor.
enum Take {
    /// Rows from this one on (file order).
    Slice(i64),
    /// The rows of these indices (an epoch's order).
    Gather(Tensor),
}

/// The batches of a pass over the samples of `N` tensors alike (first dimension).
pub struct Batches<'a, const N: usize> {
    tensors: [&'a Tensor; N],
    order: Order,
    size: usize,
    device: Device,
}

impl<'a, const N: usize> Batches<'a, N> {
    /// The samples `range`, in file order, `size` at a time.
    pub fn range(
        tensors: [&'a Tensor; N],
        range: Range<usize>,
        size: usize,
        device: Device,
    ) -> Batches<'a, N> {
        Batches {
            tensors,
            order: Order::Range(range),
            size: size.max(1),
            device,
        }
    }

    /// The samples `order` (an epoch's), `size` at a time, gathered on `device` (where
    /// the tensors are).
    pub fn shuffled(
        tensors: [&'a Tensor; N],
        order: &[i64],
        size: usize,
        device: Device,
    ) -> Result<Batches<'a, N>, TchError> {
        let len = order.len();
        let order = Tensor::f_from_slice(order)?.f_to_device(device)?;
        Ok(Batches {
            tensors,
            order: Order::Indices { order, len },
            size: size.max(1),
            device,
        })
    }

    /// The samples of the pass.
    pub fn samples(&self) -> usize {
        match &self.order {
            Order::Range(r) => r.len(),
            Order::Indices { len, .. } => *len,
        }
    }

    /// The number of batches.
    pub fn len(&self) -> usize {
        self.samples().div_ceil(self.size)
    }

    pub fn is_empty(&self) -> bool {
        self.samples() == 0
    }

    /// Where batch `b` lies in the pass: the positions of its samples (0-based).
    pub(crate) fn span(&self, b: usize) -> Range<usize> {
        let start = (b * self.size).min(self.samples());
        start..(start + self.size).min(self.samples())
    }

    /// The size of each batch, in order.
    pub fn sizes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).map(|b| self.span(b).len())
    }

    /// Batch `b` of each tensor, on the device.
    pub fn get(&self, b: usize) -> Result<[Tensor; N], TchError> {
        let span = self.span(b);
        let (start, len) = (span.start as i64, span.len() as i64);
        let take = match &self.order {
            Order::Range(r) => Take::Slice(r.start as i64 + start),
            Order::Indices { order, .. } => Take::Gather(order.f_narrow(0, start, len)?),
        };
        let mut out = Vec::with_capacity(N);
        for t in self.tensors {
            let part = match &take {
                Take::Slice(first) => t.f_narrow(0, *first, len)?,
                Take::Gather(index) => t.f_index_select(0, index)?,
            };
            out.push(part.f_to_device(self.device)?);
        }
        out.try_into()
            .map_err(|_| TchError::Kind("a batch lost one of its tensors".to_owned()))
    }

    /// Every batch, in order.
    pub fn iter(&self) -> impl Iterator<Item = Result<[Tensor; N], TchError>> + '_ {
        (0..self.len()).map(|b| self.get(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn values(t: &Tensor) -> Vec<i64> {
        Vec::<i64>::try_from(&t.to_kind(Kind::Int64)).unwrap()
    }

    #[test]
    fn a_range_comes_in_slices_and_the_last_batch_holds_the_rest() {
        let x = Tensor::arange(10, (Kind::Int64, Device::Cpu));
        let y = &x * 10;
        let b = Batches::range([&x, &y], 2..9, 3, Device::Cpu);
        assert_eq!((b.len(), b.samples()), (3, 7));
        assert_eq!(b.sizes().collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(b.span(1), 3..6);
        let [xs, ys] = b.get(1).unwrap();
        assert_eq!(
            (values(&xs), values(&ys)),
            (vec![5, 6, 7], vec![50, 60, 70])
        );
        let all: Vec<i64> = b.iter().flat_map(|r| values(&r.unwrap()[0])).collect();
        assert_eq!(all, [2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn an_order_is_gathered_batch_by_batch() {
        let x = Tensor::arange(6, (Kind::Int64, Device::Cpu));
        let b = Batches::shuffled([&x], &[4, 0, 5, 1, 3], 2, Device::Cpu).unwrap();
        assert_eq!(b.sizes().collect::<Vec<_>>(), [2, 2, 1]);
        let got: Vec<Vec<i64>> = b.iter().map(|r| values(&r.unwrap()[0])).collect();
        assert_eq!(got, [vec![4, 0], vec![5, 1], vec![3]]);
        assert!(Batches::range([&x], 3..3, 2, Device::Cpu).is_empty());
    }
}
