//! Generates the ONNX protobuf types from `proto/onnx.proto` with protox (a protobuf compiler
//! in Rust) and prost-build: no protoc binary, no download.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
