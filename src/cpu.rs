//! What the CPU offers for bfloat16, and what `--amp` and `--bf16` measured on each
//! kind: faster than float32 with AVX-512 BF16 alone, slower with AMX (libtorch 2.11's
//! path there), and much slower where oneDNN emulates bfloat16. `nerveseg info` shows the flags, and the network warns
//! when asked for bfloat16 on a CPU without them.

use std::fmt;

/// The instruction sets that decide the CPU's convolution speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    pub avx2: bool,
    pub avx512f: bool,
    pub avx512_bf16: bool,
    pub amx_bf16: bool,
}

impl CpuFeatures {
    /// This machine's (from /proc/cpuinfo, else the compiler's run-time detection).
    pub fn detect() -> CpuFeatures {
        match std::fs::read_to_string("/proc/cpuinfo") {
            Ok(text) => CpuFeatures::from_cpuinfo(&text),
            Err(_) => CpuFeatures::from_runtime(),
        }
    }

    /// The flags of the first processor listed in a /proc/cpuinfo text.
    pub(crate) fn from_cpuinfo(text: &str) -> CpuFeatures {
        let flags: Vec<&str> = text
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once(':')?;
                (key.trim() == "flags").then(|| value.split_whitespace().collect())
            })
            .unwrap_or_default();
        let has = |f: &str| flags.contains(&f);
        CpuFeatures {
            avx2: has("avx2"),
            avx512f: has("avx512f"),
            avx512_bf16: has("avx512_bf16"),
            amx_bf16: has("amx_bf16"),
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn from_runtime() -> CpuFeatures {
        CpuFeatures {
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            avx512f: std::arch::is_x86_feature_detected!("avx512f"),
            avx512_bf16: std::arch::is_x86_feature_detected!("avx512bf16"),
            amx_bf16: false,
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn from_runtime() -> CpuFeatures {
        CpuFeatures::default()
    }

    /// Whether the CPU computes in bfloat16 itself.
    pub fn bf16(&self) -> bool {
        self.avx512_bf16 || self.amx_bf16
    }

    /// What `--amp`/`--bf16` measured against float32 on a CPU of this kind (2 cores,
    /// `make bench`, 2026-12): the kind decides it, and the AMX path of libtorch 2.11
    /// is slower than float32 although the hardware computes in bfloat16.
    pub fn bf16_measured(&self) -> &'static str {
        match (self.amx_bf16, self.avx512_bf16) {
            (true, _) => {
                "bfloat16 in hardware (AMX), but --amp/--bf16 measured 0.6x float32's speed \
                 on a Xeon of this kind: use float32"
            }
            (false, true) => {
                "bfloat16 in hardware (AVX-512 BF16): --amp measured 1.9x float32's speed \
                 and --bf16 2.0x on an AMD EPYC of this kind"
            }
            (false, false) => {
                "no bfloat16 instructions: --amp/--bf16 are emulated, measured 0.1x \
                 float32's speed on an AVX2 AMD EPYC"
            }
        }
    }

    /// The warning for `--amp`/`--bf16` on this CPU; `None` where bfloat16 is native.
    pub(crate) fn bf16_warning(&self) -> Option<String> {
        (!self.bf16()).then(|| {
            format!(
                "this CPU ({self}) has no bfloat16 instructions: bfloat16 is emulated and \
                 runs slower than float32 here; drop --amp/--bf16 on this machine"
            )
        })
    }
}

impl fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = [
            (self.avx2, "AVX2"),
            (self.avx512f, "AVX-512"),
            (self.avx512_bf16, "AVX-512 BF16"),
            (self.amx_bf16, "AMX BF16"),
        ];
        let list: Vec<&str> = named.iter().filter(|n| n.0).map(|n| n.1).collect();
        if list.is_empty() {
            write!(f, "no AVX2")
        } else {
            write!(f, "{}", list.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPYC: &str = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\
                        processor\t: 1\nflags\t\t: fpu avx512f\n";
    const SAPPHIRE: &str = "flags\t: avx2 avx512f avx512_bf16 amx_tile amx_bf16\n";

    #[test]
    fn reads_the_first_processors_flags() {
        let epyc = CpuFeatures::from_cpuinfo(EPYC);
        assert!(epyc.avx2 && !epyc.avx512f && !epyc.bf16());
        assert_eq!(epyc.to_string(), "AVX2");
        assert!(epyc.bf16_warning().unwrap().contains("(AVX2)"));
        let spr = CpuFeatures::from_cpuinfo(SAPPHIRE);
        assert!(spr.bf16() && spr.bf16_warning().is_none());
        assert_eq!(spr.to_string(), "AVX2, AVX-512, AVX-512 BF16, AMX BF16");
        assert_eq!(CpuFeatures::from_cpuinfo("nothing"), CpuFeatures::default());
    }

    /// `info` says what bfloat16 measured on a CPU of the kind, not that it is fast.
    #[test]
    fn the_bf16_line_is_the_kinds_measurement() {
        let avx2 = CpuFeatures::from_cpuinfo(EPYC).bf16_measured();
        assert!(avx2.contains("emulated") && avx2.contains("0.1x"), "{avx2}");
        let amx = CpuFeatures::from_cpuinfo(SAPPHIRE).bf16_measured();
        assert!(amx.contains("0.6x") && amx.contains("use float32"), "{amx}");
        let zen4 = CpuFeatures {
            avx2: true,
            avx512f: true,
            avx512_bf16: true,
            amx_bf16: false,
        };
        assert!(zen4.bf16_measured().contains("1.9x"));
    }
}
