//! Hostile input is bounded (issue 11): alias bombs, deep nesting in YAML,
//! TOML and Python give an error (or a fail-safe parse failure) quickly,
//! never a hang, an abort or unbounded memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipetrim_queries::db::MemoryLoader;
use pipetrim_queries::python::summarize;
use pipetrim_queries::python::summary::{MAX_PYTHON_NESTING, nesting_bound, nesting_bound_of};
use pipetrim_queries::{Database, Db, FileMode};

/// Runs `f` on a thread; fails if it does not finish within `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?} (hang or panic)"))
}

const LIMIT: Duration = Duration::from_secs(20);

fn db_with(files: &[(&str, String)]) -> Database {
    let loader = MemoryLoader::default();
    for (p, text) in files {
        loader
            .files
            .insert(p.to_string(), (text.as_bytes().to_vec(), FileMode::Regular));
    }
    Database::new(Arc::new(loader))
}

/// Nine nested alias levels of nine: 9^10 scalars if expanded.
fn billion_laughs() -> String {
    let mut s = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for i in 1..10u8 {
        let n = (b'a' + i) as char;
        let refs = vec![format!("*{prev}"); 9].join(",");
        s.push_str(&format!("{n}: &{n} [{refs}]\n"));
        prev = n;
    }
    s
}

fn mzbuild_error(text: String) -> String {
    within(LIMIT, move || {
        let db = db_with(&[("img/mzbuild.yml", text)]);
        let f = db.file("img/mzbuild.yml");
        match pipetrim_queries::images::mzbuild_config(&db, f) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    })
}

#[test]
fn yaml_alias_bomb_in_mzbuild_is_an_error() {
    let e = mzbuild_error(format!("{}name: x\n", billion_laughs()));
    assert!(e.contains("img/mzbuild.yml"), "{e}");
    assert!(e.contains("repetition limit") || e.contains("alias"), "{e}");
}

#[test]
fn yaml_alias_bomb_in_template_is_an_error() {
    let text = format!("{}steps: []\n", billion_laughs());
    let e = within(LIMIT, move || {
        pipetrim_queries::pipeline::parse_template("ci/test/pipeline.template.yml", &text)
            .err()
            .map(|e| e.to_string())
    })
    .expect("an error");
    assert!(e.contains("ci/test/pipeline.template.yml"), "{e}");
}

#[test]
fn yaml_deep_flow_nesting_is_refused_fast() {
    for (open, close) in [("[", "]"), ("{a: ", "}")] {
        let text = format!(
            "name: x\ny: {}{}\n",
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let t = Instant::now();
        let e = mzbuild_error(text.clone());
        assert!(e.contains("nested deeper"), "{e}");
        assert!(
            e.contains(":2:") || e.contains("line 2") || e.contains("mzbuild.yml"),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let e = within(LIMIT, move || {
            pipetrim_queries::pipeline::parse_template("t.yml", &text)
                .err()
                .map(|e| e.to_string())
        });
        assert!(e.is_some_and(|e| e.contains("nested deeper")));
    }
}

#[test]
fn yaml_deep_block_nesting_is_an_error() {
    for text in [
        format!("x: {}a\n", "- ".repeat(100_000)),
        format!("x:\n{}a\n", "? ".repeat(100_000)),
    ] {
        let e = mzbuild_error(text);
        assert!(e.contains("img/mzbuild.yml"), "{e}");
    }
}

#[test]
fn yaml_brackets_in_strings_below_the_limit_parse() {
    // Quoted brackets count toward the guard's estimate; a real file with
    // some of them is far below it.
    let text = format!("name: x\ndescription: \"{}\"\n", "[".repeat(500));
    assert_eq!(mzbuild_error(text), "");
}

#[test]
fn toml_deep_nesting_is_an_error() {
    for deep in [
        format!("x = {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        format!("x = {}1{}\n", "{a=".repeat(100_000), "}".repeat(100_000)),
    ] {
        let member = format!("[package]\nname = \"a\"\nversion = \"0.1.0\"\n{deep}");
        let ws = format!("[workspace]\nmembers = [\"a\"]\n{deep}");
        let (m, w) = within(LIMIT, move || {
            let db = db_with(&[("a/Cargo.toml", member), ("Cargo.toml", ws)]);
            let m = pipetrim_queries::cargo::manifest(&db, db.file("a/Cargo.toml"))
                .as_ref()
                .err()
                .map(|e| e.to_string());
            let w = pipetrim_queries::cargo::workspace_manifest(&db, db.file("Cargo.toml"))
                .as_ref()
                .err()
                .map(|e| e.to_string());
            (m, w)
        });
        assert!(m.is_some_and(|e| e.contains("a/Cargo.toml")));
        assert!(w.is_some_and(|e| e.contains("Cargo.toml")));
    }
}

/// Forms whose syntax tree gets one level deeper per repetition.
fn python_forms(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("unary minus", format!("x = {}1\n", "-".repeat(n))),
        ("not", format!("x = {}1\n", "not ".repeat(n))),
        ("binary chain", format!("x = 1{}\n", " + 1".repeat(n))),
        ("power chain", format!("x = 1{}\n", " ** 1".repeat(n))),
        ("lambda", format!("x = {}1\n", "lambda: ".repeat(n))),
        ("ternary", format!("x = {}1\n", "1 if y else ".repeat(n))),
        ("attribute", format!("x = a{}\n", ".b".repeat(n))),
        ("subscript", format!("x = a{}\n", "[0]".repeat(n))),
        ("call chain", format!("x = f{}\n", "()".repeat(n))),
        (
            "nested calls",
            format!("x = {}1{}\n", "f(".repeat(n), ")".repeat(n)),
        ),
        ("lists", format!("x = {}{}\n", "[".repeat(n), "]".repeat(n))),
        (
            "parens",
            format!("x = {}1{}\n", "(".repeat(n), ")".repeat(n)),
        ),
        (
            "dicts",
            format!("x = {}1{}\n", "{1: ".repeat(n), "}".repeat(n)),
        ),
        (
            "await",
            format!("async def g():\n    x = {}1\n", "await ".repeat(n)),
        ),
        (
            "nested ifs",
            // Quadratic in size: capped (3,000 levels are 4.5 MB).
            (0..n.min(3000))
                .map(|i| format!("{}if x:\n", " ".repeat(i)))
                .collect::<String>()
                + &" ".repeat(n.min(3000))
                + "pass\n",
        ),
        (
            "mzbuild literal",
            format!(
                "SERVICES = [{}{{\"mzbuild\": \"a\"}}{}]\n",
                "-".repeat(n),
                ""
            ),
        ),
    ]
}

#[test]
fn python_deep_nesting_is_refused_without_abort() {
    for (name, src) in python_forms(100_000) {
        let s = within(LIMIT, move || summarize(&src));
        let err = s.parse_error.unwrap_or_else(|| panic!("{name}: parsed"));
        assert!(err.message.contains("nested deeper"), "{name}: {err:?}");
    }
}

#[test]
fn python_at_the_nesting_limit_parses_on_its_own_stack() {
    // The densest forms just below the limit: the guard lets them through
    // and the parse (plus walk and drop) fits the parser thread's stack.
    // Runs on a small (256 KiB) stack to prove summarize does not use the
    // caller's stack for the recursion.
    for (name, _) in python_forms(1) {
        let n = (1..=MAX_PYTHON_NESTING)
            .rev()
            .step_by(7)
            .find(|&n| {
                let src = &python_forms(n).into_iter().find(|f| f.0 == name).unwrap().1;
                nesting_bound(src, MAX_PYTHON_NESTING).is_some()
            })
            .unwrap_or(1);
        let src = python_forms(n).into_iter().find(|f| f.0 == name).unwrap().1;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let _ = tx.send(summarize(&src));
            })
            .unwrap();
        let s = rx.recv_timeout(LIMIT).expect("finished");
        assert!(
            s.parse_error.is_none() || !s.parse_error.as_ref().unwrap().message.contains("nested"),
            "{name} at {n}: {:?}",
            s.parse_error
        );
        assert!(
            n > MAX_PYTHON_NESTING / 10,
            "{name}: only {n} levels pass the guard"
        );
    }
}

#[test]
fn python_nesting_bound_is_an_upper_bound_on_real_code() {
    // Ordinary code is far below the limit.
    let src = "import os\n\nclass A:\n    def f(self, x):\n        return [y + 1 for y in x if y]\n\nX = {\"a\": [1, 2, 3], \"b\": (4, 5)}\n";
    let d = nesting_bound(src, MAX_PYTHON_NESTING).unwrap();
    assert!((3..50).contains(&d), "{d}");
    // Long flat literals and long comma lists are shallow.
    let src = format!("X = [{}]\n", vec!["\"a\""; 50_000].join(", "));
    assert!(nesting_bound(&src, MAX_PYTHON_NESTING).unwrap() < 10);
}

/// `summarize` reads the bound off the parser's tokens; it is the bound
/// the lexer gives (the one the tests above probe), form by form, below and
/// above the limit, and on ordinary code.
#[test]
fn python_nesting_bound_from_the_parsers_tokens_is_the_lexers() {
    let ordinary = "import os\n\nclass A:\n    def f(self, x):\n        return [y + 1 for y in x if y]  # c\n\nX = {\"a\": f\"{x!r:>{w}}\", \"b\": (4, 5)}\n";
    let mut sources = vec![ordinary.to_string()];
    for n in [1, 30, 400, 1200] {
        sources.extend(python_forms(n).into_iter().map(|f| f.1));
    }
    for src in sources {
        let options = ruff_python_parser::ParseOptions::from(ruff_python_parser::Mode::Module);
        let parsed = within(LIMIT, {
            let src = src.clone();
            move || {
                let p = ruff_python_parser::parse_unchecked(&src, options);
                let kinds: Vec<_> = p.tokens().iter().map(|t| t.kind()).collect();
                std::mem::forget(p);
                kinds
            }
        });
        assert_eq!(
            nesting_bound_of(parsed.into_iter(), MAX_PYTHON_NESTING),
            nesting_bound(&src, MAX_PYTHON_NESTING),
            "{}",
            &src[..src.len().min(60)]
        );
    }
}
