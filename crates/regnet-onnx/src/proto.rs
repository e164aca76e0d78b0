//! The ONNX protobuf messages (`onnx.ModelProto` and the rest), generated at build time by
//! prost from the ONNX schema in `proto/onnx.proto`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
