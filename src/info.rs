//! What nerveseg runs on: the libtorch it was built against, CUDA and cuDNN, the CPU's
//! instruction sets and threads, HDF5.
//! `nerveseg info` prints it, so a user can check a GPU install before training.

use std::fmt;

/// The libtorch version found at build time (see build.rs).
pub const LIBTORCH_VERSION: &str = env!("NERVESEG_LIBTORCH_VERSION");

/// A snapshot of the runtime.
#[derive(Clone, Debug)]
pub struct Info {
    pub nerveseg: &'static str,
    pub libtorch: &'static str,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    pub cudnn_version: Option<i64>,
    pub cpu: crate::cpu::CpuFeatures,
    pub cpu_threads: i32,
    pub hdf5: String,
}

impl Info {
    pub fn collect() -> Info {
        let cuda_available = tch::Cuda::is_available();
        let cudnn_available = tch::Cuda::cudnn_is_available();
        let (major, minor, release) = hdf5::library_version();
        Info {
            nerveseg: env!("CARGO_PKG_VERSION"),
            libtorch: LIBTORCH_VERSION,
            cuda_available,
            cuda_devices: if cuda_available {
                tch::Cuda::device_count()
            } else {
                0
            },
            cudnn_available,
            cudnn_version: cudnn_available.then(tch::utils::version_cudnn),
            cpu: crate::cpu::CpuFeatures::detect(),
            cpu_threads: tch::get_num_threads(),
            hdf5: format!("{major}.{minor}.{release}"),
        }
    }
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        writeln!(f, "nerveseg {}", self.nerveseg)?;
        writeln!(f, "libtorch: {}", self.libtorch)?;
        write!(f, "CUDA available: {}", yes_no(self.cuda_available))?;
        if self.cuda_available {
            let devices: Vec<String> = (0..self.cuda_devices)
                .map(|i| format!("cuda:{i}"))
                .collect();
            write!(
                f,
                " ({} device(s): {})",
                self.cuda_devices,
                devices.join(", ")
            )?;
        }
        writeln!(f)?;
        match self.cudnn_version {
            Some(v) => writeln!(f, "cuDNN available: yes (version {v})")?,
            None => writeln!(f, "cuDNN available: no")?,
        }
        writeln!(f, "CPU: {}; {}", self.cpu, self.cpu.bf16_measured())?;
        writeln!(f, "CPU threads: {}", self.cpu_threads)?;
        write!(f, "HDF5: {} (bundled)", self.hdf5)
    }
}
