//! Lists the detections: every `src/imds_NNN_*.rs` file, in id order, becomes an entry of
//! `DETECTIONS` (its `rule`) and of the fixture table (its `POSITIVE` and `NEGATIVE`), so adding
//! a detection is its file and the `pub mod` line that makes it part of the crate.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let src = Path::new("src");
    println!("cargo:rerun-if-changed=src");
    let mut modules: Vec<String> = std::fs::read_dir(src)
        .expect("src/ is readable")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("imds_") && n.ends_with(".rs"))
        .map(|n| n.trim_end_matches(".rs").to_owned())
        .collect();
    modules.sort();
    let mut out = String::new();
    out.push_str("/// Each detection's constructor, in id order (one per `src/imds_*.rs`).\n");
    out.push_str("pub const DETECTIONS: &[fn() -> Rule] = &[\n");
    for m in &modules {
        writeln!(out, "    {m}::rule,").unwrap();
    }
    out.push_str("];\n\n");
    out.push_str(
        "/// Each detection's module name, positive and negative fixtures, in id order.\n",
    );
    out.push_str("#[cfg(test)]\n");
    out.push_str("pub(crate) const FIXTURES: &[(&str, &[&str], &[&str])] = &[\n");
    for m in &modules {
        writeln!(out, "    (\"{m}\", {m}::POSITIVE, {m}::NEGATIVE),").unwrap();
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("detections.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
