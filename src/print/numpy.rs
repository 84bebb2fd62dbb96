//! NumPy code generation (SPEC §5): self-contained Python that defines `value(...)` and
//! `derivative(...)` from the compute form, with every repeated subexpression computed
//! once. Column and row vectors are 1-D arrays and scalars are floats, so products are
//! chosen by shape: `np.outer` for a column times a row, `@` otherwise.
//!
//! The same printer writes the code over `jax.numpy` (`--format jax`) and over `torch`
//! tensors (`--format torch`), a [`Backend`] apart. Every choice the shapes dictate is
//! made here, at generation time, so the generated functions never branch on shapes in
//! Python and `jax.jit` traces them as they are. A derivative module also defines
//! `value_and_derivative(...)` (one pass, shared subexpressions computed once), checks its
//! inputs' shapes against `SHAPES`, and carries `random_inputs(seed)` and a
//! `check_gradient()` self-test: finite differences for NumPy, automatic differentiation
//! for JAX and PyTorch.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use num_traits::One;

use crate::diff::DerivativeKind;
use crate::expr::{Dim, Expr, ExprKind, Interner, Shape, Symbol};
use crate::print::ascii_name;
use crate::session::{DerivativeResult, Options, Session, SimplifyResult};
use crate::shape::Typed;

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "np",
];

/// The Python name of a matcalc symbol: its ASCII name, a keyword with a trailing `_`.
pub fn python_name(symbol: &str) -> String {
    let name: String = ascii_name(symbol)
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() {
                character
            } else {
                '_'
            }
        })
        .collect();
    if PYTHON_KEYWORDS.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

/// The array library generated code is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `numpy`, as `np`: `--format numpy`.
    Numpy,
    /// `jax.numpy`, as `jnp`, traceable by `jax.jit`: `--format jax`.
    Jax,
    /// `torch` tensors: `--format torch`.
    Torch,
}

impl Backend {
    /// The name the generated code calls the library by.
    fn np(self) -> &'static str {
        match self {
            Backend::Numpy => "np",
            Backend::Jax => "jnp",
            Backend::Torch => "torch",
        }
    }

    fn imports(self) -> &'static str {
        match self {
            Backend::Numpy => "import numpy as np\n",
            Backend::Jax => "import jax\nimport jax.numpy as jnp\n",
            Backend::Torch => "import torch\n",
        }
    }

    /// Helpers every module of this backend defines: `_shape`, and for torch the dtype
    /// and device that constants take from the inputs.
    fn helpers(self) -> &'static str {
        match self {
            Backend::Numpy => "_shape = np.shape\n\n\n",
            Backend::Jax => "_shape = jnp.shape\n\n\n",
            Backend::Torch => concat!(
                "def _shape(x):\n    return tuple(x.shape)\n\n\n",
                "def _options(*inputs):\n",
                "    \"\"\"The dtype and device of the first tensor input (float64 without one).\"\"\"\n",
                "    for x in inputs:\n",
                "        if isinstance(x, torch.Tensor) and x.is_floating_point():\n",
                "            return {\"dtype\": x.dtype, \"device\": x.device}\n",
                "    return {\"dtype\": torch.float64}\n\n\n",
            ),
        }
    }

    /// The self-test's backend half: how it draws inputs and what it compares with.
    fn checks(self) -> &'static str {
        match self {
            Backend::Numpy => include_str!("python/checks_numpy.py"),
            // The autodiff backends share how they call their reference.
            Backend::Jax => concat!(
                include_str!("python/checks_jax.py"),
                include_str!("python/checks_autodiff.py")
            ),
            Backend::Torch => concat!(
                include_str!("python/checks_torch.py"),
                include_str!("python/checks_autodiff.py")
            ),
        }
    }

    fn reference_text(self) -> &'static str {
        match self {
            Backend::Numpy => "central finite differences",
            Backend::Jax => "jax.grad, jax.jacfwd, jax.hessian and jax.jvp",
            Backend::Torch => "torch.func.grad, jacfwd, hessian and jvp",
        }
    }

    fn tolerance_text(self) -> &'static str {
        match self {
            Backend::Numpy => "1e-6, 1e-5 for second derivatives",
            Backend::Jax | Backend::Torch => "1e-8 in float64, 1e-3 in float32",
        }
    }

    /// Keyword arguments that give a constant the inputs' dtype and device.
    fn like(self) -> &'static str {
        match self {
            Backend::Torch => ", **_like",
            _ => "",
        }
    }

    /// An array of `dims` filled with `value`.
    fn full(self, dims: &[String], value: &str) -> String {
        let np = self.np();
        let like = self.like();
        match (self, dims) {
            (Backend::Torch, [n]) => format!("torch.full(({n},), {value}{like})"),
            (_, [n]) => format!("{np}.full({n}, {value}{like})"),
            (_, dims) => format!("{np}.full(({}), {value}{like})", dims.join(", ")),
        }
    }
}

/// A module with `value` and `derivative` for the derivatives of `text`, read within
/// the limits of `options`.
pub fn derivative_module(
    session: &Session,
    text: &str,
    results: &[DerivativeResult],
    options: &Options,
    backend: Backend,
) -> Result<String, String> {
    let typed = session
        .typed_with(text, options)
        .map_err(|error| error.to_string())?;
    derivative_source(text, &typed, results, backend)
}

/// A module with `value`, `derivative`, `value_and_derivative`, `random_inputs` and
/// `check_gradient` for `results`, derivatives of `typed` (the expression `text` with its
/// definitions expanded, shape-checked).
pub fn derivative_source(
    text: &str,
    typed: &Typed,
    results: &[DerivativeResult],
    backend: Backend,
) -> Result<String, String> {
    let printer = Printer { typed, backend };
    let mut module = header(text, typed, backend);
    module += "# What `derivative` returns, in order: (variable, kind).\nDERIVATIVES = [";
    let listed: Vec<String> = results
        .iter()
        .map(|result| {
            format!(
                "(\"{}\", \"{}\")",
                python_name(&result.wrt),
                crate::session::kind_name(result.kind)
            )
        })
        .collect();
    module += &listed.join(", ");
    module += "]\n\n\n";
    module += &printer.function(
        "value",
        std::slice::from_ref(&typed.expr),
        &[],
        None,
        Returns::Each,
    )?;
    module += "\n\n";
    let mut exprs = Vec::new();
    let mut extra_params = Vec::new();
    for result in results {
        let body = result.form.compute_expanded();
        if matches!(
            result.kind,
            DerivativeKind::Differential | DerivativeKind::SecondDifferential
        ) {
            extra_params.push(format!("d{}", python_name(&result.wrt)));
        }
        exprs.push(body);
    }
    let doc = results
        .iter()
        .map(|result| {
            format!(
                "{} = {}",
                result.lhs(crate::print::Style::Ascii),
                result.form.render(crate::print::Style::Ascii)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    module += &printer.function(
        "derivative",
        &exprs,
        &extra_params,
        Some(&doc),
        Returns::Each,
    )?;
    module += "\n\n";
    let mut both = vec![typed.expr.clone()];
    both.extend(exprs);
    module += &printer.function(
        "value_and_derivative",
        &both,
        &extra_params,
        Some("value(...) and derivative(...) in one pass, sharing what they have in common"),
        Returns::ValueAnd,
    )?;
    module += &backend
        .checks()
        .replace("_REFERENCE_TEXT", backend.reference_text());
    module += &include_str!("python/checks.py")
        .replace("_REFERENCE_TEXT", backend.reference_text())
        .replace("_TOLERANCE_TEXT", backend.tolerance_text());
    Ok(module)
}

/// A module with `value` for a simplified expression, read within the limits of
/// `options`.
pub fn value_module(
    session: &Session,
    text: &str,
    result: &SimplifyResult,
    options: &Options,
    backend: Backend,
) -> Result<String, String> {
    let typed = session
        .typed_with(text, options)
        .map_err(|error| error.to_string())?;
    value_source(text, &typed, result, backend)
}

/// A module with `value` for `result`, the simplification of `typed` (the expression
/// `text` with its definitions expanded, shape-checked).
pub fn value_source(
    text: &str,
    typed: &Typed,
    result: &SimplifyResult,
    backend: Backend,
) -> Result<String, String> {
    let body = result.form.compute_expanded();
    let mut module = header(text, typed, backend);
    module += &Printer { typed, backend }.function("value", &[body], &[], None, Returns::Each)?;
    Ok(module)
}

fn header(text: &str, typed: &Typed, backend: Backend) -> String {
    let mut out = format!(
        "\"\"\"Generated by matcalc from: {}\"\"\"\n{}\n",
        text.replace('\\', "\\\\").replace('"', "'"),
        backend.imports()
    );
    out += "# Shapes of the inputs: sizes by name; () is a scalar, (n,) a vector.\nSHAPES = {";
    let entries: Vec<String> = typed
        .vars
        .iter()
        .filter(|(name, _)| typed.expr.mentions(name))
        .map(|(name, decl)| format!("\"{}\": {}", python_name(name), shape_tuple(&decl.shape)))
        .collect();
    out += &entries.join(", ");
    out += "}\nSYMMETRIC = [";
    let symmetric: Vec<String> = typed
        .vars
        .iter()
        .filter(|(name, decl)| decl.props.symmetric && typed.expr.mentions(name))
        .map(|(name, decl)| {
            format!(
                "(\"{}\", {})",
                python_name(name),
                if decl.props.positive_definite {
                    "True"
                } else {
                    "False"
                }
            )
        })
        .collect();
    out += &symmetric.join(", ");
    out +=
        "]\n# Sizes no input fixes: `value` and `derivative` take each as `size_NAME`.\nSIZES = [";
    let sizes: Vec<String> = unbound_sizes(typed)
        .iter()
        .map(|size| format!("\"{}\"", python_name(size)))
        .collect();
    out += &sizes.join(", ");
    out += "]\n\n\n";
    out += backend.helpers();
    out += &format!(
        "def _sigma(z):\n    return 0.5 * (1.0 + {}.tanh(0.5 * z))\n\n\n",
        backend.np()
    );
    out += CHECK_SHAPES;
    out
}

/// Every generated function checks its inputs first, so that a wrong shape is a clear
/// error rather than a broadcast. Shapes are static under `jax.jit`: this runs while
/// tracing, never on values.
const CHECK_SHAPES: &str = r#"def _check_shapes(**inputs):
    """Raises ValueError unless every input has the shape SHAPES gives it, each size the
    same wherever it occurs."""
    sizes = {}
    for name, x in inputs.items():
        shape, expected = tuple(_shape(x)), SHAPES[name]
        if len(shape) != len(expected):
            raise ValueError(f"{name} has shape {shape}; matcalc's {name} has shape {expected}")
        for dim, size in zip(expected, shape):
            known = int(dim) if dim.isdigit() else sizes.setdefault(dim, size)
            if size != known:
                raise ValueError(f"{name} has shape {shape}, but {dim} is {known} elsewhere")


"#;

/// How a generated function returns its bodies' values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Returns {
    /// One value, or a tuple of them.
    Each,
    /// The first is the value, the others the derivatives: `(v, d)` or `(v, (d₁, d₂))`.
    ValueAnd,
}

/// Writes the functions of one module.
struct Printer<'a> {
    typed: &'a Typed,
    backend: Backend,
}

fn shape_tuple(shape: &Shape) -> String {
    let dim = |dim: &Dim| format!("\"{dim}\"");
    if shape.is_scalar() {
        "()".into()
    } else if shape.cols.is_one() {
        format!("({},)", dim(&shape.rows))
    } else if shape.rows.is_one() {
        format!("({},)", dim(&shape.cols))
    } else {
        format!("({}, {})", dim(&shape.rows), dim(&shape.cols))
    }
}

impl Printer<'_> {
    fn function(
        &self,
        name: &str,
        bodies: &[Expr],
        extra_params: &[String],
        doc: Option<&str>,
        returns: Returns,
    ) -> Result<String, String> {
        let typed = self.typed;
        let mut params: BTreeSet<String> = typed
            .expr
            .free_vars()
            .iter()
            .map(|symbol| python_name(symbol))
            .collect();
        let mut fns = BTreeSet::new();
        collect_fns(&typed.expr, &mut fns);
        for body in bodies {
            collect_fns(body, &mut fns);
        }
        for function_name in &fns {
            params.insert(python_name(function_name));
            params.insert(format!("grad_{}", python_name(function_name)));
        }
        let mut params: Vec<String> = params.into_iter().collect();
        params.extend(extra_params.iter().cloned());
        // A size no input has (`n` in `log|βI|`) is a parameter of its own: `size_n`.
        params.extend(unbound_sizes(typed).iter().map(|size| size_name(size)));
        let mut out = format!("def {name}({}):\n", params.join(", "));
        if let Some(doc) = doc {
            out += &format!(
                "    \"\"\"{}\"\"\"\n",
                doc.replace('\\', "\\\\").replace('"', "'")
            );
        }
        out += &self.prologue(extra_params);
        let mut emitter = Emitter::new(typed, self.backend);
        out += &emitter.size_bindings(bodies);
        for body in bodies {
            emitter.count(body);
        }
        let results = bodies
            .iter()
            .map(|body| emitter.emit(body))
            .collect::<Result<Vec<_>, _>>()?;
        out += &emitter.lines;
        let returned = match (returns, results.as_slice()) {
            (Returns::Each, [one]) => one.clone(),
            (Returns::Each, all) => format!("({},)", all.join(", ")),
            (Returns::ValueAnd, [value, one]) => format!("({value}, {one})"),
            (Returns::ValueAnd, [value, rest @ ..]) => format!("({value}, ({},))", rest.join(", ")),
            (Returns::ValueAnd, []) => return Err("internal error: no value".into()),
        };
        out += &format!("    return {returned}\n");
        Ok(out)
    }

    /// The first statements of a function: torch turns its inputs into tensors of one
    /// dtype and device; every backend checks the input shapes.
    fn prologue(&self, extra_params: &[String]) -> String {
        let mut inputs: Vec<String> = self
            .typed
            .vars
            .keys()
            .filter(|name| self.typed.expr.mentions(name))
            .map(|name| python_name(name))
            .collect();
        let mut out = String::new();
        if self.backend == Backend::Torch {
            let mut tensors = inputs.clone();
            tensors.extend(extra_params.iter().cloned());
            if !tensors.is_empty() {
                out += &format!("    _like = _options({})\n", tensors.join(", "));
                for name in &tensors {
                    out += &format!("    {name} = torch.as_tensor({name}, **_like)\n");
                }
            } else {
                out += "    _like = _options()\n";
            }
        }
        inputs.retain(|name| !name.is_empty());
        if !inputs.is_empty() {
            let checks: Vec<String> = inputs.iter().map(|name| format!("{name}={name}")).collect();
            out += &format!("    _check_shapes({})\n", checks.join(", "));
        }
        out
    }
}

fn collect_fns(expr: &Expr, fns: &mut BTreeSet<Symbol>) {
    for node in expr.distinct_nodes() {
        if let ExprKind::Apply(name, _) | ExprKind::Grad(name, _) = &node.kind {
            fns.insert(name.clone());
        }
    }
}

/// Emits Python statements for an expression DAG, one temporary per repeated subtree.
/// Subtrees are identified by an [`Interner`], so two are one temporary only when their
/// structure and their shapes agree (`np.ones(m)` is never `np.ones(n)`).
struct Emitter<'a> {
    typed: &'a Typed,
    backend: Backend,
    lines: String,
    interner: Interner,
    names: HashMap<usize, String>,
    counts: HashMap<usize, usize>,
    next_temp: usize,
}

impl<'a> Emitter<'a> {
    fn new(typed: &'a Typed, backend: Backend) -> Emitter<'a> {
        Emitter {
            typed,
            backend,
            lines: String::new(),
            interner: Interner::new(),
            names: HashMap::new(),
            counts: HashMap::new(),
            next_temp: 0,
        }
    }

    /// Binds every size symbol the bodies need to the shape of an input that has it;
    /// the others are parameters of the function ([`unbound_sizes`]).
    fn size_bindings(&mut self, bodies: &[Expr]) -> String {
        let mut needed = BTreeSet::new();
        for body in bodies {
            collect_sizes(body, &mut needed);
        }
        let mut out = String::new();
        for size in needed {
            if let Some(source) = size_source(self.typed, &size, self.backend) {
                out += &format!("    {} = {source}\n", size_name(&size));
            }
        }
        out
    }

    /// How often each distinct subtree occurs in the trees `root` unfolds to, counting
    /// below a subtree only at its first occurrence (the others reuse its temporary).
    /// Every body of a function is counted before any is emitted, so that a subtree two
    /// bodies share is one temporary.
    fn count(&mut self, root: &Expr) {
        let mut stack: Vec<&Expr> = vec![root];
        while let Some(node) = stack.pop() {
            let id = self.interner.id(node);
            let seen = self.counts.entry(id).or_insert(0);
            *seen += 1;
            if *seen == 1 {
                stack.extend(node.children().into_iter().map(|c| c.as_ref()));
            }
        }
    }

    fn emit(&mut self, expr: &Expr) -> Result<String, String> {
        let id = self.interner.id(expr);
        if let Some(name) = self.names.get(&id) {
            return Ok(name.clone());
        }
        let code = self.emit_node(expr)?;
        let repeated = self.counts.get(&id).copied().unwrap_or(0) > 1;
        // Long inline code is named too, so that no line grows with the input.
        if (repeated || code.len() > 200) && !expr.children().is_empty() {
            let name = format!("t{}", self.next_temp);
            self.next_temp += 1;
            self.lines += &format!("    {name} = {code}\n");
            self.names.insert(id, name.clone());
            Ok(name)
        } else {
            Ok(code)
        }
    }

    fn emit_node(&mut self, expr: &Expr) -> Result<String, String> {
        use ExprKind::*;
        let shape = &expr.shape;
        let backend = self.backend;
        let np = backend.np();
        let like = backend.like();
        Ok(match &expr.kind {
            Num(q) => {
                let value = if q.denom().is_one() {
                    format!("{}.0", q.numer())
                } else {
                    format!("({}.0 / {}.0)", q.numer(), q.denom())
                };
                if shape.is_scalar() {
                    value
                } else if shape.cols.is_one() {
                    backend.full(&[dim_code(&shape.rows)?], &value)
                } else if shape.rows.is_one() {
                    backend.full(&[dim_code(&shape.cols)?], &value)
                } else {
                    backend.full(&[dim_code(&shape.rows)?, dim_code(&shape.cols)?], &value)
                }
            }
            Var(name) => python_name(name),
            // The size as a float, like every other scalar the functions compute.
            Size(name) => format!("float({})", size_name(name)),
            Differential(name) => format!("d{}", python_name(name)),
            Identity => format!("{np}.eye({}{like})", dim_code(&shape.rows)?),
            Ones => format!("{np}.ones({}{like})", dim_code(&shape.rows)?),
            Neg(a) => format!("(-{})", self.emit(a)?),
            Add(a, b) => format!("({} + {})", self.emit(a)?, self.emit(b)?),
            Sub(a, b) => format!("({} - {})", self.emit(a)?, self.emit(b)?),
            Div(a, b) => format!("({} / {})", self.emit(a)?, self.emit(b)?),
            Hadamard(a, b) => format!("({} * {})", self.emit(a)?, self.emit(b)?),
            // A diagonal matrix times a matrix scales its rows (columns, on the right):
            // O(mn), where np.diag would build n×n and multiply densely.
            Mul(a, b) if diagonal_of_vector(a).is_some() && !b.shape.is_scalar() => {
                let v = self.emit(diagonal_of_vector(a).unwrap_or(a))?;
                let right = self.emit(b)?;
                if b.shape.cols.is_one() {
                    format!("({v} * {right})")
                } else {
                    format!("({v}[:, None] * {right})")
                }
            }
            Mul(a, b) if diagonal_of_vector(b).is_some() && !a.shape.is_scalar() => {
                let left = self.emit(a)?;
                let v = self.emit(diagonal_of_vector(b).unwrap_or(b))?;
                if a.shape.rows.is_one() {
                    format!("({left} * {v})")
                } else {
                    format!("({left} * {v}[None, :])")
                }
            }
            Mul(a, b) => {
                let (left, right) = (self.emit(a)?, self.emit(b)?);
                if a.shape.is_scalar() || b.shape.is_scalar() {
                    format!("({left} * {right})")
                } else if a.shape.cols.is_one() && b.shape.rows.is_one() {
                    // A column times a row: 1-D arrays need an explicit outer product.
                    format!("{np}.outer({left}, {right})")
                } else {
                    format!("({left} @ {right})")
                }
            }
            Transpose(a) => {
                let inner = self.emit(a)?;
                if a.shape.rows.is_one() || a.shape.cols.is_one() {
                    inner
                } else {
                    format!("{inner}.T")
                }
            }
            Inverse(a) => {
                let inner = self.emit(a)?;
                if a.shape.is_scalar() {
                    format!("(1.0 / {inner})")
                } else {
                    format!("{np}.linalg.inv({inner})")
                }
            }
            Pow(a, k) => {
                let inner = self.emit(a)?;
                if a.shape.is_scalar() {
                    format!("({inner} ** {k})")
                } else if *k < 0 {
                    format!("{np}.linalg.matrix_power({np}.linalg.inv({inner}), {})", -k)
                } else {
                    format!("{np}.linalg.matrix_power({inner}, {k})")
                }
            }
            Trace(a) => scalar_or(a, self.emit(a)?, &format!("{np}.trace")),
            Det(a) => scalar_or(a, self.emit(a)?, &format!("{np}.linalg.det")),
            LogDet(a) => {
                let inner = self.emit(a)?;
                if a.shape.is_scalar() {
                    format!("{np}.log({inner})")
                } else {
                    format!("{np}.linalg.slogdet({inner})[1]")
                }
            }
            NormSq(a) => format!("{np}.sum({np}.square({}))", self.emit(a)?),
            Diag(a) => format!("{np}.diag({})", self.emit(a)?),
            Sum(a) => format!("{np}.sum({})", self.emit(a)?),
            Func(function, a) => {
                let z = self.emit(a)?;
                match function {
                    crate::expr::Func::Sigma => format!("_sigma({z})"),
                    crate::expr::Func::Exp => format!("{np}.exp({z})"),
                    crate::expr::Func::Log => format!("{np}.log({z})"),
                    crate::expr::Func::Tanh => format!("{np}.tanh({z})"),
                    crate::expr::Func::Swish => format!("({z} * _sigma({z}))"),
                    // torch's maximum, logaddexp and heaviside take tensors, not floats.
                    crate::expr::Func::Relu if backend == Backend::Torch => {
                        format!("torch.clamp({z}, min=0.0)")
                    }
                    crate::expr::Func::Relu => format!("{np}.maximum({z}, 0.0)"),
                    crate::expr::Func::Softplus if backend == Backend::Torch => {
                        format!("torch.logaddexp(torch.zeros_like({z}), {z})")
                    }
                    crate::expr::Func::Softplus => format!("{np}.logaddexp(0.0, {z})"),
                    crate::expr::Func::Sqrt => format!("{np}.sqrt({z})"),
                    crate::expr::Func::Step if backend == Backend::Torch => {
                        format!("({z} > 0).to({z}.dtype)")
                    }
                    crate::expr::Func::Step => format!("{np}.heaviside({z}, 0.0)"),
                    crate::expr::Func::Sin => format!("{np}.sin({z})"),
                    crate::expr::Func::Cos => format!("{np}.cos({z})"),
                    crate::expr::Func::Tan => format!("{np}.tan({z})"),
                    crate::expr::Func::Arcsin => format!("{np}.arcsin({z})"),
                    crate::expr::Func::Arccos => format!("{np}.arccos({z})"),
                    crate::expr::Func::Arctan => format!("{np}.arctan({z})"),
                    crate::expr::Func::Sinh => format!("{np}.sinh({z})"),
                    crate::expr::Func::Cosh => format!("{np}.cosh({z})"),
                    crate::expr::Func::Abs => format!("{np}.abs({z})"),
                    crate::expr::Func::Sign => format!("{np}.sign({z})"),
                }
            }
            Apply(name, a) => format!("{}({})", python_name(name), self.emit(a)?),
            Grad(name, a) => format!("grad_{}({})", python_name(name), self.emit(a)?),
            Kron(a, b) => {
                let (left, right) = (self.emit(a)?, self.emit(b)?);
                if a.shape.is_scalar() || b.shape.is_scalar() {
                    format!("({left} * {right})")
                } else {
                    // Vectors are 1-D arrays: np.kron needs them as columns or rows.
                    let product =
                        format!("{np}.kron({}, {})", as_2d(np, a, left), as_2d(np, b, right));
                    if shape.rows.is_one() || shape.cols.is_one() {
                        format!("{np}.ravel({product})")
                    } else {
                        product
                    }
                }
            }
            // vec stacks columns: Fortran order.
            Vectorize(a) => {
                let inner = self.emit(a)?;
                if a.shape.rows.is_one() || a.shape.cols.is_one() {
                    inner
                } else if backend == Backend::Torch {
                    // Columns stacked: the rows of the transpose, one after another.
                    format!("{inner}.T.reshape(-1)")
                } else {
                    format!("{np}.ravel({inner}, order=\"F\")")
                }
            }
            // K vec(A) = vec(Aᵀ): the rows of I permuted, row j + i·n being row i + j·m.
            Commutation(m, n) => {
                let (m, n) = (dim_code(m)?, dim_code(n)?);
                if backend == Backend::Torch {
                    format!(
                        "torch.eye({m} * {n}{like})[torch.arange({m} * {n}).reshape(({n}, {m})).T.reshape(-1)]"
                    )
                } else {
                    format!(
                        "{np}.eye({m} * {n})[{np}.arange({m} * {n}).reshape(({m}, {n}), order=\"F\").ravel()]"
                    )
                }
            }
            Norm(a, crate::expr::NormKind::Two) => format!("{np}.linalg.norm({})", self.emit(a)?),
            Norm(a, crate::expr::NormKind::One) => {
                format!("{np}.sum({np}.abs({}))", self.emit(a)?)
            }
            ElemDiv(a, b) => format!("({} / {})", self.emit(a)?, self.emit(b)?),
            ElemPow(a, q) => {
                let exponent = if q.is_integer() {
                    q.numer().to_string()
                } else {
                    format!("({} / {})", q.numer(), q.denom())
                };
                format!("({} ** {exponent})", self.emit(a)?)
            }
            PowSym(a, k, offset) => {
                let inner = self.emit(a)?;
                let exponent = match offset {
                    0 => format!("int({})", python_name(k)),
                    o if *o > 0 => format!("int({} + {o})", python_name(k)),
                    o => format!("int({} - {})", python_name(k), -o),
                };
                if a.shape.is_scalar() {
                    format!("({inner} ** {exponent})")
                } else {
                    format!("{np}.linalg.matrix_power({inner}, {exponent})")
                }
            }
            // The shift by the maximum keeps exp finite; the lambda evaluates z once. Only
            // max, exp, log and sum, which numpy, jax.numpy and torch all have.
            Softmax(a) => format!(
                "(lambda t: {np}.exp(t - {np}.max(t)) / {np}.sum({np}.exp(t - {np}.max(t))))({})",
                self.emit(a)?
            ),
            Written(a, _) => self.emit(a)?,
            LogSumExp(a) => format!(
                "(lambda t: {np}.max(t) + {np}.log({np}.sum({np}.exp(t - {np}.max(t)))))({})",
                self.emit(a)?
            ),
        })
    }
}

/// A value as a 2-D array for `np.kron`: a column vector `(n, 1)`, a row `(1, n)`.
fn as_2d(np: &str, expr: &Expr, code: String) -> String {
    if expr.shape.cols.is_one() {
        format!("{np}.reshape({code}, (-1, 1))")
    } else if expr.shape.rows.is_one() {
        format!("{np}.reshape({code}, (1, -1))")
    } else {
        code
    }
}

fn scalar_or(argument: &Rc<Expr>, code: String, function: &str) -> String {
    if argument.shape.is_scalar() {
        code
    } else {
        format!("{function}({code})")
    }
}

/// Where a program reads the size `size` from: an axis of an input that has it.
fn size_source(typed: &Typed, size: &str, backend: Backend) -> Option<String> {
    typed.vars.iter().find_map(|(name, decl)| {
        if !typed.expr.mentions(name) {
            return None;
        }
        let shape = &decl.shape;
        let size = Dim::Sym(size.into());
        let axis = if shape.rows == size {
            0
        } else if shape.cols == size {
            if shape.rows.is_one() {
                0
            } else {
                1
            }
        } else {
            return None;
        };
        Some(match backend {
            Backend::Torch => format!("{}.shape[{axis}]", python_name(name)),
            backend => format!("{}.shape({})[{axis}]", backend.np(), python_name(name)),
        })
    })
}

/// The size symbols of `typed` that no input of the program fixes (`n` in `log|βI|`,
/// whose only input is the scalar β), sorted. `value` and `derivative` both take each as
/// a parameter `size_NAME`, so that both compute with the same sizes.
pub fn unbound_sizes(typed: &Typed) -> Vec<Symbol> {
    let mut sizes = BTreeSet::new();
    collect_sizes_of_every_node(&typed.expr, &mut sizes);
    sizes
        .into_iter()
        .filter(|size| size_source(typed, size, Backend::Numpy).is_none())
        .collect()
}

fn size_name(size: &str) -> String {
    format!("size_{}", python_name(size))
}

fn dim_code(dim: &Dim) -> Result<String, String> {
    match dim {
        Dim::Known(n) => Ok(n.to_string()),
        Dim::Sym(name) => Ok(size_name(name)),
        Dim::Product(factors) => {
            let codes = factors
                .iter()
                .map(dim_code)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(format!("({})", codes.join(" * ")))
        }
        Dim::Unknown => Err("internal error: a size was not inferred".into()),
    }
}

/// The size symbols of every node's shape, and of every size used as a value.
fn collect_sizes_of_every_node(expr: &Expr, sizes: &mut BTreeSet<String>) {
    for node in expr.distinct_nodes() {
        if let ExprKind::Size(name) = &node.kind {
            sizes.insert(name.to_string());
        }
        for dim in [&node.shape.rows, &node.shape.cols] {
            for name in dim.symbols() {
                sizes.insert(name.to_string());
            }
        }
    }
}

/// The size symbols a body's code needs bound: those of the shapes its constants are
/// built with, and the sizes it uses as values.
fn collect_sizes(expr: &Expr, sizes: &mut BTreeSet<String>) {
    for node in expr.distinct_nodes() {
        if let ExprKind::Size(name) = &node.kind {
            sizes.insert(name.to_string());
        }
        if matches!(
            node.kind,
            ExprKind::Identity | ExprKind::Ones | ExprKind::Num(_) | ExprKind::Commutation(..)
        ) {
            for dim in [&node.shape.rows, &node.shape.cols] {
                for name in dim.symbols() {
                    sizes.insert(name.to_string());
                }
            }
        }
    }
}

/// `v` if `e` is `diag(v)` of a vector `v` (an n×n diagonal matrix, n not 1).
fn diagonal_of_vector(e: &Expr) -> Option<&Expr> {
    match &e.kind {
        ExprKind::Diag(v) if v.shape.cols.is_one() && !v.shape.rows.is_one() => Some(v),
        _ => None,
    }
}
