//! libtorch's failures as errors a user can act on. Every tensor operation on a user's
//! path goes through tch's fallible (`f_`) methods; this turns the error they return,
//! libtorch's C++ exception text with its backtrace, into one line: the first line of
//! libtorch's message, and for out-of-memory a plain statement with the device, the batch
//! size and what to try.

use anyhow::anyhow;
use tch::{Device, TchError};

/// `cpu`, `cuda:0`: a device as the `--device` flag spells it.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_owned(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The first non-empty line of a libtorch error, without tch's prefix and without the
/// C++ backtrace that follows it.
pub(crate) fn first_line(e: &TchError) -> String {
    let text = match e {
        TchError::Torch(m) => m.clone(),
        other => other.to_string(),
    };
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("libtorch failed without a message")
        .to_owned()
}

/// Whether libtorch's message says memory ran out (CUDA's caching allocator, cuBLAS,
/// or the CPU allocator).
pub(crate) fn is_out_of_memory(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("out of memory")
        || l.contains("not enough memory")
        || l.contains("can't allocate memory")
        || l.contains("alloc_failed")
}

/// What a user can change when memory runs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// The work runs in batches of this many images.
    BatchSize(usize),
    /// The work builds or holds a U-Net of this base width.
    BaseWidth(i64),
    /// Nothing to suggest.
    None,
}

/// A libtorch failure while doing `what` (e.g. "training step 3 of epoch 2") on `device`.
pub(crate) fn explain(e: TchError, what: &str, device: Device, advice: Advice) -> anyhow::Error {
    let line = first_line(&e);
    if is_out_of_memory(&line) {
        // CUDA says "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has ...": keep
        // the size it tried, drop the allocator statistics.
        let tried = line
            .find("Tried to allocate")
            .map(|i| {
                let rest = &line[i..];
                let end = rest.find(". ").map_or(rest.len(), |e| e + 1);
                format!(" ({})", rest[..end].trim_end_matches('.'))
            })
            .unwrap_or_default();
        let device = device_name(device);
        match advice {
            Advice::BatchSize(b) => anyhow!(
                "out of memory on {device} during {what} at --batch-size {b}{tried}; try a \
                 smaller --batch-size"
            ),
            Advice::BaseWidth(w) => anyhow!(
                "out of memory on {device} during {what}, for a U-Net of base width {w}{tried}; \
                 try a smaller --base-width or another --device"
            ),
            Advice::None => anyhow!("out of memory on {device} during {what}{tried}"),
        }
    } else {
        anyhow!("libtorch failed during {what}: {line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn a_real_shape_error_becomes_its_first_line() {
        let a = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([4, 5], (Kind::Float, Device::Cpu));
        let e = a.f_matmul(&b).unwrap_err();
        let msg = explain(e, "a test", Device::Cpu, Advice::BatchSize(8)).to_string();
        assert!(msg.starts_with("libtorch failed during a test: "), "{msg}");
        assert!(msg.contains("cannot be multiplied"), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert!(!msg.contains("Exception raised from"), "{msg}");
    }

    #[test]
    fn a_real_allocation_failure_says_out_of_memory() {
        // 2^45 floats: 128 TiB, more than any machine's address space.
        let e = Tensor::f_empty([1i64 << 45], (Kind::Float, Device::Cpu)).unwrap_err();
        let msg = explain(
            e,
            "prediction of batch 1",
            Device::Cpu,
            Advice::BatchSize(32),
        )
        .to_string();
        assert!(
            msg.starts_with("out of memory on cpu during prediction of batch 1 at --batch-size 32"),
            "{msg}"
        );
        assert!(msg.ends_with("try a smaller --batch-size"), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }

    #[test]
    fn cuda_out_of_memory_keeps_the_size_it_tried() {
        // CUDA's message, as PyTorch 2.11's caching allocator words it.
        let e = TchError::Torch(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of \
             139.80 GiB of which 1.2 GiB is free.\nException raised from malloc at \
             CUDACachingAllocator.cpp:1\nframe #0: c10::Error::Error"
                .to_owned(),
        );
        let msg = explain(
            e,
            "training step 1 of epoch 1",
            Device::Cuda(0),
            Advice::BatchSize(4096),
        )
        .to_string();
        assert_eq!(
            msg,
            "out of memory on cuda:0 during training step 1 of epoch 1 at --batch-size 4096 \
             (Tried to allocate 2.00 GiB); try a smaller --batch-size"
        );
    }
}
