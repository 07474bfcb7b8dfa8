// Writes the fuzz seed corpora: `seed OUT_DIR [SAMPLE_DIR]` (nearfield_native::fuzzing::seeds).
fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: seed OUT_DIR [SAMPLE_DIR]");
        std::process::exit(2);
    };
    let sample = args.next().map(std::path::PathBuf::from);
    match nearfield_native::fuzzing::seeds::write_all(sample.as_deref(), std::path::Path::new(&out)) {
        Ok(written) => {
            for w in written.warnings {
                eprintln!("seed: {w}");
            }
            for (target, n) in written.counts {
                println!("{target} {n}");
            }
        }
        Err(e) => {
            eprintln!("seed: {e}");
            std::process::exit(1);
        }
    }
}
