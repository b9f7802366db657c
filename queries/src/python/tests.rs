//! Unit tests: every import form and image-value form, including the ones
//! that must not count.

use std::sync::Arc;

use super::summary::{ArgKey, ArgValue, ParamDefault, ScopeKind, Value, summarize};
use super::*;
use crate::db::{Database, Db, FileMode, MemoryLoader, Workspace};

/// (level, module, bound names, in_function, type_checking).
type ImportRow = (u32, String, Option<Vec<String>>, bool, bool);

fn imports(src: &str) -> Vec<ImportRow> {
    let s = summarize(src);
    assert_eq!(s.parse_error, None, "{src}");
    s.imports
        .iter()
        .map(|i| {
            (
                i.level,
                i.module.clone(),
                i.names
                    .as_ref()
                    .map(|ns| ns.iter().map(|n| n.bound().to_string()).collect()),
                i.in_function,
                i.type_checking,
            )
        })
        .collect()
}

fn modules(src: &str) -> Vec<String> {
    imports(src).into_iter().map(|i| i.1).collect()
}

#[test]
fn import_forms() {
    let got = imports(
        "import a.b\nimport c as d, e\nfrom . import x\nfrom ..p.q import (\n    y,\n    z as w,\n)\nfrom m import *\n",
    );
    assert_eq!(
        got,
        vec![
            (0, "a.b".into(), None, false, false),
            (0, "c".into(), None, false, false),
            (0, "e".into(), None, false, false),
            (1, "".into(), Some(vec!["x".into()]), false, false),
            (
                2,
                "p.q".into(),
                Some(vec!["y".into(), "w".into()]),
                false,
                false
            ),
            (0, "m".into(), Some(vec!["*".into()]), false, false),
        ]
    );
    let s = summarize("from x import (\n  a,\n  b)\n");
    assert_eq!(s.imports[0].line, 1);
    assert_eq!(s.imports[0].asname, None);
    assert_eq!(
        summarize("import c as d\n").imports[0].asname.as_deref(),
        Some("d")
    );
}

#[test]
fn load_time_includes_nested_blocks_and_class_bodies() {
    let src = "
if cond:
    import a
else:
    import b
try:
    import c
except ImportError:
    import d
finally:
    import e
with ctx():
    import f
for _ in []:
    import g
while False:
    import h
match x:
    case 1:
        import i
class K:
    import j
";
    let got = imports(src);
    assert_eq!(
        modules(src),
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    );
    assert!(got.iter().all(|i| !i.3 && !i.4), "{got:?}");
}

#[test]
fn function_level_and_type_checking_imports_are_flagged() {
    let src = "
from typing import TYPE_CHECKING
import typing
if TYPE_CHECKING:
    import tc
else:
    import runtime
if typing.TYPE_CHECKING:
    import tc2
def f():
    import lazy
    def g():
        from inner import x
class C:
    def m(self):
        import method_level
";
    let got = imports(src);
    let flags: Vec<(&str, bool, bool)> = got.iter().map(|i| (i.1.as_str(), i.3, i.4)).collect();
    assert_eq!(
        flags,
        [
            ("typing", false, false),
            ("typing", false, false),
            ("tc", false, true),
            ("runtime", false, false),
            ("tc2", false, true),
            ("lazy", true, false),
            ("inner", true, false),
            ("method_level", true, false),
        ]
    );
}

#[test]
fn strings_and_comments_are_not_imports() {
    let src = r#"
"""
import not_a_module
from docstring import x
"""
# import commented
s = "import in_string"
t = '''from also import no'''
"#;
    assert!(modules(src).is_empty());
}

#[test]
fn dynamic_imports() {
    let s = summarize(
        "import importlib\nfrom importlib import import_module\nimportlib.import_module('materialize.x')\n__import__('y')\nimport_module('.rel', __package__)\nfor f in files:\n    import_module(f'.{f}', __package__)\ndef later(n):\n    importlib.import_module(n)\n",
    );
    let mods: Vec<(u32, &str)> = s
        .imports
        .iter()
        .map(|i| (i.level, i.module.as_str()))
        .collect();
    assert_eq!(
        mods,
        [
            (0, "importlib"),
            (0, "importlib"),
            (0, "materialize.x"),
            (0, "y"),
            (1, "rel")
        ]
    );
    assert_eq!(s.dynamic_imports.len(), 2);
    assert!(!s.dynamic_imports[0].in_function);
    assert_eq!(s.dynamic_imports[0].line, 7);
    assert!(s.dynamic_imports[1].in_function);
}

#[test]
fn modern_syntax_parses() {
    let src = r#"
type Alias = list[int]
def first[T](xs: list[T]) -> T:
    return xs[0]
class Box[T]:
    pass
match cmd:
    case {"a": [x, *_]} if x:
        pass
    case _:
        pass
d = {"a": 1}
print(f"{d["a"]} and {f'{d['a']}'}")
async def g():
    async with x as y:
        pass
"#;
    assert_eq!(summarize(src).parse_error, None);
}

#[test]
fn syntax_error_is_reported_with_its_line() {
    let s = summarize("import a\n\ndef broken(:\n    pass\n");
    let err = s.parse_error.expect("a syntax error");
    assert_eq!(err.line, Some(3));
    assert!(s.imports.is_empty());
}

#[test]
fn mzbuild_value_forms() {
    let src = r#"
CONST = "module-const"

class Lit(Service):
    """Docstring: {"mzbuild": "in-docstring"}"""
    def __init__(self) -> None:
        # {"mzbuild": "in-comment"}
        super().__init__(name="x", config={"mzbuild": "literal"})

class Local(Service):
    def __init__(self, image: str | None = None) -> None:
        name = "local"
        config = {"mzbuild": name}

class Param(Service):
    def __init__(self, name: str = "p", mzbuild: str = "param-default", *, other=None) -> None:
        config = {}
        if image:
            config["image"] = image
        else:
            config["mzbuild"] = mzbuild

class Unknown(Service):
    def __init__(self) -> None:
        config = {"mzbuild": f"computed-{x}"}

class FromConst(Service):
    def __init__(self) -> None:
        config = {"mzbuild": CONST}
"#;
    let s = summarize(src);
    let values = |name: &str| -> Vec<Value> {
        let scope = s.scopes.iter().find(|sc| sc.name == name).expect(name);
        assert_eq!(scope.kind, ScopeKind::Class);
        scope.mzbuild.iter().map(|v| v.value.clone()).collect()
    };
    assert_eq!(values("Lit"), [Value::Literal("literal".into())]);
    assert_eq!(
        values("Local"),
        [Value::Local {
            var: "name".into(),
            literals: vec!["local".into()]
        }]
    );
    assert_eq!(
        values("Param"),
        [Value::Param {
            name: "mzbuild".into(),
            init: true,
            literals: vec![]
        }]
    );
    assert!(matches!(values("Unknown").as_slice(), [Value::Unknown(_)]));
    assert_eq!(
        values("FromConst"),
        [Value::Local {
            var: "CONST".into(),
            literals: vec!["module-const".into()]
        }]
    );
    let param = s
        .scopes
        .iter()
        .find(|sc| sc.name == "Param")
        .expect("Param");
    assert_eq!(param.bases, ["Service"]);
    let p: Vec<(&str, Option<usize>, &ParamDefault)> = param
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.position, &p.default))
        .collect();
    assert_eq!(
        p,
        [
            ("name", Some(0), &ParamDefault::Literal("p".into())),
            (
                "mzbuild",
                Some(1),
                &ParamDefault::Literal("param-default".into())
            ),
            ("other", None, &ParamDefault::Absent),
        ]
    );
    let lit = s.scopes.iter().find(|sc| sc.name == "Lit").expect("Lit");
    assert_eq!(lit.super_init_calls.len(), 1);
}

#[test]
fn calls_aliases_and_refs() {
    let src = r#"
from m import Kafka, make
import pkg.sub
X = make()
Y = pkg.sub.Thing
SERVICES = [Kafka(name="k", mzbuild="custom"), pkg.sub.Other("pos", **kw)]
def workflow(c):
    c.up(Local())
"#;
    let s = summarize(src);
    let aliases: Vec<(&str, &str, bool)> = s
        .aliases
        .iter()
        .map(|a| (a.name.as_str(), a.target.as_str(), a.call))
        .collect();
    assert_eq!(
        aliases[..2],
        [("X", "make", true), ("Y", "pkg.sub.Thing", false)]
    );
    assert!(s.refs.contains(&"Kafka".to_string()));
    assert!(s.refs.contains(&"pkg.sub.Other".to_string()));
    assert!(s.scopes[0].refs.contains(&"Local".to_string()));
    let kafka = s
        .calls
        .iter()
        .find(|c| c.callee == "Kafka")
        .expect("Kafka call");
    assert_eq!(kafka.args[1].key, ArgKey::Keyword("mzbuild".into()));
    assert_eq!(kafka.args[1].value, ArgValue::Str("custom".into()));
    let other = s
        .calls
        .iter()
        .find(|c| c.callee == "pkg.sub.Other")
        .expect("Other call");
    assert_eq!(other.args[0].key, ArgKey::Positional(0));
    assert_eq!(other.args[1].key, ArgKey::Star);
    assert!(s.load_calls.contains(&"make".to_string()));
}

/// A database over in-memory files.
fn repo(files: &[(&str, &str)], lazy: bool) -> (Database, Workspace) {
    let loader = MemoryLoader::default();
    for (p, text) in files {
        loader
            .files
            .insert(p.to_string(), (text.as_bytes().to_vec(), FileMode::Regular));
    }
    let mut paths: Vec<String> = files.iter().map(|f| f.0.to_string()).collect();
    paths.sort();
    let mut db = Database::new(Arc::new(loader));
    let ws = db.workspace(
        paths,
        Vec::new(),
        None,
        "test",
        vec!["misc/python".into()],
        lazy,
    );
    (db, ws)
}

const BASE: &[(&str, &str)] = &[
    ("misc/python/materialize/__init__.py", "import os\n"),
    (
        "misc/python/materialize/a.py",
        "from materialize import b\nfrom . import c\nfrom .pkg import leaf\n",
    ),
    (
        "misc/python/materialize/b.py",
        "def f():\n    import materialize.lazy\n",
    ),
    (
        "misc/python/materialize/c.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import materialize.typing_only\n",
    ),
    ("misc/python/materialize/lazy.py", ""),
    ("misc/python/materialize/typing_only.py", ""),
    ("misc/python/materialize/pkg/__init__.py", ""),
    (
        "misc/python/materialize/pkg/leaf.py",
        "from ..ns.mod import X\n",
    ),
    ("misc/python/materialize/ns/mod.py", "X = 1\n"),
    (
        "misc/python/materialize/dyn/__init__.py",
        "from importlib import import_module\nfor n in names:\n    import_module(n)\n",
    ),
    ("misc/python/materialize/dyn/one.py", ""),
    (
        "misc/python/materialize/dyn/two.py",
        "import materialize.after_dyn\n",
    ),
    ("misc/python/materialize/after_dyn.py", ""),
    ("misc/python/materialize/broken/__init__.py", ""),
    ("misc/python/materialize/broken/bad.py", "def (:\n"),
    ("misc/python/materialize/broken/sibling.py", ""),
    (
        "test/x/mzcompose.py",
        "import materialize.a\n\"\"\"import materialize.dyn\"\"\"\n",
    ),
    ("test/d/mzcompose.py", "import materialize.dyn\n"),
    (
        "test/br/mzcompose.py",
        "from materialize.broken import bad\n",
    ),
];

fn closure(files: &[(&str, &str)], lazy: bool, comp: &str) -> ImportClosure {
    let (db, ws) = repo(files, lazy);
    composition_imports(&db, ws.files(&db), ws.options(&db), db.file(comp)).clone()
}

#[test]
fn closure_follows_load_time_imports_only() {
    let c = closure(BASE, false, "test/x/mzcompose.py");
    assert_eq!(
        c.files,
        [
            "misc/python/materialize/a.py",
            "misc/python/materialize/b.py",
            "misc/python/materialize/c.py",
            "misc/python/materialize/ns/mod.py",
            "misc/python/materialize/pkg/__init__.py",
            "misc/python/materialize/pkg/leaf.py",
        ]
    );
    assert!(c.unsure.is_empty());
    // `materialize/__init__.py` is loaded but not listed, like the reference.
    assert!(c.via.contains_key("misc/python/materialize/__init__.py"));
    let via = &c.via["misc/python/materialize/pkg/leaf.py"];
    assert_eq!(
        (via.importer.as_str(), via.line),
        ("misc/python/materialize/a.py", 3)
    );
}

#[test]
fn lazy_imports_follow_function_bodies_but_not_type_checking() {
    let c = closure(BASE, true, "test/x/mzcompose.py");
    assert!(
        c.files
            .contains(&"misc/python/materialize/lazy.py".to_string())
    );
    assert!(
        !c.files
            .contains(&"misc/python/materialize/typing_only.py".to_string())
    );
    assert!(c.via["misc/python/materialize/lazy.py"].function_level);
}

/// (file, line, function level) of each hop.
fn hops(c: &ImportClosure, file: &str) -> Vec<(String, Option<usize>, bool)> {
    c.import_chain(file)
        .unwrap_or_default()
        .into_iter()
        .map(|h| (h.file, h.line, h.function_level))
        .collect()
}

#[test]
fn import_chain_walks_back_to_the_composition() {
    let c = closure(BASE, false, "test/x/mzcompose.py");
    let m = "misc/python/materialize/";
    assert_eq!(
        hops(&c, &format!("{m}ns/mod.py")),
        [
            (format!("{m}ns/mod.py"), None, false),
            (format!("{m}pkg/leaf.py"), Some(1), false),
            (format!("{m}a.py"), Some(3), false),
            ("test/x/mzcompose.py".to_string(), Some(1), false),
        ]
    );
    // Not loaded (function level without --lazy-imports), or the start.
    assert_eq!(c.import_chain(&format!("{m}lazy.py")), None);
    assert_eq!(c.import_chain("test/x/mzcompose.py"), None);
    // With --lazy-imports the function-level link is named as such.
    let c = closure(BASE, true, "test/x/mzcompose.py");
    assert_eq!(
        hops(&c, &format!("{m}lazy.py")),
        [
            (format!("{m}lazy.py"), None, false),
            (format!("{m}b.py"), Some(2), true),
            (format!("{m}a.py"), Some(1), false),
            ("test/x/mzcompose.py".to_string(), Some(1), false),
        ]
    );
}

#[test]
fn import_chain_is_a_shortest_one() {
    // `deep` is reached through a → b → deep and directly from c; the
    // composition imports a first, so a depth-first walk would name the
    // long chain.
    let files: &[(&str, &str)] = &[
        ("misc/python/materialize/__init__.py", ""),
        ("misc/python/materialize/a.py", "import materialize.b\n"),
        ("misc/python/materialize/b.py", "import materialize.deep\n"),
        ("misc/python/materialize/c.py", "import materialize.deep\n"),
        ("misc/python/materialize/deep.py", ""),
        (
            "test/s/mzcompose.py",
            "import materialize.a\nimport materialize.c\n",
        ),
    ];
    let c = closure(files, false, "test/s/mzcompose.py");
    let chain: Vec<String> = hops(&c, "misc/python/materialize/deep.py")
        .into_iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(chain.len(), 3, "{chain:?}");
    assert_eq!(chain[1], "misc/python/materialize/c.py");
}

#[test]
fn dynamic_import_pulls_in_the_package_directory() {
    let c = closure(BASE, false, "test/d/mzcompose.py");
    assert_eq!(
        c.files,
        [
            "misc/python/materialize/after_dyn.py",
            "misc/python/materialize/dyn/__init__.py",
            "misc/python/materialize/dyn/one.py",
            "misc/python/materialize/dyn/two.py",
        ]
    );
}

#[test]
fn a_file_that_does_not_parse_is_an_unsure_note_reaching_the_roots() {
    let c = closure(BASE, false, "test/br/mzcompose.py");
    // What could be read is listed; the rest is the note's reach (every
    // module under the roots, given by the plan), not a guess here.
    assert!(
        c.files
            .contains(&"misc/python/materialize/broken/bad.py".to_string())
    );
    assert_eq!(c.unsure.len(), 1);
    assert_eq!(
        c.unsure[0].file.as_deref(),
        Some("misc/python/materialize/broken/bad.py")
    );
    assert_eq!(c.unsure[0].line, Some(1));
    assert!(
        c.unsure[0].message.starts_with("cannot be parsed: "),
        "{}",
        c.unsure[0]
    );
    assert!(
        c.unsure[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("every Python module under `misc/python`")),
        "{}",
        c.unsure[0]
    );
}

#[test]
fn a_composition_that_does_not_parse_is_one_note_for_imports_and_images() {
    let files = &[
        ("misc/python/materialize/__init__.py", ""),
        (
            "test/bad/mzcompose.py",
            "import materialize\ndef broken(:\n",
        ),
    ];
    let (db, ws) = repo(files, false);
    let f = db.file("test/bad/mzcompose.py");
    let c = composition_imports(&db, ws.files(&db), ws.options(&db), f);
    let i = composition_images(&db, ws.files(&db), ws.options(&db), f);
    assert_eq!(c.unsure.len(), 1);
    assert_eq!(c.unsure[0].line, Some(2));
    assert_eq!(i.every_image.as_ref(), Some(&c.unsure[0]));
}

#[test]
fn a_name_from_a_module_that_does_not_parse_is_the_same_one_note() {
    let files = &[
        ("misc/python/materialize/__init__.py", ""),
        ("misc/python/materialize/svc.py", "X = 1\ndef broken(:\n"),
        (
            "test/t/mzcompose.py",
            "from materialize.svc import Services\nSERVICES = Services()\n",
        ),
    ];
    let (db, ws) = repo(files, false);
    let f = db.file("test/t/mzcompose.py");
    let c = composition_imports(&db, ws.files(&db), ws.options(&db), f);
    let i = composition_images(&db, ws.files(&db), ws.options(&db), f);
    // Unknown names mean every image, under the closure's note for the
    // file (one warning in the report, not one per effect).
    assert_eq!(c.unsure.len(), 1);
    assert_eq!(
        c.unsure[0].file.as_deref(),
        Some("misc/python/materialize/svc.py")
    );
    assert_eq!(i.every_image.as_ref(), Some(&c.unsure[0]));
}

#[test]
fn a_lookup_past_the_depth_bound_means_every_image() {
    // `Deep` is re-exported through 40 modules: more than the bound.
    let mut files: Vec<(String, String)> = vec![
        ("misc/python/materialize/__init__.py".into(), String::new()),
        (
            "test/deep/mzcompose.py".into(),
            "from materialize.m0 import Deep\nSERVICES = [Deep()]\n".into(),
        ),
    ];
    for i in 0..40 {
        files.push((
            format!("misc/python/materialize/m{i}.py"),
            format!("from materialize.m{} import *\n", i + 1),
        ));
    }
    files.push((
        "misc/python/materialize/m40.py".into(),
        "class Deep:\n    def __init__(self):\n        self.config = {\"mzbuild\": \"deep\"}\n"
            .into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let (db, ws) = repo(&refs, false);
    let f = db.file("test/deep/mzcompose.py");
    let i = composition_images(&db, ws.files(&db), ws.options(&db), f);
    let d = i.every_image.as_ref().expect("gave up: every image");
    assert!(d.message.contains("gave up looking up"), "{d}");

    // A cycle of star imports is not a deep chain: it ends, and the
    // definition found on the way counts.
    let files = &[
        ("misc/python/materialize/__init__.py", ""),
        (
            "misc/python/materialize/a.py",
            "from materialize.b import *\nclass A:\n    def __init__(self):\n        self.config = {\"mzbuild\": \"aa\"}\n",
        ),
        (
            "misc/python/materialize/b.py",
            "from materialize.a import *\n",
        ),
        (
            "test/cyc/mzcompose.py",
            "from materialize.b import A, Missing\nSERVICES = [A(), Missing()]\n",
        ),
    ];
    let (db, ws) = repo(files, false);
    let f = db.file("test/cyc/mzcompose.py");
    let i = composition_images(&db, ws.files(&db), ws.options(&db), f);
    assert_eq!(i.every_image, None);
    assert_eq!(i.names, ["aa"]);
}

#[test]
fn functions_called_at_load_time_run_their_imports() {
    let files = &[
        ("misc/python/materialize/__init__.py", ""),
        (
            "misc/python/materialize/store.py",
            "def _pick():\n    return _inner()\ndef _inner():\n    from materialize.picked import P\n    return P\ndef unused():\n    import materialize.never\nStore = _pick()\n",
        ),
        ("misc/python/materialize/picked.py", "class P:\n    pass\n"),
        ("misc/python/materialize/never.py", ""),
        (
            "test/s/mzcompose.py",
            "from materialize.store import Store\n",
        ),
    ];
    let c = closure(files, false, "test/s/mzcompose.py");
    assert_eq!(
        c.files,
        [
            "misc/python/materialize/picked.py",
            "misc/python/materialize/store.py"
        ]
    );
}

const SERVICES: &[(&str, &str)] = &[
    ("misc/python/materialize/__init__.py", ""),
    ("misc/python/materialize/svc/__init__.py", ""),
    (
        "misc/python/materialize/svc/base.py",
        r#"
class Service:
    def __init__(self, name, config):
        self.config = config

class Postgres(Service):
    def __init__(self, name="postgres", mzbuild="postgres", image=None):
        config = {"image": image} if image else {"mzbuild": mzbuild}
        super().__init__(name=name, config=config)

class PostgresMeta(Postgres):
    def __init__(self):
        super().__init__(name="meta")

class Forwarding(Postgres):
    def __init__(self, mzbuild="fwd-default"):
        super().__init__(mzbuild=mzbuild)

class Dynamic(Service):
    def __init__(self, tag):
        super().__init__(name="d", config={"mzbuild": f"dyn-{tag}"})

class Unused(Service):
    def __init__(self):
        super().__init__(name="u", config={"mzbuild": "unused"})
"#,
    ),
    (
        "misc/python/materialize/svc/alias.py",
        r#"
def _choose():
    from materialize.svc.base import PostgresMeta
    return PostgresMeta

Chosen = _choose()

def services(name):
    """Returns {"mzbuild": "docstring-only"}."""
    return [Service(name, {"mzbuild": name})]
"#,
    ),
];

fn images_of(comp: &str) -> CompositionImages {
    let mut files = SERVICES.to_vec();
    files.push(("test/c/mzcompose.py", comp));
    let (db, ws) = repo(&files, false);
    composition_images(
        &db,
        ws.files(&db),
        ws.options(&db),
        db.file("test/c/mzcompose.py"),
    )
    .clone()
}

#[test]
fn images_literal_default_and_argument() {
    let i = images_of(
        "from materialize.svc.base import Postgres\nSERVICES = [Postgres(), Postgres(mzbuild=\"pg-kw\"), Postgres(\"n\", \"pg-pos\")]\n",
    );
    assert_eq!(i.names, ["pg-kw", "pg-pos", "postgres"]);
    assert_eq!(i.every_image, None);
    assert_eq!(i.via["postgres"][0].scope.as_deref(), Some("Postgres"));
}

#[test]
fn images_of_a_subclass_include_the_base_class() {
    let i = images_of("from materialize.svc import base\nSERVICES = [base.PostgresMeta()]\n");
    assert_eq!(i.names, ["postgres"]);
    let i = images_of(
        "from materialize.svc.base import Forwarding\nSERVICES = [Forwarding(mzbuild=\"mine\")]\n",
    );
    assert_eq!(i.names, ["fwd-default", "mine", "postgres"]);
}

#[test]
fn images_through_a_function_alias_and_a_function() {
    let i = images_of("from materialize.svc.alias import Chosen\nSERVICES = [Chosen()]\n");
    assert_eq!(i.names, ["postgres"]);
    let i = images_of(
        "from materialize.svc.alias import services\nSERVICES = services(\"from-arg\")\n",
    );
    assert_eq!(i.names, ["from-arg"]);
}

#[test]
fn images_dict_literal_in_the_composition_and_not_in_docstrings() {
    let i = images_of(
        "\"\"\"Uses {\"mzbuild\": \"doc\"}.\"\"\"\n# {\"mzbuild\": \"comment\"}\nSERVICES = [Service(\"x\", {\"mzbuild\": \"own\"})]\n",
    );
    assert_eq!(i.names, ["own"]);
}

#[test]
fn undeterminable_values_mean_every_image() {
    let i = images_of("from materialize.svc.base import Dynamic\nSERVICES = [Dynamic(\"x\")]\n");
    let d = i.every_image.expect("fail safe");
    assert_eq!(
        d.file.as_deref(),
        Some("misc/python/materialize/svc/base.py")
    );
    let i = images_of(
        "from materialize.svc.base import Postgres\nSERVICES = [Postgres(mzbuild=NAME)]\n",
    );
    assert!(i.every_image.is_some());
    let i = images_of("def (:\n");
    assert!(i.every_image.is_some());
}

#[test]
fn unreferenced_classes_do_not_count() {
    let i = images_of("import materialize.svc.base\n");
    assert!(i.names.is_empty());
}
