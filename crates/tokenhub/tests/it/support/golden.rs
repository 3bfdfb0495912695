//! What the golden tests of the protocol translators share: fixture discovery under
//! `tests/fixtures/<suite>/<kind>/`, exact comparison as parsed JSON, and one report of
//! every failing case. `TOKENHUB_BLESS=1` writes expected files that do not exist yet
//! (review them before committing); it never overwrites one.

use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn fixtures(suite: &str, kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(suite)
        .join(kind)
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(case, input path, expected path)` for every input with this suffix, by case name.
pub fn cases(
    suite: &str,
    kind: &str,
    input_suffix: &str,
    expected_suffix: &str,
) -> Vec<(String, PathBuf, PathBuf)> {
    let dir = fixtures(suite, kind);
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let case = name.strip_suffix(input_suffix)?.to_string();
            let expected = dir.join(format!("{case}{expected_suffix}"));
            Some((case, dir.join(name), expected))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixtures in {}", dir.display());
    cases
}

pub fn check(failures: &mut Vec<String>, case: &str, actual: &Value, expected: &Value) {
    if actual != expected {
        failures.push(format!(
            "{case}:\n  expected {expected}\n  actual   {actual}"
        ));
    }
}

/// Like `check`, against the JSON in `expected_path` (blessed when asked and missing).
pub fn check_file(failures: &mut Vec<String>, case: &str, actual: &Value, expected_path: &Path) {
    if !expected_path.exists() && std::env::var_os("TOKENHUB_BLESS").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(expected_path, text).unwrap();
        return;
    }
    check(failures, case, actual, &read_json(expected_path));
}

pub fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
