//! Checks that keep the workspace's shape: the layering, and conventions a reviewer would
//! otherwise have to remember. Runs as `cargo xtask tidy` and as a `#[test]`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The crates in layers, bottom first: a crate may depend (outside dev-dependencies) only on
/// crates of the layers below its own, never on one beside it. Keep in step with
/// `docs/ARCHITECTURE.md`.
pub(crate) const LAYERS: &[&[&str]] = &[
    &["sciauth-credentials"],
    &[
        "sciauth-transport",
        // The credential in a reqwest-middleware or tower stack the program keeps.
        "sciauth-middleware",
    ],
    &["sciauth-tokens", "sciauth-unicore", "sciauth-rucio"],
    &[
        "sciauth-service-api",
        // Blocking handles over transport, tokens and credentials (`sciauth::blocking`).
        "sciauth-blocking",
    ],
    &["sciauth"],
    &["sciauth-server"],
    &["sciauth-cli"],
    // Not published; no crate may depend on them but as a dev-dependency.
    &["sciauth-fuzz", "sciauth-test-support"],
];

/// The layers as one line: `a < b | c < d`.
fn layer_order() -> String {
    LAYERS
        .iter()
        .map(|layer| layer.join(" | "))
        .collect::<Vec<_>>()
        .join(" < ")
}

/// Crates that may have each external dependency in `[dependencies]`, where only one layer
/// should know about it.
/// (`sciauth-middleware` names reqwest's request and response in its `reqwest_middleware`
/// middleware; `sciauth-test-support` drives the test identity provider's pages like a
/// browser.)
const CONFINED: &[(&str, &[&str])] = &[
    (
        "reqwest",
        &[
            "sciauth-transport",
            "sciauth-middleware",
            "sciauth-test-support",
        ],
    ),
    ("reqwest-middleware", &["sciauth-middleware"]),
];

pub(crate) fn run(root: &Path) -> Result<(), String> {
    let problems = check(root)?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "tidy found {} problem(s):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        ))
    }
}

fn check(root: &Path) -> Result<Vec<String>, String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    layering(&packages, &mut problems);
    manifests(root, &packages, &mut problems);
    for package in &packages {
        problems.extend(unused_dependencies(package));
    }
    sources(root, &mut problems);
    Ok(problems)
}

fn layering(packages: &[Value], problems: &mut Vec<String>) {
    let rank: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |name| (*name, i)))
        .collect();
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default();
        if name == "xtask" {
            continue;
        }
        let Some(&my_rank) = rank.get(name) else {
            problems.push(format!(
                "crate {name} has no layer: add it to LAYERS in xtask/src/tidy.rs and to \
                 docs/ARCHITECTURE.md"
            ));
            continue;
        };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let normal = dep["kind"].is_null();
            if let Some(&dep_rank) = rank.get(dep_name)
                && normal
                && dep_rank >= my_rank
            {
                problems.push(format!(
                    "layering: {name} depends on {dep_name}, which is not below it \
                     (order: {}); move the shared code down or make it a dev-dependency",
                    layer_order()
                ));
            }
            for (confined, allowed) in CONFINED {
                if normal && dep_name == *confined && !allowed.contains(&name) {
                    problems.push(format!(
                        "{name} depends on {confined}, which only {} may use; go through \
                         that crate's API instead",
                        allowed.join(", ")
                    ));
                }
            }
        }
    }
}

/// A normal dependency is an edge of the crate graph; one that the crate's `src/` never names
/// is an edge without a reason (built, linked and audited for nothing, and a lie in the
/// layering). A dependency that is needed without being named (only to turn on a feature of
/// a shared dependency, say) says why in a comment on the line above it that starts with
/// `# tidy: unnamed`.
fn unused_dependencies(package: &Value) -> Vec<String> {
    let name = package["name"].as_str().unwrap_or_default();
    let manifest_path = Path::new(package["manifest_path"].as_str().unwrap_or_default());
    let Some(dir) = manifest_path.parent() else {
        return Vec::new();
    };
    let mut files = Vec::new();
    collect_rs(&dir.join("src"), &mut files);
    let code: String = files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .map(|text| without_comments(&text))
        .collect();
    let manifest = std::fs::read_to_string(manifest_path).unwrap_or_default();
    let dependencies = package["dependencies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    unused_in(name, &dependencies, &code, &manifest)
}

/// The normal dependencies of `name` that `code` (its `src/`, comments removed) never names
/// and `manifest` does not excuse.
fn unused_in(name: &str, dependencies: &[Value], code: &str, manifest: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for dep in dependencies {
        if !dep["kind"].is_null() {
            continue;
        }
        let dep_name = dep["name"].as_str().unwrap_or_default();
        let lib = dep["rename"].as_str().unwrap_or(dep_name).replace('-', "_");
        if names_crate(code, &lib) || excused(manifest, dep_name) {
            continue;
        }
        problems.push(format!(
            "{name} depends on {dep_name}, but its src/ never names {lib}: remove the \
             dependency (or make it a dev-dependency), or say why on the line above it with \
             `# tidy: unnamed, <why>`"
        ));
    }
    problems
}

/// Whether `code` uses the crate `lib`: `lib::...`, `use lib;`, `use lib as ...`, or
/// `lib::{...}`.
fn names_crate(code: &str, lib: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(lib).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = &code[at + lib.len()..];
        !before.is_some_and(is_ident)
            && (after.starts_with("::") || after.starts_with(';') || after.starts_with(" as "))
    })
}

/// Whether the manifest line of `dep` has a `# tidy: unnamed` comment above it.
fn excused(manifest: &str, dep: &str) -> bool {
    let lines: Vec<&str> = manifest.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let declares = line
            .strip_prefix(dep)
            .is_some_and(|rest| rest.starts_with([' ', '.', '=']));
        declares && i > 0 && lines[i - 1].trim_start().starts_with("# tidy: unnamed")
    })
}

/// `text` without `//` comments (doc comments included), line by line.
fn without_comments(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    for line in text.lines() {
        code.push_str(line.split("//").next().unwrap_or_default());
        code.push('\n');
    }
    code
}

fn manifests(root: &Path, packages: &[Value], problems: &mut Vec<String>) {
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default();
        let manifest = Path::new(package["manifest_path"].as_str().unwrap_or_default());
        let dir = manifest.parent().unwrap_or(root);
        if name != "xtask" && dir.file_name().and_then(|f| f.to_str()) != Some(name) {
            problems.push(format!(
                "crate {name} lives in {}; the folder name must be the crate name",
                dir.display()
            ));
        }
        let text = std::fs::read_to_string(manifest).unwrap_or_default();
        if !text.contains("[lints]\nworkspace = true") {
            problems.push(format!(
                "{}: add `[lints] workspace = true`",
                manifest.display()
            ));
        }
    }
    let root_manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    for line in root_manifest.lines().filter(|l| l.starts_with("sciauth")) {
        if !(line.contains("path = ") && line.contains("version = ")) {
            problems.push(format!(
                "Cargo.toml: internal dependency needs both path and version: {line}"
            ));
        }
    }
}

fn sources(root: &Path, problems: &mut Vec<String>) {
    let mut files = Vec::new();
    collect_rs(&root.join("crates"), &mut files);
    collect_rs(&root.join("xtask"), &mut files);
    collect_rs(&root.join("tests"), &mut files);
    // Spelled in pieces so that this file does not match its own patterns.
    let banned = [
        (
            concat!("#[", "ignore"),
            "no ignored tests: fix the test or delete it",
        ),
        (
            concat!("#[", "should_panic"),
            "assert on the error instead of should_panic",
        ),
        (
            concat!("todo", "!("),
            "no todo macro: finish it or leave it out",
        ),
        (
            concat!("unimplemented", "!("),
            "no unimplemented macro: finish it or leave it out",
        ),
        (concat!("dbg", "!("), "no dbg macro in committed code"),
    ];
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (pattern, why) in banned {
            if text.contains(pattern) {
                problems.push(format!("{shown}: contains {pattern:?}; {why}"));
            }
        }
        if text.lines().any(|l| l.ends_with(' ') || l.ends_with('\t')) {
            problems.push(format!("{shown}: trailing whitespace"));
        }
        if let Some(problem) = unchecked_time_arithmetic(&shown, &text) {
            problems.push(problem);
        }
        if is_production(&shown) || shown.starts_with("xtask/src/") {
            problems.extend(too_long(&shown, &text));
        }
        if shown.starts_with("crates/") && shown.ends_with("src/lib.rs") && !text.starts_with("//!")
        {
            problems.push(format!(
                "{shown}: start with a //! crate doc: what the crate is for, where it sits, \
                 which sibling most users want"
            ));
        }
    }
}

/// `SystemTime + Duration`, `Instant + Duration` and `Duration::from_secs_f64` panic on a
/// number that does not fit, and such numbers come from identity providers, servers and files.
/// Production code (a crate's `src/`, up to its `#[cfg(test)]` module; not the test-support
/// crate) does time arithmetic
/// through `sciauth_credentials::time` (saturating), never with the bare operator. The
/// patterns are the spellings such sums take in this workspace: `UNIX_EPOCH + ..`,
/// `now + ..`, `now() + ..`, `.._at + ..`, `.. + Duration::..`.
fn unchecked_time_arithmetic(shown: &str, text: &str) -> Option<String> {
    let production = is_production(shown) && !shown.ends_with("sciauth-credentials/src/time.rs");
    if !production {
        return None;
    }
    // Spelled in pieces so that this file does not match its own patterns.
    let patterns = [
        concat!("UNIX_EPOCH", " +"),
        concat!("now", " + "),
        concat!("now()", " + "),
        concat!("_at", " + "),
        concat!("+ ", "Duration::"),
        concat!("+ ", "std::time::Duration"),
        concat!("from_secs_", "f64("),
        concat!("from_secs_", "f32("),
    ];
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        // Comments do not count (a string holding `//` hides the rest of its line, too).
        let code = code.split("//").next().unwrap_or_default();
        if let Some(pattern) = patterns.iter().find(|p| code.contains(**p)) {
            return Some(format!(
                "{shown}:{}: {pattern:?}: time arithmetic that can panic on an outside number; \
                 use sciauth_credentials::time (later, from_unix, seconds_f64)",
                number + 1
            ));
        }
    }
    None
}

/// Whether `shown` (a path from the workspace root) is production code: a crate's `src/`,
/// not a unit test file (`tests.rs`) and not the test-support crate. Only the part before a
/// `#[cfg(test)]` module counts.
fn is_production(shown: &str) -> bool {
    shown.starts_with("crates/")
        && shown.contains("/src/")
        && !shown.starts_with("crates/sciauth-test-support/")
        && !shown.ends_with("/tests.rs")
}

/// A source file longer than this (its production part) holds more than one concern.
const MAX_FILE_LINES: usize = 800;

/// A function longer than this does more than one thing.
const MAX_FUNCTION_LINES: usize = 80;

/// What excuses a long file (anywhere in it) or function (in the comments and attributes
/// right above it), followed by the reason: `// tidy: long, a table of every key`.
const LONG_ALLOWED: &str = "// tidy: long, ";

/// Files over [`MAX_FILE_LINES`] and functions over [`MAX_FUNCTION_LINES`] (production code
/// up to its `#[cfg(test)]` module) that do not say why they are allowed to be. Functions are
/// found the way rustfmt lays them out: a line `fn name` (with any qualifiers), its body
/// ending at the first line that is its indentation and `}`.
fn too_long(shown: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim_start().starts_with("#[cfg(test)]"))
        .collect();
    let excused = |line: &str| {
        line.trim_start()
            .strip_prefix(LONG_ALLOWED)
            .is_some_and(|why| !why.trim().is_empty())
    };
    let mut problems = Vec::new();
    if lines.len() > MAX_FILE_LINES && !lines.iter().any(|line| excused(line)) {
        problems.push(format!(
            "{shown}: {} lines, over {MAX_FILE_LINES}: split it by concern, or say why it stays \
             whole with a `{LONG_ALLOWED}<why>` comment",
            lines.len()
        ));
    }
    for (start, line) in lines.iter().enumerate() {
        let Some(indent) = function_indent(line) else {
            continue;
        };
        let Some(body) = lines[start..]
            .iter()
            .position(|l| l.ends_with('{') || l.ends_with(';'))
            .map(|i| start + i)
            .filter(|&i| lines[i].ends_with('{'))
        else {
            continue;
        };
        let closing = format!("{indent}}}");
        let Some(end) = lines[body..].iter().position(|l| *l == closing) else {
            continue;
        };
        let length = body + end - start + 1;
        let above = lines[..start].iter().rev().take_while(|l| {
            let l = l.trim_start();
            l.starts_with("//")
                || l.starts_with("#[")
                || l.starts_with(')')
                || l.starts_with("    ")
        });
        if length > MAX_FUNCTION_LINES && !above.clone().any(|l| excused(l)) {
            problems.push(format!(
                "{shown}:{}: a function of {length} lines, over {MAX_FUNCTION_LINES}: split it \
                 into steps, or say why it stays whole with a `{LONG_ALLOWED}<why>` comment \
                 above it",
                start + 1
            ));
        }
    }
    problems
}

/// The indentation of `line` if it starts a function (`pub(crate) async fn name...`).
fn function_indent(line: &str) -> Option<&str> {
    let code = line.trim_start();
    let indent = &line[..line.len() - code.len()];
    let mut rest = code;
    for qualifier in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let name = rest.strip_prefix("fn ")?;
    name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        .then_some(indent)
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == "node_modules" || name == ".venv" {
            continue;
        }
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy() {
        if let Err(problems) = run(&crate::project_root()) {
            panic!("{problems}");
        }
    }

    #[test]
    fn unchecked_time_arithmetic_is_found_in_production_code_only() {
        let file = "crates/sciauth-tokens/src/client.rs";
        for line in [
            concat!("let at = UNIX_EPOCH", " + Duration::from_secs(exp);"),
            concat!("let at = issued_at", " + lifetime;"),
            concat!("let deadline = Instant::now()", " + timeout;"),
            concat!("let d = Duration::from_secs_", "f64(x);"),
        ] {
            let problem = unchecked_time_arithmetic(file, line);
            assert!(problem.is_some_and(|p| p.contains("client.rs:1")), "{line}");
        }
        let fine = "let at = later(issued_at, lifetime); // issued_at + lifetime";
        assert_eq!(unchecked_time_arithmetic(file, fine), None);
        let in_tests = concat!("#[cfg(test)]\nmod tests {\n let at = UNIX_EPOCH", " + d;");
        assert_eq!(unchecked_time_arithmetic(file, in_tests), None);
        let a_test_file = concat!("let at = UNIX_EPOCH", " + d;");
        assert_eq!(
            unchecked_time_arithmetic("crates/sciauth-tokens/tests/x.rs", a_test_file),
            None
        );
    }

    #[test]
    fn long_files_and_functions_need_a_reason() {
        let file = "crates/sciauth-tokens/src/client.rs";
        let body = "        step();\n".repeat(80);
        let long = format!(
            "fn short() {{\n}}\n\n    pub(crate) async fn long(\n        a: u8,\n    ) {{\n{body}    }}\n"
        );
        let problems = too_long(file, &long);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("client.rs:4: a function of 84 lines"),
            "{problems:?}"
        );
        let excused = format!(
            "    /// Docs.\n    // tidy: long, one table\n    #[inline]\n{}",
            &long[16..]
        );
        assert_eq!(too_long(file, &excused), Vec::<String>::new());
        // The reason may not be empty, and a test module does not count.
        let no_reason = format!("    // tidy: long, \n{}", &long[16..]);
        assert_eq!(too_long(file, &no_reason).len(), 1);
        let in_tests = format!("#[cfg(test)]\nmod tests {{\n{long}}}\n");
        assert_eq!(too_long(file, &in_tests), Vec::<String>::new());

        let big = "const A: u8 = 1;\n".repeat(801);
        let problems = too_long(file, &big);
        assert!(
            problems.len() == 1 && problems[0].contains("801 lines"),
            "{problems:?}"
        );
        let excused = format!("// tidy: long, the table of every code\n{big}");
        assert_eq!(too_long(file, &excused), Vec::<String>::new());
    }

    #[test]
    fn a_dependency_src_never_names_is_found() {
        let dependencies: Vec<Value> = serde_json::from_str(
            r#"[{"name": "sciauth-credentials", "kind": null},
                {"name": "serde_json", "kind": null},
                {"name": "tokio", "kind": null},
                {"name": "rustix", "kind": null},
                {"name": "tempfile", "kind": "dev"},
                {"name": "sciauth", "kind": null}]"#,
        )
        .unwrap();
        let code = without_comments(
            "use sciauth_credentials::text;\n\
             /// Calls `sciauth::Error` in a doc comment only.\n\
             fn f() { let v = serde_json::json!({}); } // tokio::spawn in a comment\n\
             use my_rustix::thing;\n",
        );
        let manifest = "[dependencies]\n# tidy: unnamed, turns on a feature of rustix\n\
                        rustix.workspace = true\ntokio.workspace = true\n";
        let problems = unused_in("sciauth-server", &dependencies, &code, manifest);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("depends on tokio"), "{problems:?}");
        assert!(problems[1].contains("depends on sciauth,"), "{problems:?}");
    }

    #[test]
    fn an_upward_edge_is_named() {
        let packages: Vec<Value> = serde_json::from_str(
            r#"[{"name": "sciauth-transport", "dependencies": [
                    {"name": "sciauth-tokens", "kind": null},
                    {"name": "sciauth", "kind": "dev"},
                    {"name": "reqwest", "kind": null}]},
                {"name": "sciauth-tokens", "dependencies": [{"name": "reqwest", "kind": null}]},
                {"name": "sciauth-unicore", "dependencies": [
                    {"name": "sciauth-tokens", "kind": null}]}]"#,
        )
        .unwrap();
        let mut problems = Vec::new();
        layering(&packages, &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("sciauth-transport depends on sciauth-tokens"));
        assert!(problems[1].contains("sciauth-tokens depends on reqwest"));
        // A crate beside another is not below it.
        assert!(problems[2].contains("sciauth-unicore depends on sciauth-tokens"));
    }
}
