//! Flushing denormal floats to zero on the CPU (`--flush-denormals`). As training
//! pushes the sigmoid of background pixels towards 0, gradients of 1e-39 and smaller
//! appear, and x86 CPUs compute with such denormal numbers many times slower than with
//! normal ones. TensorFlow's CPU threads flush them to zero (FTZ and DAZ) by default.
//! Off by default: it can change the last bits of a run.
//!
//! The flags live in each thread's MXCSR register, and on Linux a new thread starts
//! with its creator's: set here, in the main thread before libtorch or rayon start
//! their thread pools, they reach every worker.

/// MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// Sets FTZ and DAZ for this thread and the threads it creates from now on; returns
/// whether the CPU has them (x86-64 only).
pub fn flush_to_zero() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register;
        // setting FTZ and DAZ changes only how denormal floats are rounded.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= FTZ_DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    #[test]
    fn denormals_become_zero_on_this_thread_and_its_children() {
        let tiny = black_box(1e-38f32);
        let before = black_box(tiny * 1e-3);
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        assert!(
            before > 0.0 && !before.is_normal(),
            "{before:e} is a denormal"
        );
        assert!(super::flush_to_zero());
        assert_eq!(black_box(tiny) * black_box(1e-3f32), 0.0);
        let child = std::thread::spawn(move || black_box(tiny) * black_box(1e-3f32));
        assert_eq!(child.join().unwrap(), 0.0);
    }
}
