fn main() {
    println!("dnswarden {}", env!("CARGO_PKG_VERSION"));
}
