#![no_main]
// nearfield_native::fuzzing::run("kdump", …): see native/src/fuzzing/mod.rs for what it parses.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nearfield_native::fuzzing::run("kdump", data);
});
