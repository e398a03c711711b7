//! Rendering examples, in plain and styled mode.

use super::*;

fn plain(md: &str, w: usize) -> Vec<String> {
    render(md, w, Theme::new(false))
}

#[test]
fn headings_paragraphs_and_emphasis() {
    let lines = plain("# Title\n\nSome *soft* and **strong** text.\n\n## Next", 80);
    assert_eq!(
        lines,
        [
            "# Title",
            "",
            "Some *soft* and **strong** text.",
            "",
            "## Next"
        ]
    );
}

#[test]
fn lists_are_bulleted_numbered_and_nested() {
    let lines = plain("- one\n- two\n  - inner\n\n3. three\n4. four", 80);
    assert_eq!(
        lines,
        ["• one", "• two", "  ◦ inner", "", "3. three", "4. four"]
    );
}

#[test]
fn list_items_wrap_under_their_text() {
    let lines = plain("- alpha beta gamma delta epsilon zeta eta theta", 20);
    assert_eq!(lines[0], "• alpha beta gamma");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.starts_with("  ") && width(l) <= 20),
        "{lines:?}"
    );
}

#[test]
fn code_blocks_keep_their_lines() {
    let lines = plain(
        "Look:\n\n```rust\nfn main() {\n    println!(\"hi\");\n}\n```\nafter",
        80,
    );
    assert_eq!(
        lines,
        [
            "Look:",
            "",
            "    fn main() {",
            "        println!(\"hi\");",
            "    }",
            "",
            "after"
        ]
    );
}

#[test]
fn inline_code_links_and_quotes() {
    let lines = plain("Use `cargo` at [docs](https://doc.rs).\n\n> quoted", 80);
    assert_eq!(
        lines,
        ["Use `cargo` at docs (https://doc.rs).", "", "│ quoted"]
    );
}

#[test]
fn tables_are_aligned() {
    let lines = plain("| a | bb |\n|---|---|\n| ccc | d |", 80);
    assert_eq!(lines, ["a   │ bb", "────┼───", "ccc │ d"]);
}

#[test]
fn styled_output_stays_within_width() {
    let md = "# A heading that is long\n\nText with **bold words** and `code` that must wrap nicely here.\n\n- item with a long long long long line";
    for w in [20, 40, 100] {
        let lines = render(md, w, Theme::new(true));
        assert!(lines.iter().any(|l| l.contains('\x1b')));
        assert!(lines.iter().all(|l| width(l) <= w), "{w}: {lines:?}");
    }
}
