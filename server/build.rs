//! Lists the SQL migrations of each backend for the store to embed
//! (`store/migrations.rs`). This is what `sqlx::migrate!` does; the proc macro
//! would need sqlx's `macros` feature, whose host build compiles sqlx with its
//! SQLite (bundled C) and PostgreSQL drivers a second time in release builds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut out = String::new();
    for backend in ["sqlite", "postgres"] {
        let dir = root.join("migrations").join(backend);
        // A file added or removed changes the directory; an edited one is
        // tracked by its include_str!.
        println!("cargo::rerun-if-changed={}", dir.display());
        let _ = writeln!(
            out,
            "pub(super) const {}: &[(i64, &str, &str)] = &[",
            backend.to_uppercase()
        );
        for (version, description, path) in migrations(&dir) {
            let _ = writeln!(
                out,
                "    ({version}, {description:?}, include_str!({:?})),",
                path.display().to_string()
            );
        }
        out.push_str("];\n");
    }
    let target = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(target.join("migrations.rs"), out).expect("write migrations.rs");
}

/// `NNNN_description.sql` files, by version, as sqlx names them: the
/// description is the rest of the name with `_` as spaces.
fn migrations(dir: &Path) -> Vec<(i64, String, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the migrations directory") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((version, rest)) = name.split_once('_') else {
            continue;
        };
        let Some(description) = rest.strip_suffix(".sql") else {
            continue;
        };
        assert!(
            !description.ends_with(".up") && !description.ends_with(".down"),
            "{name}: reversible migrations are not used here"
        );
        let version: i64 = version
            .parse()
            .unwrap_or_else(|_| panic!("{name}: a migration starts with its number"));
        found.push((version, description.replace('_', " "), path));
    }
    found.sort();
    found
}
