// Build script: napi link setup, only when the Node binding is being built.
fn main() {
    if std::env::var_os("CARGO_FEATURE_NODE").is_some() {
        napi_build::setup();
    }
}
