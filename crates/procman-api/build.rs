//! Generates the gRPC service from `proto/` with protox (pure Rust: no
//! `protoc` binary needed on the machine).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/procman/v1/procman.proto";
    println!("cargo:rerun-if-changed={proto}");
    let files = protox::compile([proto], ["proto"])?;
    // No `connect` helpers: clients bring their own channel (a Unix socket,
    // or TCP with a token), so only the `codegen` part of tonic is needed.
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(files)?;
    Ok(())
}
