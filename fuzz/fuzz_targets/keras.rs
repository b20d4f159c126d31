//! Keras HDF5 reader: `read`, `describe`, the shape checks, loading into a small model,
//! and the Adam state reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nerveseg::keras;

fuzz_target!(|data: &[u8]| {
    let path = nerveseg_fuzz::write_input("input.h5", data);
    if let Ok(file) = keras::read(&path) {
        let _ = keras::describe(&file);
        let _ = file.parameter_count();
        let _ = file.base_width();
        let small =
            |allow_partial| matches!(file.check(allow_partial), Ok(c) if c.cfg.base_width <= 8);
        // Both checks run; a small enough U-Net is then loaded (values read and copied).
        if small(false) | small(true) {
            let _ = keras::load(&file, tch::Device::Cpu, true);
        }
    }
    let vars = [("conv2d_1.weight".to_string(), vec![1, 1, 3, 3])];
    let _ = keras::read_adam_state(&path, &vars);
});
