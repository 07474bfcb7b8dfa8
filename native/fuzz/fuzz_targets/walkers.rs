#![no_main]
// Every registered walker (walkers::ALL) on the sample guest's discovered kernel, with RAM pages replaced by the
// input (nearfield_native::fuzzing::Walkers). The sample is found as the tests find it (NEARFIELD_SAMPLE_DIR, else
// images/.cache/sample: `node images/unpack-sample.mjs`).
use std::sync::OnceLock;

use nearfield_native::fuzzing::Walkers;

fn walkers() -> &'static Walkers {
    static W: OnceLock<Walkers> = OnceLock::new();
    W.get_or_init(|| {
        let dir = nearfield_native::test_support::real_guest_dir()
            .expect("no sample guest: run `node images/unpack-sample.mjs` or set NEARFIELD_SAMPLE_DIR");
        Walkers::on_sample(&dir).expect("discovering the sample's kernel")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    walkers().run(data);
});
