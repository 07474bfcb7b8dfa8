#![no_main]
// nearfield_native::fuzzing::run("qcow2", …): see native/src/fuzzing/mod.rs for what it parses.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nearfield_native::fuzzing::run("qcow2", data);
});
