//! Benchmarks of the token manager (filled in below).

fn main() {}
