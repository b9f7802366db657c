//! One parse per Python file: everything the import closure and the image
//! analysis need, extracted into plain data.
//!
//! The summary is the only query that looks at the syntax tree, so editing a
//! file re-parses that file alone; the other queries read summaries.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::{Ranged, TextSize};
use rustc_hash::FxHashSet;

use crate::db::{Db, File, content_text};

/// What one Python file says, as far as pipetrim cares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ModuleSummary {
    /// Every `import` / `from … import` and every dynamic import with a
    /// literal argument, in source order.
    pub imports: Vec<Import>,
    /// Dynamic imports whose argument is not a literal (the module is unknown).
    pub dynamic_imports: Vec<DynamicImport>,
    /// Module-level classes and functions (nested definitions belong to
    /// their top-level owner).
    pub scopes: Vec<Scope>,
    /// Module-level `X = f(…)` and `X = a.b` bindings.
    pub aliases: Vec<Alias>,
    /// Dotted names read by module-level code outside any definition.
    pub refs: Vec<String>,
    /// Values assigned to an `"mzbuild"` key outside any definition.
    pub mzbuild: Vec<MzbuildValue>,
    /// Calls with at least one argument whose callee is a dotted name.
    /// Only a composition's own calls are ever read (the arguments it
    /// passes to service classes, SPEC §4.1): [`module_summary`] leaves
    /// them out for every file but `mzcompose.py` (two thirds of a module's
    /// summary on c01).
    pub calls: Vec<Call>,
    /// Dotted callees of the calls that run at load time (module level and
    /// class bodies, not function bodies): their bodies' imports run then too.
    pub load_calls: Vec<String>,
    /// The first syntax error, if the file does not parse (or is not text).
    pub parse_error: Option<ParseFailure>,
}

/// A syntax error (or unreadable file): the summary is then empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ParseFailure {
    pub line: Option<usize>,
    pub message: String,
}

/// One imported module (one alias of an `import` statement, or one
/// `from … import` statement).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Import {
    /// Number of leading dots (relative import); 0 for absolute.
    pub level: u32,
    /// The dotted module (may be empty for `from . import x`).
    pub module: String,
    /// `from module import names`; `None` for `import module [as x]`.
    pub names: Option<Vec<ImportedName>>,
    /// `import a.b as c` binds `c`; `import a.b` binds `a`.
    pub asname: Option<String>,
    /// 1-based line of the statement.
    pub line: usize,
    /// Inside a function body: runs when the function is called, not at load.
    pub in_function: bool,
    /// Inside `if TYPE_CHECKING:`: never runs.
    pub type_checking: bool,
    /// The module-level class or function it sits in (index into `scopes`).
    pub owner: Option<usize>,
}

impl Import {
    /// Whether the import runs when the module is loaded.
    pub fn at_load_time(&self) -> bool {
        !self.in_function && !self.type_checking
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ImportedName {
    pub name: String,
    pub asname: Option<String>,
}

impl ImportedName {
    pub fn bound(&self) -> &str {
        self.asname.as_deref().unwrap_or(&self.name)
    }
}

/// `importlib.import_module(x)` / `__import__(x)` with a non-literal `x`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DynamicImport {
    pub line: usize,
    pub in_function: bool,
    pub type_checking: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ScopeKind {
    Class,
    Function,
}

/// A module-level class or function.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    pub name: String,
    pub kind: ScopeKind,
    pub line: usize,
    /// Base classes as dotted names (classes only).
    pub bases: Vec<String>,
    /// Parameters of the function, or of the class's `__init__` (without `self`).
    pub params: Vec<Param>,
    /// Every value the definition can assign to an `"mzbuild"` key.
    pub mzbuild: Vec<MzbuildValue>,
    /// Dotted names the body reads (annotations excluded).
    pub refs: Vec<String>,
    /// Arguments of `super().__init__(…)` calls in the class body.
    pub super_init_calls: Vec<Vec<Arg>>,
    /// Dotted callees of every call in the body.
    pub called: Vec<String>,
}

/// A parameter: its name, position (for positional arguments) and default.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Param {
    pub name: String,
    /// Index among the positional parameters (`self` not counted); `None`
    /// for keyword-only parameters.
    pub position: Option<usize>,
    pub default: ParamDefault,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ParamDefault {
    /// No default, or `None`: contributes no value.
    Absent,
    Literal(String),
    /// A default that is not a string literal (cannot be determined).
    Other,
}

/// A value assigned to an `"mzbuild"` key, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MzbuildValue {
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// `"mzbuild": "postgres"`.
    Literal(String),
    /// `"mzbuild": name` where every assignment of `name` is a literal.
    Local { var: String, literals: Vec<String> },
    /// `"mzbuild": mzbuild` where `mzbuild` is a parameter of the enclosing
    /// function (`init`: of a module-level function or a class's `__init__`,
    /// so callers' arguments reach it);
    /// `literals` are literal re-assignments in the body.
    Param {
        name: String,
        init: bool,
        literals: Vec<String>,
    },
    /// Anything else: the composition must use every image.
    Unknown(String),
}

/// A module-level alias: `X = f(…)` (`call`) or `X = a.b`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Alias {
    pub name: String,
    pub target: String,
    pub call: bool,
    pub line: usize,
}

/// A call `callee(args)`, recorded for its literal arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Call {
    pub callee: String,
    pub line: usize,
    pub owner: Option<usize>,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Arg {
    pub key: ArgKey,
    pub value: ArgValue,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ArgKey {
    Positional(usize),
    Keyword(String),
    /// `*args` or `**kwargs`: may fill any parameter.
    Star,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ArgValue {
    Str(String),
    None,
    Name(String),
    Other,
}

/// A file's [`ModuleSummary`] split for [`module_shape`] and
/// [`module_lines`]: shared, so that neither copies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapedSummary {
    /// The summary, each line number replaced by its rank.
    pub shape: Arc<ModuleSummary>,
    /// The distinct line numbers, sorted: rank → line.
    pub lines: Arc<[usize]>,
}

/// Parses `file` once and extracts its [`ModuleSummary`], split into its
/// shape and its lines. The summary (with real lines) is kept in the
/// persistent cache under the file's blob id (a summary does not depend on
/// the path). The text is read for the parse and dropped after it: nothing
/// else reads a module's bytes, and keeping them (2 MB on c01) only grew
/// the heap a cold run touches.
#[salsa::tracked(returns(ref))]
pub fn module_summary(db: &dyn Db, file: File) -> ShapedSummary {
    let mut summary = summary_leaf(db, file);
    let lines = rank_lines(&mut summary);
    ShapedSummary {
        shape: Arc::new(summary),
        lines: lines.into(),
    }
}

/// The summary of `file` with real lines, from the cache or the parse;
/// with its calls only for a composition file (each kind of summary has
/// its own cache entries: the same bytes may be both).
fn summary_leaf(db: &dyn Db, file: File) -> ModuleSummary {
    let composition = crate::paths::file_name(file.path(db)) == "mzcompose.py";
    let kind = if composition {
        crate::cache::Kind::CompositionSummary
    } else {
        crate::cache::Kind::ModuleSummary
    };
    crate::cache::leaf_read_once(db, kind, file, |content| match content_text(content) {
        Ok(text) => summarize_for(text, composition),
        Err(why) => ModuleSummary {
            parse_error: Some(ParseFailure {
                line: None,
                message: format!("file {why}"),
            }),
            ..ModuleSummary::default()
        },
    })
}

/// The summary of `file` with each line number replaced by its rank among
/// the summary's distinct line numbers ([`module_lines`] maps a rank back).
///
/// The analyses read this, not [`module_summary`]: an edit that only moves
/// lines (a line added above the imports, a docstring grown) leaves the
/// shape as it was, so salsa cuts the change off here instead of
/// re-running the analysis of every composition that reaches the file (on
/// c01, 36 of them for a service module). Ranks keep the order and the
/// equality of lines, and nothing compares lines otherwise, so every
/// decision is the one the real lines give; the analyses' results are
/// mapped back to real lines at the end ([`super::analysis`]).
#[salsa::tracked(returns(ref))]
pub fn module_shape(db: &dyn Db, file: File) -> Arc<ModuleSummary> {
    Arc::clone(&module_summary(db, file).shape)
}

/// The distinct line numbers of `file`'s summary, sorted: rank → line.
#[salsa::tracked(returns(ref))]
pub fn module_lines(db: &dyn Db, file: File) -> Arc<[usize]> {
    Arc::clone(&module_summary(db, file).lines)
}

/// Replaces each line number of `s` by its rank among the distinct ones,
/// which it returns sorted.
fn rank_lines(s: &mut ModuleSummary) -> Vec<usize> {
    let mut lines = Vec::new();
    for_each_line(s, &mut |l| lines.push(*l));
    lines.sort_unstable();
    lines.dedup();
    for_each_line(s, &mut |l| *l = lines.binary_search(l).unwrap_or(*l));
    lines
}

/// The line a rank of [`module_shape`] stands for (the rank itself if out
/// of range, which a rank taken from the same file never is).
pub fn line_of_rank(db: &dyn Db, file: File, rank: usize) -> usize {
    module_lines(db, file).get(rank).copied().unwrap_or(rank)
}

/// Calls `f` on every line number of the summary.
fn for_each_line(s: &mut ModuleSummary, f: &mut dyn FnMut(&mut usize)) {
    let ModuleSummary {
        imports,
        dynamic_imports,
        scopes,
        aliases,
        refs: _,
        mzbuild,
        calls,
        load_calls: _,
        parse_error,
    } = s;
    imports.iter_mut().for_each(|i| f(&mut i.line));
    dynamic_imports.iter_mut().for_each(|d| f(&mut d.line));
    for scope in scopes {
        f(&mut scope.line);
        scope.mzbuild.iter_mut().for_each(|v| f(&mut v.line));
    }
    aliases.iter_mut().for_each(|a| f(&mut a.line));
    mzbuild.iter_mut().for_each(|v| f(&mut v.line));
    calls.iter_mut().for_each(|c| f(&mut c.line));
    if let Some(ParseFailure {
        line: Some(line), ..
    }) = parse_error
    {
        f(line);
    }
}

/// The deepest syntax nesting a Python file may have (an upper bound computed
/// by [`nesting_bound_of`]); deeper files are reported as unparseable.
pub const MAX_PYTHON_NESTING: usize = 1000;

/// The stack the tree walk and the tree's drop run on for a file deeper
/// than [`INLINE_PARSE_DEPTH`]. Both recurse once (or a few times) per level
/// of the syntax tree, and a stack overflow aborts the process (it cannot be
/// caught), so the depth is bounded first by [`nesting_bound_of`] (tests walk
/// the densest forms at the limit in debug builds, and they pass with 8 MiB
/// too). The segment is virtual memory: only the part a walk touches is ever
/// committed.
const PARSE_STACK_BYTES: usize = 64 << 20;

/// Files whose depth bound is at most this are walked on the caller's stack:
/// 1000 levels fit in 8 MiB in debug builds, so 64 need well under the 2 MiB
/// of a rayon worker.
const INLINE_PARSE_DEPTH: usize = 64;

/// The summary of Python source text (the pure part of [`module_summary`]).
///
/// Never recurses without bound. The parser guards its own recursion (it
/// grows its stack with stacker as it nests), so the file is parsed first,
/// and the depth bound is read off the tokens the parser kept, not from a
/// second lexing of the file (which cost 7 % of a cold run). The walk and
/// the drop of the tree are not guarded: a file nested deeper than
/// [`MAX_PYTHON_NESTING`] is refused with a parse failure (which callers
/// treat fail safe), and a deep one is walked on a stack segment of its own.
pub fn summarize(text: &str) -> ModuleSummary {
    summarize_for(text, true)
}

/// [`summarize`], with the calls (see [`ModuleSummary::calls`]) only if
/// `calls` says so.
pub fn summarize_for(text: &str, calls: bool) -> ModuleSummary {
    let failure = |line: Option<usize>, message: String| ModuleSummary {
        parse_error: Some(ParseFailure { line, message }),
        ..ModuleSummary::default()
    };
    let options = ruff_python_parser::ParseOptions::from(ruff_python_parser::Mode::Module);
    let parsed = std::panic::catch_unwind(|| {
        ruff_python_parser::parse_unchecked(text, options).try_into_module()
    });
    let Ok(Some(parsed)) = parsed else {
        return failure(None, "the Python parser panicked".into());
    };
    let kinds = parsed.tokens().iter().map(|t| t.kind());
    let Some(depth) = nesting_bound_of(kinds, MAX_PYTHON_NESTING) else {
        // Dropping the tree recurses as deep as it is nested: it is left
        // unfreed instead. Only a hostile file gets here (CPython itself
        // refuses 200 nested brackets), and its failure is cached under its
        // blob, so the same content is not parsed again.
        std::mem::forget(parsed);
        return failure(
            None,
            format!("nested deeper than {MAX_PYTHON_NESTING} levels: not parsed"),
        );
    };
    if depth <= INLINE_PARSE_DEPTH {
        // Shallow (almost every real file): the caller's stack has room.
        return summarize_parsed(text, parsed, calls);
    }
    // Deeper: on a stack segment of its own, switched to on this thread (a
    // thread per file cost more: each new thread's allocator heap starts on
    // fresh pages, which the kernel zeroes).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stacker::grow(PARSE_STACK_BYTES, || summarize_parsed(text, parsed, calls))
    }))
    .unwrap_or_else(|_| failure(None, "walking the Python syntax tree panicked".into()))
}

/// An upper bound on the depth of the syntax tree of `text`, computed from
/// its tokens without recursion (see [`nesting_bound_of`]); `None` when it
/// exceeds `limit`. From a lexing of its own, without parsing: what the
/// tests measure the limit with, and check [`summarize`]'s bound (read off
/// the parser's tokens) against.
pub fn nesting_bound(text: &str, limit: usize) -> Option<usize> {
    let mut lexer = ruff_python_parser::lexer::lex(text, ruff_python_parser::Mode::Module);
    nesting_bound_of(std::iter::from_fn(|| Some(lexer.next_token())), limit)
}

/// An upper bound on the depth of the syntax tree of a token stream,
/// computed without recursion: within one comma-separated item, each token
/// can add at most one level (`- - - x`, `a + b + c`, `a.b.c`, `lambda: …`),
/// each bracket (or f-string) adds one, and each indentation level one.
/// `None` as soon as the bound exceeds `limit`. The stream ends at its end
/// or at `EndOfFile`.
pub fn nesting_bound_of(
    kinds: impl Iterator<Item = ruff_python_ast::token::TokenKind>,
    limit: usize,
) -> Option<usize> {
    use ruff_python_ast::token::TokenKind as T;

    /// One open bracket: tokens of its current item, the deepest bracket
    /// inside that item, the deepest finished item, and what the frames
    /// beneath it add to the open estimate (they do not change while it
    /// is open, so the estimate is kept per token without a sum over the
    /// stack, which was a tenth of a summary).
    #[derive(Default)]
    struct Frame {
        tokens: usize,
        child: usize,
        deepest: usize,
        below: usize,
    }
    impl Frame {
        fn item(&self) -> usize {
            self.tokens + self.child
        }
        /// What this frame and those beneath it add to the estimate.
        fn open(&self) -> usize {
            self.below + self.item().max(self.deepest) + 1
        }
        fn end_item(&mut self) {
            self.deepest = self.deepest.max(self.item());
            self.tokens = 0;
            self.child = 0;
        }
    }

    let mut stack: Vec<Frame> = vec![Frame::default()];
    let mut indent = 0usize;
    let mut max = 0usize;
    for kind in kinds {
        match kind {
            T::EndOfFile => break,
            T::Indent => indent += 1,
            T::Dedent => indent = indent.saturating_sub(1),
            T::Comment | T::NonLogicalNewline => {}
            T::Lpar | T::Lsqb | T::Lbrace | T::FStringStart | T::TStringStart => {
                let below = stack.last_mut().map_or(0, |top| {
                    top.tokens += 1;
                    top.open()
                });
                stack.push(Frame {
                    below,
                    ..Frame::default()
                });
            }
            T::Rpar | T::Rsqb | T::Rbrace | T::FStringEnd | T::TStringEnd => {
                if stack.len() > 1 {
                    let mut done = stack.pop().unwrap_or_default();
                    done.end_item();
                    if let Some(top) = stack.last_mut() {
                        top.child = top.child.max(1 + done.deepest);
                    }
                }
            }
            T::Comma => {
                if let Some(top) = stack.last_mut() {
                    top.end_item();
                }
            }
            T::Newline | T::Semi => {
                // A logical line ends: unclosed brackets (a syntax error) are
                // folded into the statement, which then starts afresh.
                while stack.len() > 1 {
                    let mut done = stack.pop().unwrap_or_default();
                    done.end_item();
                    if let Some(top) = stack.last_mut() {
                        top.child = top.child.max(1 + done.deepest);
                    }
                }
                if let Some(top) = stack.last_mut() {
                    top.end_item();
                    max = max.max(indent + 1 + top.deepest);
                    *top = Frame::default();
                }
            }
            _ => {
                if let Some(top) = stack.last_mut() {
                    top.tokens += 1;
                }
            }
        }
        // What is open now: a lower estimate of the final bound, so that
        // a million open brackets stop the scan early.
        let open = stack.last().map_or(0, Frame::open);
        max = max.max(indent + open);
        if max > limit {
            return None;
        }
    }
    // The last line, if it has no newline.
    if let Some(top) = stack.last_mut() {
        top.end_item();
    }
    let rest: usize = stack.iter().map(|f| f.deepest + 1).sum();
    max = max.max(indent + rest);
    (max <= limit).then_some(max)
}

/// [`summarize`] of a parsed file, on the caller's stack.
fn summarize_parsed(
    text: &str,
    parsed: ruff_python_parser::Parsed<ast::ModModule>,
    calls: bool,
) -> ModuleSummary {
    let lines = LineIndex::new(text);
    if let Some(e) = parsed.errors().first() {
        return ModuleSummary {
            parse_error: Some(ParseFailure {
                line: Some(lines.line(e.location.start())),
                message: format!("syntax error: {}", e.error),
            }),
            ..ModuleSummary::default()
        };
    }
    let body = &parsed.syntax().body;
    let mut w = Walker {
        lines,
        out: ModuleSummary::default(),
        ctx: Ctx::default(),
        funcs: Vec::new(),
        module_body: body,
        module_locals: OnceCell::new(),
        refs: FxHashSet::default(),
        scope_refs: Vec::new(),
        scratch: String::new(),
        keep_calls: calls,
    };
    w.visit_body(body);
    let mut out = w.out;
    out.refs = sorted(w.refs);
    for (scope, refs) in out.scopes.iter_mut().zip(w.scope_refs) {
        scope.refs = sorted(refs);
    }
    out
}

/// The names of a set, in order.
fn sorted(set: FxHashSet<String>) -> Vec<String> {
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort_unstable();
    v
}

/// Byte offset → 1-based line.
struct LineIndex {
    starts: Vec<u32>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        // memchr: a byte loop was 3 % of a summary.
        let newlines = memchr::memchr_iter(b'\n', text.as_bytes());
        let starts = std::iter::once(0)
            .chain(newlines.map(|i| u32::try_from(i + 1).unwrap_or(u32::MAX)))
            .collect();
        LineIndex { starts }
    }

    fn line(&self, at: TextSize) -> usize {
        self.starts.partition_point(|&s| s <= at.to_u32())
    }
}

/// Where the walker is: decides load time vs. function level and who owns
/// what it finds.
#[derive(Clone, Copy, Default)]
struct Ctx {
    in_function: bool,
    type_checking: bool,
    owner: Option<usize>,
}

/// Simple-name assignments (see [`assignments`]): name → each value.
type Locals = BTreeMap<String, Vec<Option<String>>>;

/// The enclosing function of a value: its parameters and local assignments.
/// Both are looked at only when an `"mzbuild"` value is a name (a few
/// functions of a few files), so the assignments are collected then: a
/// second walk of every function body was a fifth of a summary.
struct FuncCtx<'a> {
    parameters: &'a ast::Parameters,
    init: bool,
    body: &'a [Stmt],
    locals: OnceCell<Locals>,
}

impl FuncCtx<'_> {
    fn has_param(&self, name: &str) -> bool {
        self.parameters.iter().any(|p| p.name().as_str() == name)
    }

    fn locals(&self) -> &Locals {
        self.locals.get_or_init(|| assignments(self.body))
    }
}

struct Walker<'a> {
    lines: LineIndex,
    out: ModuleSummary,
    ctx: Ctx,
    funcs: Vec<FuncCtx<'a>>,
    module_body: &'a [Stmt],
    module_locals: OnceCell<Locals>,
    /// Hashed while walked (a tree of strings was 3 % of a summary), sorted
    /// once at the end.
    refs: FxHashSet<String>,
    scope_refs: Vec<FxHashSet<String>>,
    /// A dotted name being read, built here: most are read before, so
    /// they are looked up without allocating.
    scratch: String,
    /// Whether [`ModuleSummary::calls`] is wanted.
    keep_calls: bool,
}

/// `a.b.c` for a chain of attributes on a name, else `None`.
pub(crate) fn dotted(expr: &Expr) -> Option<String> {
    let mut out = String::new();
    dotted_into(expr, &mut out).then_some(out)
}

/// Appends [`dotted`]'s name to `out`; false (and `out` partly written)
/// when `expr` is not such a chain.
fn dotted_into(expr: &Expr, out: &mut String) -> bool {
    match expr {
        Expr::Name(n) => {
            out.push_str(n.id.as_str());
            true
        }
        Expr::Attribute(a) => {
            if !dotted_into(&a.value, out) {
                return false;
            }
            out.push('.');
            out.push_str(a.attr.as_str());
            true
        }
        _ => false,
    }
}

fn str_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::StringLiteral(s) => Some(s.value.to_str()),
        _ => None,
    }
}

/// `TYPE_CHECKING` or `typing.TYPE_CHECKING` (without building the name:
/// every `if` asks).
fn is_type_checking(test: &Expr) -> bool {
    match test {
        Expr::Name(n) => n.id.as_str() == "TYPE_CHECKING",
        Expr::Attribute(a) => {
            a.attr.as_str() == "TYPE_CHECKING"
                && matches!(&*a.value, Expr::Name(n) if n.id.as_str() == "typing")
        }
        _ => false,
    }
}

/// Simple-name assignments of a body (not descending into definitions):
/// each value is `Some(literal)` or `None` (anything else).
fn assignments(body: &[Stmt]) -> Locals {
    struct A(Locals);
    impl A {
        fn target(&mut self, t: &Expr, v: Option<&Expr>) {
            match t {
                Expr::Name(n) => self
                    .0
                    .entry(n.id.as_str().to_string())
                    .or_default()
                    .push(v.and_then(str_literal).map(str::to_string)),
                Expr::Tuple(t) => t.elts.iter().for_each(|e| self.target(e, None)),
                Expr::List(t) => t.elts.iter().for_each(|e| self.target(e, None)),
                Expr::Starred(s) => self.target(&s.value, None),
                _ => {}
            }
        }
    }
    impl<'a> Visitor<'a> for A {
        fn visit_stmt(&mut self, stmt: &'a Stmt) {
            match stmt {
                Stmt::FunctionDef(_) | Stmt::ClassDef(_) => {}
                Stmt::Assign(a) => {
                    for t in &a.targets {
                        self.target(t, Some(&a.value));
                    }
                }
                Stmt::AnnAssign(a) => {
                    if let Some(v) = &a.value {
                        self.target(&a.target, Some(v));
                    }
                }
                Stmt::AugAssign(a) => self.target(&a.target, None),
                Stmt::For(f) => {
                    self.target(&f.target, None);
                    visitor::walk_body(self, &f.body);
                    visitor::walk_body(self, &f.orelse);
                }
                Stmt::With(w) => {
                    for item in &w.items {
                        if let Some(v) = &item.optional_vars {
                            self.target(v, None);
                        }
                    }
                    visitor::walk_body(self, &w.body);
                }
                _ => visitor::walk_stmt(self, stmt),
            }
        }
        fn visit_expr(&mut self, expr: &'a Expr) {
            if let Expr::Named(n) = expr {
                self.target(&n.target, None);
            }
            visitor::walk_expr(self, expr);
        }
    }
    let mut a = A(BTreeMap::new());
    visitor::walk_body(&mut a, body);
    a.0
}

fn params_of(parameters: &ast::Parameters, skip_self: bool) -> Vec<Param> {
    let mut out = Vec::new();
    let mut position = 0usize;
    let positional = parameters.posonlyargs.iter().chain(&parameters.args);
    for (i, p) in positional.enumerate() {
        if skip_self && i == 0 {
            continue;
        }
        out.push(Param {
            name: p.parameter.name.as_str().to_string(),
            position: Some(position),
            default: default_of(p.default.as_deref()),
        });
        position += 1;
    }
    for p in &parameters.kwonlyargs {
        out.push(Param {
            name: p.parameter.name.as_str().to_string(),
            position: None,
            default: default_of(p.default.as_deref()),
        });
    }
    out
}

fn default_of(default: Option<&Expr>) -> ParamDefault {
    match default {
        None | Some(Expr::NoneLiteral(_)) => ParamDefault::Absent,
        Some(e) => str_literal(e).map_or(ParamDefault::Other, |s| ParamDefault::Literal(s.into())),
    }
}

fn arg_value(e: &Expr) -> ArgValue {
    match e {
        Expr::StringLiteral(s) => ArgValue::Str(s.value.to_str().to_string()),
        Expr::NoneLiteral(_) => ArgValue::None,
        Expr::Name(n) => ArgValue::Name(n.id.as_str().to_string()),
        _ => ArgValue::Other,
    }
}

fn args_of(arguments: &ast::Arguments) -> Vec<Arg> {
    let mut out = Vec::new();
    for (i, a) in arguments.args.iter().enumerate() {
        let key = if matches!(a, Expr::Starred(_)) {
            ArgKey::Star
        } else {
            ArgKey::Positional(i)
        };
        out.push(Arg {
            key,
            value: arg_value(a),
        });
    }
    for k in &arguments.keywords {
        let key = match &k.arg {
            Some(name) => ArgKey::Keyword(name.as_str().to_string()),
            None => ArgKey::Star,
        };
        out.push(Arg {
            key,
            value: arg_value(&k.value),
        });
    }
    out
}

impl<'a> Walker<'a> {
    fn line(&self, node: &impl Ranged) -> usize {
        self.lines.line(node.start())
    }

    /// Notes a name read by the current owner (allocated only the first
    /// time).
    fn add_ref(&mut self, name: &str) {
        let refs = match self.ctx.owner.and_then(|o| self.scope_refs.get_mut(o)) {
            Some(refs) => refs,
            None => &mut self.refs,
        };
        if !refs.contains(name) {
            refs.insert(name.to_string());
        }
    }

    fn module_locals(&self) -> &Locals {
        self.module_locals
            .get_or_init(|| assignments(self.module_body))
    }

    fn push_import(&mut self, imp: Import) {
        self.out.imports.push(imp);
    }

    fn import(
        &mut self,
        level: u32,
        module: String,
        names: Option<Vec<ImportedName>>,
        asname: Option<String>,
        line: usize,
    ) {
        let ctx = self.ctx;
        self.push_import(Import {
            level,
            module,
            names,
            asname,
            line,
            in_function: ctx.in_function,
            type_checking: ctx.type_checking,
            owner: ctx.owner,
        });
    }

    /// Classifies the value stored under an `"mzbuild"` key.
    fn classify(&self, value: &Expr) -> Value {
        if let Some(s) = str_literal(value) {
            return Value::Literal(s.to_string());
        }
        let Expr::Name(n) = value else {
            return Value::Unknown("the value is an expression, not a literal or a name".into());
        };
        let var = n.id.as_str();
        let (locals, param, init) = match self.funcs.last() {
            Some(f) => (f.locals(), f.has_param(var), f.init),
            None => (self.module_locals(), false, false),
        };
        let assigned = locals.get(var);
        let mut literals = Vec::new();
        for v in assigned.into_iter().flatten() {
            match v {
                Some(s) => literals.push(s.clone()),
                None => {
                    return Value::Unknown(format!(
                        "`{var}` is assigned a value that is not a literal"
                    ));
                }
            }
        }
        if param {
            return Value::Param {
                name: var.to_string(),
                init,
                literals,
            };
        }
        if literals.is_empty() {
            // Not local: a module-level constant of the file?
            let module: Vec<_> = self
                .module_locals()
                .get(var)
                .into_iter()
                .flatten()
                .collect();
            if !module.is_empty() && module.iter().all(|v| v.is_some()) {
                return Value::Local {
                    var: var.to_string(),
                    literals: module.into_iter().flatten().cloned().collect(),
                };
            }
            return Value::Unknown(format!("`{var}` is not a local variable holding literals"));
        }
        Value::Local {
            var: var.to_string(),
            literals,
        }
    }

    fn mzbuild(&mut self, value: &Expr, line: usize) {
        let v = MzbuildValue {
            line,
            value: self.classify(value),
        };
        match self.ctx.owner.and_then(|o| self.out.scopes.get_mut(o)) {
            Some(s) => s.mzbuild.push(v),
            None => self.out.mzbuild.push(v),
        }
    }

    fn function(&mut self, f: &'a ast::StmtFunctionDef) {
        for d in &f.decorator_list {
            self.visit_expr(&d.expression);
        }
        for p in f.parameters.iter_non_variadic_params() {
            if let Some(d) = &p.default {
                self.visit_expr(d);
            }
        }
        let outer = self.ctx;
        let top_level = outer.owner.is_none() && !outer.in_function;
        if top_level {
            self.scope_refs.push(FxHashSet::default());
            self.out.scopes.push(Scope {
                name: f.name.as_str().to_string(),
                kind: ScopeKind::Function,
                line: self.line(f),
                bases: Vec::new(),
                params: params_of(&f.parameters, false),
                mzbuild: Vec::new(),
                refs: Vec::new(),
                super_init_calls: Vec::new(),
                called: Vec::new(),
            });
            self.ctx.owner = Some(self.out.scopes.len() - 1);
        } else if let Some(o) = outer.owner
            && !outer.in_function
            && f.name.as_str() == "__init__"
            && let Some(scope) = self.out.scopes.get_mut(o)
            && scope.kind == ScopeKind::Class
        {
            scope.params = params_of(&f.parameters, true);
        }
        // Callers' arguments reach the parameters of a module-level function
        // and of a class's `__init__`.
        let init = top_level
            || (!outer.in_function
                && f.name.as_str() == "__init__"
                && outer
                    .owner
                    .and_then(|o| self.out.scopes.get(o))
                    .is_some_and(|s| s.kind == ScopeKind::Class));
        self.funcs.push(FuncCtx {
            parameters: &f.parameters,
            init,
            body: &f.body,
            locals: OnceCell::new(),
        });
        self.ctx.in_function = true;
        self.visit_body(&f.body);
        self.funcs.pop();
        self.ctx = outer;
    }

    fn class(&mut self, c: &'a ast::StmtClassDef) {
        for d in &c.decorator_list {
            self.visit_expr(&d.expression);
        }
        let bases: Vec<String> = c
            .arguments
            .as_ref()
            .map(|a| a.args.iter().filter_map(dotted).collect())
            .unwrap_or_default();
        if let Some(a) = &c.arguments {
            self.visit_arguments(a);
        }
        let outer = self.ctx;
        if outer.owner.is_none() && !outer.in_function {
            self.scope_refs.push(FxHashSet::default());
            self.out.scopes.push(Scope {
                name: c.name.as_str().to_string(),
                kind: ScopeKind::Class,
                line: self.line(c),
                bases,
                params: Vec::new(),
                mzbuild: Vec::new(),
                refs: Vec::new(),
                super_init_calls: Vec::new(),
                called: Vec::new(),
            });
            self.ctx.owner = Some(self.out.scopes.len() - 1);
        }
        // A class body runs where the class statement runs; only its methods
        // are deferred.
        let funcs = std::mem::take(&mut self.funcs);
        self.visit_body(&c.body);
        self.funcs = funcs;
        self.ctx = outer;
    }

    fn call(&mut self, call: &ast::ExprCall) {
        // Most calls have no use for their line: it is found when one does.
        let callee = dotted(&call.func);
        let first = call.arguments.args.first();
        if matches!(
            callee.as_deref(),
            Some("importlib.import_module" | "import_module" | "__import__")
        ) && let Some(arg) = first
        {
            match str_literal(arg) {
                Some(lit) => {
                    let level =
                        u32::try_from(lit.len() - lit.trim_start_matches('.').len()).unwrap_or(0);
                    let line = self.line(call);
                    self.import(
                        level,
                        lit.trim_start_matches('.').to_string(),
                        None,
                        None,
                        line,
                    );
                }
                None => {
                    let ctx = self.ctx;
                    let line = self.line(call);
                    self.out.dynamic_imports.push(DynamicImport {
                        line,
                        in_function: ctx.in_function,
                        type_checking: ctx.type_checking,
                    });
                }
            }
        }
        if let Expr::Attribute(a) = &*call.func
            && a.attr.as_str() == "__init__"
            && let Expr::Call(inner) = &*a.value
            && dotted(&inner.func).as_deref() == Some("super")
            && let Some(o) = self.ctx.owner
            && let Some(scope) = self.out.scopes.get_mut(o)
        {
            scope.super_init_calls.push(args_of(&call.arguments));
        }
        if let Some(callee) = &callee {
            if !self.ctx.in_function && !self.out.load_calls.contains(callee) {
                self.out.load_calls.push(callee.clone());
            }
            if let Some(scope) = self.ctx.owner.and_then(|o| self.out.scopes.get_mut(o))
                && !scope.called.contains(callee)
            {
                scope.called.push(callee.clone());
            }
        }
        if let Some(callee) = callee
            && self.keep_calls
            && !call.arguments.is_empty()
        {
            let line = self.line(call);
            self.out.calls.push(Call {
                callee,
                line,
                owner: self.ctx.owner,
                args: args_of(&call.arguments),
            });
        }
    }
}

impl<'a> Visitor<'a> for Walker<'a> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Import(i) => {
                let line = self.line(i);
                for a in &i.names {
                    self.import(
                        0,
                        a.name.as_str().to_string(),
                        None,
                        a.asname.as_ref().map(|n| n.as_str().to_string()),
                        line,
                    );
                }
            }
            Stmt::ImportFrom(i) => {
                let line = self.line(i);
                let names = i
                    .names
                    .iter()
                    .map(|a| ImportedName {
                        name: a.name.as_str().to_string(),
                        asname: a.asname.as_ref().map(|n| n.as_str().to_string()),
                    })
                    .collect();
                let module = i
                    .module
                    .as_ref()
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default();
                self.import(i.level, module, Some(names), None, line);
            }
            Stmt::FunctionDef(f) => self.function(f),
            Stmt::ClassDef(c) => self.class(c),
            Stmt::If(i) if is_type_checking(&i.test) => {
                let outer = self.ctx;
                self.ctx.type_checking = true;
                self.visit_body(&i.body);
                self.ctx = outer;
                for clause in &i.elif_else_clauses {
                    if let Some(t) = &clause.test {
                        self.visit_expr(t);
                    }
                    self.visit_body(&clause.body);
                }
            }
            Stmt::Assign(a) => {
                let module_level = self.ctx.owner.is_none() && !self.ctx.in_function;
                if module_level && let [Expr::Name(target)] = a.targets.as_slice() {
                    let call = matches!(&*a.value, Expr::Call(_));
                    let target_expr = match &*a.value {
                        Expr::Call(c) => &*c.func,
                        other => other,
                    };
                    if let Some(t) = dotted(target_expr) {
                        let line = self.line(a);
                        self.out.aliases.push(Alias {
                            name: target.id.as_str().to_string(),
                            target: t,
                            call,
                            line,
                        });
                    }
                }
                for t in &a.targets {
                    if let Expr::Subscript(s) = t
                        && str_literal(&s.slice) == Some("mzbuild")
                    {
                        let line = self.line(a);
                        self.mzbuild(&a.value, line);
                    }
                }
                visitor::walk_stmt(self, stmt);
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }

    fn visit_annotation(&mut self, _expr: &'a Expr) {
        // Annotations do not create services; `from __future__ import
        // annotations` makes them mere strings anyway.
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Name(n) => {
                if matches!(n.ctx, ast::ExprContext::Load) {
                    self.add_ref(n.id.as_str());
                }
            }
            Expr::Attribute(a) => {
                let mut name = std::mem::take(&mut self.scratch);
                name.clear();
                if matches!(a.ctx, ast::ExprContext::Load) && dotted_into(expr, &mut name) {
                    self.add_ref(&name);
                } else {
                    visitor::walk_expr(self, expr);
                }
                self.scratch = name;
            }
            Expr::Call(c) => {
                self.call(c);
                visitor::walk_expr(self, expr);
            }
            Expr::Dict(d) => {
                for item in &d.items {
                    if let Some(k) = &item.key
                        && str_literal(k) == Some("mzbuild")
                    {
                        let line = self.line(k);
                        self.mzbuild(&item.value, line);
                    }
                }
                visitor::walk_expr(self, expr);
            }
            _ => visitor::walk_expr(self, expr),
        }
    }
}
