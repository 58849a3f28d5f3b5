//! The subset schema against the official one, and the committed bindings against the schema.

use std::path::Path;
use std::process::Command;

fn crate_file(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every field id and enum/union value of our bindings equals the official schema's, as compiled
/// into the Python bindings shipped with ai-edge-litert.
#[test]
fn schema_matches_litert_python_bindings() {
    if litert_oracle::require(
        "LiteRT's schema module (pip ai-edge-litert)",
        litert_oracle::python_import("import ai_edge_litert.schema_py_generated"),
    )
    .is_none()
    {
        return;
    }
    let out = Command::new("python3")
        .arg(crate_file("tests/schema_check.py"))
        .arg(crate_file("src/schema_generated.rs"))
        .output()
        .expect("run python3");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schema differs from the official one: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    // Guard against a parser that silently matches nothing.
    assert!(report["fields"].as_u64().unwrap() >= 100, "{report}");
    assert!(report["values"].as_u64().unwrap() >= 100, "{report}");
}

/// The committed bindings were generated from the committed schema: the header records the
/// schema's SHA-256 (checked here without flatc; `cargo xtask codegen --check` and the xtask test
/// also regenerate with flatc and compare the whole file).
#[test]
fn generated_bindings_record_current_schema_hash() {
    let generated = std::fs::read_to_string(crate_file("src/schema_generated.rs")).unwrap();
    let schema = std::fs::read(crate_file("schema/tflite.fbs")).unwrap();
    let header = generated.lines().nth(1).unwrap_or_default();
    let expected = format!("// flatc 25.12.19; schema sha256 {}", sha256_hex(&schema));
    assert_eq!(
        header, expected,
        "schema/tflite.fbs changed: run `cargo xtask codegen` and commit the result"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
