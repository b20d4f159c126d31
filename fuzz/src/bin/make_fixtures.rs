//! Writes hand-made reproducers, under `tests/fixtures/fuzz/`, for the fuzz findings that
//! `cargo fuzz tmin` cannot shrink: hangs in the bundled C libraries, where every input
//! that still reproduces costs the whole timeout and deleting bytes breaks the file's
//! structure. Each is the smallest valid file of its kind with the few bytes patched that
//! the fuzzer's (much larger) artifact had wrong. Run as make_seeds (see there).

// Built by cargo-fuzz with coverage instrumentation, whose hooks libFuzzer provides.
use libfuzzer_sys as _;

use std::fs;
use std::path::Path;

use hdf5::types::VarLenUnicode;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fuzz/keras");
    fs::create_dir_all(&out)?;
    for (name, patch) in [
        ("hdf5_global_heap_idx0_size0_hang.h5", Patch::Idx0Size0),
        (
            "hdf5_global_heap_size_wraps_to_zero_step_hang.h5",
            Patch::StepWrapsToZero,
        ),
        (
            "hdf5_global_heap_size_wraps_onto_zeros_hang.h5",
            Patch::StepWrapsOntoZeros,
        ),
    ] {
        let path = out.join(name);
        global_heap(&path, patch)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// How the first object of the global heap collection is broken. HDF5 steps from an
/// object to the next by `need` = its size (index 0) or 16 + its size rounded up to 8
/// (other indices), in wrapping `size_t` arithmetic, and never checks that it moved.
#[derive(Clone, Copy)]
enum Patch {
    /// Index 0, size 0: `need` is 0.
    Idx0Size0,
    /// Index 1 kept, size 2^64 - 16: `need` = 16 + (2^64 - 16) wraps to 0.
    StepWrapsToZero,
    /// Index 1 kept, size 2^64 - 1: rounding wraps, `need` is 16, so the next "object"
    /// is the string's own 8 bytes (zeroed here) and the free-space header after them:
    /// index 0, size 0. The shape of the fuzzer's artifact.
    StepWrapsOntoZeros,
}

/// An HDF5 file whose root holds one variable-length string attribute, `keras_version`
/// (as tf-keras writes it), with the first object of the global heap collection that
/// holds the string broken as `patch` says. HDF5's global heap decoder
/// (`H5HG__cache_heap_deserialize`, H5HGcache.c) then advances by 0 bytes forever:
/// `nerveseg::keras::read` never returns.
fn global_heap(path: &Path, patch: Patch) -> Result<()> {
    let tmp = path.with_extension("h5.partial");
    {
        // No object times, so that the file is the same on every run.
        let file = hdf5::File::with_options()
            .with_fcpl(|p| p.obj_track_times(false))
            .create(&tmp)?;
        let value: VarLenUnicode = "2.19.0".parse()?;
        file.new_attr::<VarLenUnicode>()
            .create("keras_version")?
            .write_scalar(&value)?;
    }
    let mut bytes = fs::read(&tmp)?;
    fs::remove_file(&tmp)?;
    // The collection: "GCOL", version 1, 3 reserved, its size (8 bytes); then each object:
    // index (2), references (2), 4 reserved, size (8), data padded to 8.
    let heap = bytes
        .windows(4)
        .position(|w| w == b"GCOL")
        .ok_or("no global heap collection written")?;
    let object = heap + 16;
    ensure_eq(
        &bytes[object..object + 2],
        &[1, 0],
        "the first heap object's index",
    )?;
    ensure_eq(
        &bytes[object + 8..object + 16],
        &6u64.to_le_bytes(),
        "its size",
    )?;
    let size = &mut bytes[object + 8..object + 16];
    match patch {
        Patch::Idx0Size0 => {
            bytes[object..object + 2].fill(0);
            bytes[object + 8..object + 16].fill(0);
        }
        Patch::StepWrapsToZero => size.copy_from_slice(&(u64::MAX - 15).to_le_bytes()),
        Patch::StepWrapsOntoZeros => {
            size.copy_from_slice(&u64::MAX.to_le_bytes());
            // "2.19.0" and its padding; the free-space object's header follows, index 0.
            bytes[object + 16..object + 24].fill(0);
            ensure_eq(
                &bytes[object + 24..object + 32],
                &[0; 8],
                "the free space header",
            )?;
        }
    }
    fs::write(path, bytes)?;
    Ok(())
}

fn ensure_eq(found: &[u8], want: &[u8], what: &str) -> Result<()> {
    if found != want {
        return Err(format!("{what} is {found:?}, expected {want:?}").into());
    }
    Ok(())
}
