//! The rewrite rules, as data: one table per family, each row `name`, `lhs`, direction,
//! `rhs` and guards, with the identity it states as a trailing comment.
//!
//! Guards read e-class facts from [`super::analysis`] only (`is_scalar`, `is_symmetric`,
//! `is_square`, equal shapes), never the syntactic absence of something, which a later
//! merge could invalidate. On top of its own guards every rule is shape-guarded: it
//! fires only where its right-hand side is well typed and has the shape of the matched
//! class, so no rule can change a shape (broadcasting would otherwise let `0·A → 0` turn
//! a matrix into a scalar). Values are the guards' business; `tests/rules_preserve_value.rs`
//! checks every rule of [`all_rules`] on random instances.

use std::collections::HashMap;
use std::mem::Discriminant;

use egg::{
    Applier, ENodeOrVar, Id, Pattern, PatternAst, Rewrite as EggRewrite, Subst, Symbol, Var,
};

use super::analysis::{node_shape, EGraph, MatAnalysis, MatchKey};
use super::lang::{DimLeaf, Mat};
use crate::expr::{Dim, Shape};

/// A rewrite over [`Mat`] with [`MatAnalysis`].
pub type Rewrite = EggRewrite<Mat, MatAnalysis>;

/// A fact a rule requires of the classes its pattern variables match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The class is `1×1`.
    Scalar(&'static str),
    /// The class is not `1×1`.
    NotScalar(&'static str),
    /// The class is a column vector (`n×1`, `n` possibly 1).
    Vector(&'static str),
    /// The class is square.
    Square(&'static str),
    /// The class is symmetric (every scalar is).
    Symmetric(&'static str),
    /// The two classes have the same shape.
    SameShape(&'static str, &'static str),
    /// Binds the size variable (first) to the number of rows of the class (second), for
    /// right-hand sides that build an `I` or a `ones`.
    RowsOf(&'static str, &'static str),
    /// Binds the size variable (first) to the number of columns of the class (second).
    ColsOf(&'static str, &'static str),
    /// Binds the size variable (first) to the product of two sizes (second, third): size
    /// leaves, or the numbers of rows of classes. The size of `Iₘ ⊗ Iₙ`.
    RowsOfKron(&'static str, &'static str, &'static str),
    /// Binds the variable (first) to the number of rows of the class (second) as an
    /// integer constant, for exponents such as det(A ⊗ B) = det(A)ᵠ det(B)ᵖ; the rule
    /// does not fire where that number is a symbol.
    RowsNumber(&'static str, &'static str),
    /// Binds the variable (first) to the integer constant class (second) plus one, for
    /// exponents: aᵏa = aᵏ⁺¹. The rule does not fire where the second is no integer
    /// constant or the sum is past 64 in size.
    Successor(&'static str, &'static str),
    /// The class is an integer constant (an exponent `k` of `(cA)^{∘k} = cᵏA^{∘k}`).
    Integer(&'static str),
    /// The class (first) has as many rows as the size leaf (second) says.
    RowsAre(&'static str, &'static str),
    /// The class (first) has as many columns as the size leaf (second) says.
    ColsAre(&'static str, &'static str),
    /// Binds the variable to the all-ones value of the matched class's shape (`𝟙`, `𝟙ᵀ`,
    /// `𝟙𝟙ᵀ`, or 1 for a scalar): what a function that is 1 at 0 makes of a zero. The
    /// rule does not fire where a size is unknown.
    OnesOfMatch(&'static str),
    /// Every entry of the class is 1 (see [`super::analysis::Data::ones`]).
    AllOnes(&'static str),
    /// The size leaf can be written as a value and read back as the same size: a number,
    /// or symbols none of which is also the name of a variable or definition (`n` both a
    /// size and a vector reads back as the vector).
    Readable(&'static str),
}

/// Whether a rule rewrites one way or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `lhs => rhs`.
    Forward,
    /// `lhs <=> rhs`: also `rhs => lhs`, under the same guards, named `name-rev`.
    Both,
}

/// One row of a rule table.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// Kebab-case name saying what the rule does.
    pub name: &'static str,
    /// The family (table) the rule belongs to.
    pub family: &'static str,
    /// The pattern searched for, as an s-expression.
    pub lhs: &'static str,
    /// One way or both.
    pub direction: Direction,
    /// The pattern it is rewritten to.
    pub rhs: &'static str,
    /// Facts required of the matched classes.
    pub guards: &'static [Guard],
}

/// The applier behind every rule: checks the guards, binds sizes, checks that the
/// instantiated right-hand side is well typed with the matched class's shape, then
/// adds it and unions.
#[derive(Clone, Debug)]
pub struct GuardedApplier {
    /// The left-hand side's variables, in a fixed order: a match's key.
    lhs_vars: Vec<Var>,
    rhs: Pattern<Mat>,
    guards: Vec<VarGuard>,
}

/// A [`Guard`] with its pattern variables parsed once, when the rule is built.
#[derive(Clone, Copy, Debug)]
enum VarGuard {
    Scalar(Var),
    NotScalar(Var),
    Vector(Var),
    Square(Var),
    Symmetric(Var),
    SameShape(Var, Var),
    RowsOf(Var, Var),
    ColsOf(Var, Var),
    RowsOfKron(Var, Var, Var),
    RowsNumber(Var, Var),
    Successor(Var, Var),
    Integer(Var),
    RowsAre(Var, Var),
    ColsAre(Var, Var),
    OnesOfMatch(Var),
    AllOnes(Var),
    Readable(Var),
}

impl VarGuard {
    fn parse(guard: &Guard) -> Result<VarGuard, String> {
        let var = |name: &str| -> Result<Var, String> {
            name.parse()
                .map_err(|e| format!("bad guard variable {name}: {e}"))
        };
        Ok(match *guard {
            Guard::Scalar(a) => VarGuard::Scalar(var(a)?),
            Guard::NotScalar(a) => VarGuard::NotScalar(var(a)?),
            Guard::Vector(a) => VarGuard::Vector(var(a)?),
            Guard::Square(a) => VarGuard::Square(var(a)?),
            Guard::Symmetric(a) => VarGuard::Symmetric(var(a)?),
            Guard::SameShape(a, b) => VarGuard::SameShape(var(a)?, var(b)?),
            Guard::RowsOf(a, b) => VarGuard::RowsOf(var(a)?, var(b)?),
            Guard::ColsOf(a, b) => VarGuard::ColsOf(var(a)?, var(b)?),
            Guard::RowsOfKron(a, b, c) => VarGuard::RowsOfKron(var(a)?, var(b)?, var(c)?),
            Guard::RowsNumber(a, b) => VarGuard::RowsNumber(var(a)?, var(b)?),
            Guard::Successor(a, b) => VarGuard::Successor(var(a)?, var(b)?),
            Guard::Integer(a) => VarGuard::Integer(var(a)?),
            Guard::RowsAre(a, b) => VarGuard::RowsAre(var(a)?, var(b)?),
            Guard::ColsAre(a, b) => VarGuard::ColsAre(var(a)?, var(b)?),
            Guard::OnesOfMatch(a) => VarGuard::OnesOfMatch(var(a)?),
            Guard::AllOnes(a) => VarGuard::AllOnes(var(a)?),
            Guard::Readable(a) => VarGuard::Readable(var(a)?),
        })
    }

    fn holds(self, egraph: &EGraph, subst: &Subst) -> bool {
        let data = |var: Var| subst.get(var).map(|id| &egraph[*id].data);
        let test = |var: Var, f: &dyn Fn(&super::analysis::Data) -> bool| data(var).is_some_and(f);
        match self {
            VarGuard::Scalar(a) => test(a, &|d| d.scalar),
            VarGuard::NotScalar(a) => test(a, &|d| !d.scalar),
            VarGuard::Vector(a) => test(a, &|d| d.shape.cols.is_one()),
            VarGuard::Square(a) => test(a, &|d| d.shape.is_square()),
            VarGuard::Symmetric(a) => test(a, &|d| d.symmetric),
            VarGuard::AllOnes(a) => test(a, &|d| d.ones),
            VarGuard::Integer(a) => {
                test(a, &|d| d.constant.as_ref().is_some_and(|c| c.is_integer()))
            }
            VarGuard::SameShape(a, b) => match (data(a), data(b)) {
                (Some(x), Some(y)) => x.shape == y.shape,
                _ => false,
            },
            VarGuard::RowsAre(a, size) => match (data(a), data(size)) {
                (Some(x), Some(y)) => y.dim.as_ref() == Some(&x.shape.rows),
                _ => false,
            },
            VarGuard::ColsAre(a, size) => match (data(a), data(size)) {
                (Some(x), Some(y)) => y.dim.as_ref() == Some(&x.shape.cols),
                _ => false,
            },
            VarGuard::RowsNumber(_, of) => {
                test(of, &|d| matches!(d.shape.rows, crate::expr::Dim::Known(_)))
            }
            VarGuard::Successor(_, of) => successor(egraph, subst, of).is_some(),
            VarGuard::Readable(size) => {
                data(size).and_then(|d| d.dim.as_ref()).is_some_and(|dim| {
                    !matches!(dim, Dim::Unknown)
                        && dim
                            .symbols()
                            .iter()
                            .all(|name| crate::expr::readable_size(name, &egraph.analysis.vars))
                })
            }
            VarGuard::RowsOf(..)
            | VarGuard::ColsOf(..)
            | VarGuard::RowsOfKron(..)
            | VarGuard::OnesOfMatch(..) => true,
        }
    }

    /// The variable this guard binds, if it binds one.
    fn bound(self) -> Option<Var> {
        match self {
            VarGuard::RowsOf(size, _)
            | VarGuard::ColsOf(size, _)
            | VarGuard::RowsOfKron(size, _, _)
            | VarGuard::RowsNumber(size, _)
            | VarGuard::Successor(size, _)
            | VarGuard::OnesOfMatch(size) => Some(size),
            _ => None,
        }
    }
}

/// The integer constant of `var`'s class plus one, up to [`MAX_SUCCESSOR`].
fn successor(egraph: &EGraph, subst: &Subst, var: Var) -> Option<i64> {
    let constant = egraph[*subst.get(var)?].data.constant.as_ref()?;
    let next = super::lang::Num(constant.clone())
        .as_i64()?
        .checked_add(1)?;
    (next.abs() <= MAX_SUCCESSOR).then_some(next)
}

/// The largest exponent [`Guard::Successor`] makes: where a class holds all its own
/// powers (det(I) = 1 = det(I)ᵏ), aᵏa = aᵏ⁺¹ would otherwise add powers without end.
const MAX_SUCCESSOR: i64 = 64;

impl GuardedApplier {
    /// The applier for matches of `lhs`, instantiating `rhs` under `guards`; an error
    /// names a guard variable that does not parse.
    pub fn new(
        lhs: &Pattern<Mat>,
        rhs: Pattern<Mat>,
        guards: &[Guard],
    ) -> Result<GuardedApplier, String> {
        Ok(GuardedApplier {
            lhs_vars: lhs.vars(),
            rhs,
            guards: guards
                .iter()
                .map(VarGuard::parse)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The shape the right-hand side would have under `subst`, if it is well typed.
    fn rhs_shape(&self, egraph: &EGraph, subst: &Subst) -> Option<Shape> {
        let ast = &self.rhs.ast;
        let mut facts: Vec<(Shape, Option<Dim>)> = Vec::with_capacity(ast.as_ref().len());
        for node in ast.as_ref() {
            let fact = match node {
                egg::ENodeOrVar::Var(var) => {
                    let data = &egraph[*subst.get(*var)?].data;
                    (data.shape.clone(), data.dim.clone())
                }
                egg::ENodeOrVar::ENode(enode) => {
                    let (shape, ok) = node_shape(
                        enode,
                        |id: Id| facts[usize::from(id)].clone(),
                        |name| egraph.analysis.vars.get(name).map(|d| d.shape.clone()),
                    );
                    if !ok {
                        return None;
                    }
                    let dim = match enode {
                        Mat::Dim(DimLeaf(dim)) => Some(dim.clone()),
                        _ => None,
                    };
                    (shape, dim)
                }
            };
            facts.push(fact);
        }
        facts.pop().map(|(shape, _)| shape)
    }
}

impl GuardedApplier {
    /// The key under which a match is remembered, if its pattern is small enough.
    fn match_key(&self, rule_name: Symbol, eclass: Id, subst: &Subst) -> Option<MatchKey> {
        let mut classes = [None; 4];
        for (slot, var) in self.lhs_vars.iter().enumerate() {
            *classes.get_mut(slot)? = subst.get(*var).copied();
        }
        Some((rule_name, eclass, classes))
    }
}

impl Applier<Mat, MatAnalysis> for GuardedApplier {
    fn apply_one(
        &self,
        egraph: &mut EGraph,
        eclass: Id,
        subst: &Subst,
        searcher_ast: Option<&PatternAst<Mat>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        // A match applied before changes nothing now; neither does one whose right-hand
        // side had the wrong shape, since shapes never change. A failed guard is not
        // remembered: symmetry can be learnt later.
        let key = self.match_key(rule_name, eclass, subst);
        if key
            .as_ref()
            .is_some_and(|key| egraph.analysis.settled.contains(key))
        {
            return vec![];
        }
        if !self.guards.iter().all(|g| g.holds(egraph, subst)) {
            return vec![];
        }
        let mut subst = subst.clone();
        for guard in &self.guards {
            let shape_of = |var: Var| subst.get(var).map(|id| egraph[*id].data.shape.clone());
            let leaf = match *guard {
                VarGuard::RowsOf(_, of) => shape_of(of).map(|s| Mat::Dim(DimLeaf(s.rows))),
                VarGuard::ColsOf(_, of) => shape_of(of).map(|s| Mat::Dim(DimLeaf(s.cols))),
                VarGuard::RowsOfKron(_, a, b) => {
                    // A size leaf stands for its size, a value for its number of rows.
                    let size = |var: Var| {
                        let data = &egraph[*subst.get(var)?].data;
                        Some(data.dim.clone().unwrap_or_else(|| data.shape.rows.clone()))
                    };
                    match (size(a), size(b)) {
                        (Some(x), Some(y)) => Some(Mat::Dim(DimLeaf(x.times(&y)))),
                        _ => None,
                    }
                }
                VarGuard::RowsNumber(_, of) => match shape_of(of).map(|s| s.rows) {
                    Some(crate::expr::Dim::Known(n)) => i64::try_from(n)
                        .ok()
                        .map(|n| Mat::Num(super::lang::Num::int(n))),
                    _ => None,
                },
                VarGuard::Successor(_, of) => {
                    successor(egraph, &subst, of).map(|n| Mat::Num(super::lang::Num::int(n)))
                }
                VarGuard::OnesOfMatch(carrier) => {
                    let shape = egraph[eclass].data.shape.clone();
                    if [&shape.rows, &shape.cols].contains(&&Dim::Unknown) {
                        return vec![];
                    }
                    let id =
                        super::lang::add_shape_carrier(&shape, false, &mut |node| egraph.add(node));
                    subst.insert(carrier, id);
                    continue;
                }
                _ => continue,
            };
            let (Some(leaf), Some(size)) = (leaf, guard.bound()) else {
                return vec![];
            };
            let id = egraph.add(leaf);
            subst.insert(size, id);
        }
        let well_typed = self
            .rhs_shape(egraph, &subst)
            .is_some_and(|shape| shape == egraph[eclass].data.shape);
        if let Some(key) = key {
            egraph.analysis.settled.insert(key);
        }
        if well_typed {
            self.rhs
                .apply_one(egraph, eclass, &subst, searcher_ast, rule_name)
        } else {
            vec![]
        }
    }

    fn get_pattern_ast(&self) -> Option<&PatternAst<Mat>> {
        Some(&self.rhs.ast)
    }

    fn vars(&self) -> Vec<Var> {
        let bound: Vec<Var> = self.guards.iter().filter_map(|g| g.bound()).collect();
        self.rhs
            .vars()
            .into_iter()
            .filter(|v| !bound.contains(v))
            .collect()
    }
}

use Direction::{Both, Forward};
use Guard::{
    ColsAre, ColsOf, NotScalar, Readable, RowsAre, RowsNumber, RowsOf, RowsOfKron, SameShape,
    Scalar, Square, Symmetric, Vector,
};

const fn rule(
    family: &'static str,
    name: &'static str,
    lhs: &'static str,
    direction: Direction,
    rhs: &'static str,
    guards: &'static [Guard],
) -> RuleSpec {
    RuleSpec {
        name,
        family,
        lhs,
        direction,
        rhs,
        guards,
    }
}

/// Transposes: products, sums, symmetric and scalar values, inner products.
#[rustfmt::skip]
pub fn transpose_rules() -> Vec<RuleSpec> {
    let f = "transpose";
    vec![
        rule(f, "transpose-of-transpose",  "(T (T ?a))",          Forward, "?a",                         &[]),                       // (Aᵀ)ᵀ = A
        rule(f, "transpose-of-product",    "(T (mul ?a ?b))",     Both,    "(mul (T ?b) (T ?a))",        &[]),                       // (AB)ᵀ = BᵀAᵀ, Cookbook (4)
        rule(f, "transpose-of-sum",        "(T (add ?a ?b))",     Both,    "(add (T ?a) (T ?b))",        &[]),                       // (A+B)ᵀ = Aᵀ+Bᵀ, Cookbook (3)
        rule(f, "transpose-of-difference", "(T (sub ?a ?b))",     Both,    "(sub (T ?a) (T ?b))",        &[]),                       // (A−B)ᵀ = Aᵀ−Bᵀ
        rule(f, "transpose-of-negation",   "(T (neg ?a))",        Both,    "(neg (T ?a))",               &[]),                       // (−A)ᵀ = −Aᵀ
        rule(f, "transpose-of-symmetric",  "(T ?s)",              Forward, "?s",                         &[Symmetric("?s")]),        // Sᵀ = S; aᵀ = a for scalars
        rule(f, "transpose-of-hadamard",   "(T (had ?a ?b))",     Forward, "(had (T ?a) (T ?b))",        &[]),                       // (A⊙B)ᵀ = Aᵀ⊙Bᵀ
        rule(f, "transpose-of-sigma",        "(T (ew-sigma ?a))",     Forward, "(ew-sigma (T ?a))",          &[]),                       // sigma(A)ᵀ = sigma(Aᵀ), elementwise
        rule(f, "transpose-of-exp",          "(T (ew-exp ?a))",       Forward, "(ew-exp (T ?a))",            &[]),                       // exp(A)ᵀ = exp(Aᵀ), elementwise
        rule(f, "transpose-of-log",          "(T (ew-log ?a))",       Forward, "(ew-log (T ?a))",            &[]),                       // log(A)ᵀ = log(Aᵀ), elementwise
        rule(f, "transpose-of-tanh",         "(T (ew-tanh ?a))",      Forward, "(ew-tanh (T ?a))",           &[]),                       // tanh(A)ᵀ = tanh(Aᵀ), elementwise
        rule(f, "transpose-of-swish",        "(T (ew-swish ?a))",     Forward, "(ew-swish (T ?a))",          &[]),                       // swish(A)ᵀ = swish(Aᵀ), elementwise
        rule(f, "transpose-of-relu",         "(T (ew-relu ?a))",      Forward, "(ew-relu (T ?a))",           &[]),                       // relu(A)ᵀ = relu(Aᵀ), elementwise
        rule(f, "transpose-of-softplus",     "(T (ew-softplus ?a))",  Forward, "(ew-softplus (T ?a))",       &[]),                       // softplus(A)ᵀ = softplus(Aᵀ), elementwise
        rule(f, "transpose-of-sqrt",         "(T (ew-sqrt ?a))",      Forward, "(ew-sqrt (T ?a))",           &[]),                       // sqrt(A)ᵀ = sqrt(Aᵀ), elementwise
        rule(f, "transpose-of-step",         "(T (ew-step ?a))",      Forward, "(ew-step (T ?a))",           &[]),                       // step(A)ᵀ = step(Aᵀ), elementwise
        rule(f, "inner-product-comm",      "(mul (T ?a) ?b)",     Forward, "(mul (T ?b) ?a)",            &[Vector("?a"), SameShape("?a", "?b")]), // aᵀb = bᵀa
    ]
}

/// Sums, negation, coefficients and scalar factors.
#[rustfmt::skip]
pub fn coefficient_rules() -> Vec<RuleSpec> {
    let f = "coefficient";
    vec![
        rule(f, "add-comm",                "(add ?a ?b)",                 Forward, "(add ?b ?a)",               &[]),                       // A+B = B+A
        rule(f, "add-assoc",               "(add (add ?a ?b) ?c)",        Both,    "(add ?a (add ?b ?c))",      &[]),                       // (A+B)+C = A+(B+C)
        rule(f, "sub-as-add-neg",          "(sub ?a ?b)",                 Both,    "(add ?a (neg ?b))",         &[]),                       // A−B = A+(−B)
        rule(f, "neg-of-neg",              "(neg (neg ?a))",              Forward, "?a",                        &[]),                       // −(−A) = A
        rule(f, "neg-as-minus-one",        "(neg ?a)",                    Both,    "(mul -1 ?a)",               &[]),                       // −A = (−1)A
        rule(f, "neg-of-sum",              "(neg (add ?a ?b))",           Both,    "(add (neg ?a) (neg ?b))",   &[]),                       // −(A+B) = −A−B
        rule(f, "neg-of-difference",       "(neg (sub ?a ?b))",           Forward, "(sub ?b ?a)",               &[]),                       // −(A−B) = B−A
        rule(f, "add-self",                "(add ?a ?a)",                 Forward, "(mul 2 ?a)",                &[]),                       // A+A = 2A
        rule(f, "sub-self",                "(sub ?a ?a)",                 Forward, "(mul 0 ?a)",                &[]),                       // A−A = 0 (of A's shape)
        rule(f, "collect-scaled",          "(add (mul ?k ?a) (mul ?l ?a))", Forward, "(mul (add ?k ?l) ?a)",    &[Scalar("?k"), Scalar("?l")]), // kA+lA = (k+l)A
        rule(f, "collect-scaled-one",      "(add (mul ?k ?a) ?a)",        Forward, "(mul (add ?k 1) ?a)",       &[Scalar("?k")]),           // kA+A = (k+1)A
        rule(f, "add-zero",                "(add 0 ?a)",                  Forward, "?a",                        &[]),                       // 0+A = A
        rule(f, "add-zero-matrix",         "(add (mul 0 ?b) ?a)",         Forward, "?a",                        &[SameShape("?a", "?b")]),  // 0·B+A = A
        rule(f, "sub-zero",                "(sub ?a 0)",                  Forward, "?a",                        &[]),                       // A−0 = A
        rule(f, "add-sub-cancel",          "(add (sub ?a ?b) ?b)",        Forward, "?a",                        &[SameShape("?a", "?b")]),  // (A−B)+B = A
        rule(f, "mul-one",                 "(mul 1 ?a)",                  Forward, "?a",                        &[]),                       // 1·A = A
        // A zero absorbs what surrounds it (products, ⊗, ⊙, transposes, vec, diag, sums,
        // traces), keeping the shape, by the analysis (Data::zero): every zero of one shape
        // is then one small term (0·I, 0·𝟙𝟙ᵀ), never 0 times a long product.
        rule(f, "sub-zero-matrix",         "(sub ?a (mul 0 ?b))",         Forward, "?a",                        &[SameShape("?a", "?b")]),  // A−0·B = A
        rule(f, "zero-minus",              "(sub (mul 0 ?b) ?a)",         Forward, "(neg ?a)",                  &[SameShape("?a", "?b")]),  // 0·B−A = −A
        rule(f, "scalar-comm",             "(mul ?k ?a)",                 Forward, "(mul ?a ?k)",               &[Scalar("?k")]),           // kA = Ak
        rule(f, "scalar-comm-right",       "(mul ?a ?k)",                 Forward, "(mul ?k ?a)",               &[Scalar("?k")]),           // Ak = kA
        rule(f, "scalar-float",            "(mul ?a (mul ?k ?b))",        Both,    "(mul ?k (mul ?a ?b))",      &[Scalar("?k")]),           // A(kB) = k(AB)
        rule(f, "neg-out-of-left",         "(mul (neg ?a) ?b)",           Both,    "(neg (mul ?a ?b))",         &[]),                       // (−A)B = −(AB)
        rule(f, "neg-out-of-right",        "(mul ?a (neg ?b))",           Both,    "(neg (mul ?a ?b))",         &[]),                       // A(−B) = −(AB)
        rule(f, "div-by-scalar",           "(div ?a ?k)",                 Both,    "(mul (inv ?k) ?a)",         &[Scalar("?k")]),           // A/k = k⁻¹A
    ]
}

/// Matrix products: associativity, distributivity and factoring on both sides.
#[rustfmt::skip]
pub fn product_rules() -> Vec<RuleSpec> {
    let f = "product";
    vec![
        rule(f, "mul-assoc",               "(mul (mul ?a ?b) ?c)",            Both,    "(mul ?a (mul ?b ?c))",          &[]),                                       // (AB)C = A(BC)
        rule(f, "distribute-left",         "(mul ?a (add ?b ?c))",            Forward, "(add (mul ?a ?b) (mul ?a ?c))", &[SameShape("?b", "?c")]),                  // A(B+C) = AB+AC
        rule(f, "distribute-right",        "(mul (add ?a ?b) ?c)",            Forward, "(add (mul ?a ?c) (mul ?b ?c))", &[SameShape("?a", "?b")]),                  // (A+B)C = AC+BC
        rule(f, "distribute-left-sub",     "(mul ?a (sub ?b ?c))",            Forward, "(sub (mul ?a ?b) (mul ?a ?c))", &[SameShape("?b", "?c")]),                  // A(B−C) = AB−AC
        rule(f, "distribute-right-sub",    "(mul (sub ?a ?b) ?c)",            Forward, "(sub (mul ?a ?c) (mul ?b ?c))", &[SameShape("?a", "?b")]),                  // (A−B)C = AC−BC
        rule(f, "factor-left",             "(add (mul ?a ?b) (mul ?a ?c))",   Forward, "(mul ?a (add ?b ?c))",          &[SameShape("?b", "?c")]),                  // AB+AC = A(B+C)
        rule(f, "factor-right",            "(add (mul ?a ?c) (mul ?b ?c))",   Forward, "(mul (add ?a ?b) ?c)",          &[SameShape("?a", "?b")]),                  // AC+BC = (A+B)C
        rule(f, "factor-left-sub",         "(sub (mul ?a ?b) (mul ?a ?c))",   Forward, "(mul ?a (sub ?b ?c))",          &[SameShape("?b", "?c")]),                  // AB−AC = A(B−C)
        rule(f, "factor-right-sub",        "(sub (mul ?a ?c) (mul ?b ?c))",   Forward, "(mul (sub ?a ?b) ?c)",          &[SameShape("?a", "?b")]),                  // AC−BC = (A−B)C
        rule(f, "factor-right-scaled",     "(add (mul ?k ?c) (mul ?b ?c))",   Forward, "(mul (add (mul ?k (I ?n)) ?b) ?c)", &[Scalar("?k"), NotScalar("?b"), NotScalar("?c"), Square("?b"), RowsOf("?n", "?b")]), // kC+BC = (kI+B)C
        rule(f, "factor-right-scaled-sub", "(sub (mul ?b ?c) (mul ?k ?c))",   Forward, "(mul (sub ?b (mul ?k (I ?n))) ?c)", &[Scalar("?k"), NotScalar("?b"), NotScalar("?c"), Square("?b"), RowsOf("?n", "?b")]), // BC−kC = (B−kI)C
        rule(f, "identity-left",           "(mul (I ?n) ?a)",                 Forward, "?a",                            &[]),                                       // IA = A
        rule(f, "identity-right",          "(mul ?a (I ?n))",                 Forward, "?a",                            &[]),                                       // AI = A
        rule(f, "square-as-power",         "(mul ?a ?a)",                     Both,    "(pow ?a 2)",                    &[Square("?a")]),                           // AA = A²
        rule(f, "cube-as-power-left",      "(mul ?a (pow ?a 2))",             Both,    "(pow ?a 3)",                    &[Square("?a")]),                           // AA² = A³
        rule(f, "cube-as-power-right",     "(mul (pow ?a 2) ?a)",             Both,    "(pow ?a 3)",                    &[Square("?a")]),                           // A²A = A³
        rule(f, "power-one",               "(pow ?a 1)",                      Forward, "?a",                            &[]),                                       // A¹ = A
        rule(f, "power-minus-one",         "(pow ?a -1)",                     Forward,   "(inv ?a)",                      &[]),                                       // A^(−1) = A⁻¹
    ]
}

/// Traces: cyclic invariance, transposes, linearity, scalars.
#[rustfmt::skip]
pub fn trace_rules() -> Vec<RuleSpec> {
    let f = "trace";
    vec![
        rule(f, "trace-of-scalar",         "(tr ?a)",                 Forward, "?a",                        &[Scalar("?a")]),              // tr(a) = a
        rule(f, "trace-cyclic",            "(tr (mul ?a ?b))",        Forward, "(tr (mul ?b ?a))",          &[]),                          // tr(AB) = tr(BA), Cookbook (16)
        rule(f, "trace-of-transpose",      "(tr (T ?a))",             Forward, "(tr ?a)",                   &[]),                          // tr(Aᵀ) = tr(A), Cookbook (13)
        rule(f, "trace-of-sum",            "(tr (add ?a ?b))",        Both,    "(add (tr ?a) (tr ?b))",     &[SameShape("?a", "?b")]),     // tr(A+B) = tr(A)+tr(B), Cookbook (14)
        rule(f, "trace-of-difference",     "(tr (sub ?a ?b))",        Both,    "(sub (tr ?a) (tr ?b))",     &[SameShape("?a", "?b")]),     // tr(A−B) = tr(A)−tr(B)
        rule(f, "trace-of-scaled",         "(tr (mul ?k ?a))",        Both,    "(mul ?k (tr ?a))",          &[Scalar("?k")]),              // tr(kA) = k·tr(A)
        rule(f, "trace-of-negation",       "(tr (neg ?a))",           Both,    "(neg (tr ?a))",             &[]),                          // tr(−A) = −tr(A)
        rule(f, "norm-as-inner-product",   "(normsq ?a)",             Forward, "(mul (T ?a) ?a)",           &[Vector("?a")]),              // ‖a‖² = aᵀa
        rule(f, "norm-as-trace",           "(normsq ?a)",             Forward, "(tr (mul (T ?a) ?a))",      &[NotScalar("?a")]),           // ‖A‖²_F = tr(AᵀA), Cookbook (541)
    ]
}

/// Inverses and determinants.
#[rustfmt::skip]
pub fn inverse_rules() -> Vec<RuleSpec> {
    let f = "inverse";
    vec![
        rule(f, "inverse-of-inverse",      "(inv (inv ?a))",             Forward, "?a",                          &[]),                                  // (A⁻¹)⁻¹ = A
        rule(f, "product-with-inverse",    "(mul ?a (inv ?a))",          Forward, "(I ?n)",                      &[NotScalar("?a"), RowsOf("?n", "?a")]), // AA⁻¹ = I
        rule(f, "inverse-with-product",    "(mul (inv ?a) ?a)",          Forward, "(I ?n)",                      &[NotScalar("?a"), RowsOf("?n", "?a")]), // A⁻¹A = I
        rule(f, "scalar-with-inverse",     "(mul ?a (inv ?a))",          Forward, "1",                           &[Scalar("?a")]),                      // a·a⁻¹ = 1
        rule(f, "cancel-inverse-left",     "(mul ?a (mul (inv ?a) ?b))", Forward, "?b",                          &[]),                                  // A(A⁻¹B) = B
        rule(f, "cancel-inverse-right",    "(mul (inv ?a) (mul ?a ?b))", Forward, "?b",                          &[]),                                  // A⁻¹(AB) = B
        rule(f, "inverse-of-transpose",    "(inv (T ?a))",               Both,    "(T (inv ?a))",                &[]),                                  // (Aᵀ)⁻¹ = (A⁻¹)ᵀ, Cookbook (144)
        rule(f, "inverse-of-product",      "(inv (mul ?a ?b))",          Forward, "(mul (inv ?b) (inv ?a))",     &[Square("?a"), Square("?b")]),        // (AB)⁻¹ = B⁻¹A⁻¹, Cookbook (145)
        rule(f, "inverse-of-negation",     "(inv (neg ?a))",             Both,    "(neg (inv ?a))",              &[]),                                  // (−A)⁻¹ = −A⁻¹
        rule(f, "inverse-of-identity",     "(inv (I ?n))",               Forward, "(I ?n)",                      &[]),                                  // I⁻¹ = I
        rule(f, "det-of-transpose",        "(det (T ?a))",               Forward, "(det ?a)",                    &[]),                                  // det(Aᵀ) = det(A), Cookbook (19)
        rule(f, "det-of-product",          "(det (mul ?a ?b))",          Forward, "(mul (det ?a) (det ?b))",     &[Square("?a"), SameShape("?a", "?b")]), // det(AB) = det(A)det(B), Cookbook (18)
        rule(f, "det-of-inverse",          "(det (inv ?a))",             Forward, "(inv (det ?a))",              &[]),                                  // det(A⁻¹) = 1/det(A), Cookbook (20)
        rule(f, "det-of-identity",         "(det (I ?n))",               Forward, "1",                           &[]),                                  // det(I) = 1
        rule(f, "logdet-of-transpose",     "(logdet (T ?a))",            Forward, "(logdet ?a)",                 &[]),                                  // log|Aᵀ| = log|A|
        rule(f, "logdet-of-inverse",       "(logdet (inv ?a))",          Forward, "(neg (logdet ?a))",           &[]),                                  // log|A⁻¹| = −log|A|
        rule(f, "logdet-of-identity",      "(logdet (I ?n))",            Forward, "0",                           &[]),                                  // log|I| = 0
    ]
}

/// The Hadamard product: commutative, distributive; with a scalar it is scaling.
///
/// There is no associativity row (issue 14): the factoring rewrite reads a Hadamard
/// product's factors through any grouping (`factor::FactorSums`), the elementwise pass
/// cancels through any grouping (`field`), and regrouping by rule only multiplied the
/// classes.
#[rustfmt::skip]
pub fn hadamard_rules() -> Vec<RuleSpec> {
    let f = "hadamard";
    vec![
        rule(f, "hadamard-comm",           "(had ?a ?b)",                   Forward, "(had ?b ?a)",                  &[]),                      // A⊙B = B⊙A
        rule(f, "hadamard-scalar",         "(had ?k ?a)",                   Both,    "(mul ?k ?a)",                  &[Scalar("?k")]),          // k⊙A = kA
        rule(f, "hadamard-distribute",     "(had ?a (add ?b ?c))",          Forward, "(add (had ?a ?b) (had ?a ?c))", &[]),                     // A⊙(B+C) = A⊙B+A⊙C
        rule(f, "hadamard-factor",         "(add (had ?a ?b) (had ?a ?c))", Forward, "(had ?a (add ?b ?c))",         &[]),                      // A⊙B+A⊙C = A⊙(B+C)
        rule(f, "hadamard-factor-self",    "(add ?a (had ?a ?b))",          Forward, "(had ?a (add 1 ?b))",          &[SameShape("?a", "?b")]), // A+A⊙B = A⊙(1+B)
        rule(f, "hadamard-factor-sub",     "(sub (had ?a ?b) (had ?a ?c))", Forward, "(had ?a (sub ?b ?c))",         &[]),                      // A⊙B−A⊙C = A⊙(B−C)
        rule(f, "hadamard-neg",            "(had (neg ?a) ?b)",             Both,    "(neg (had ?a ?b))",            &[]),                      // (−A)⊙B = −(A⊙B)
        rule(f, "hadamard-scaled",         "(had (mul ?k ?a) ?b)",          Both,    "(mul ?k (had ?a ?b))",         &[Scalar("?k")]),          // (kA)⊙B = k(A⊙B)
        rule(f, "hadamard-ones",           "(had (ones ?n) ?a)",            Forward, "?a",                           &[]),                      // 𝟙⊙a = a
    ]
}

/// Diagonal matrices, elementwise functions and broadcasting.
///
/// There is deliberately no `swish(z) = z ⊙ σ(z)` row: with it, the derivative
/// `σ(z) ⊙ (1 + z ⊙ (1 − σ(z)))` is rewritten to the shorter but unreadable
/// `σ(z) ⊙ (z + 1 − swish(z))`. Left opaque, swish keeps its derivative in σ-forms.
#[rustfmt::skip]
pub fn elementwise_rules() -> Vec<RuleSpec> {
    let f = "elementwise";
    vec![
        rule(f, "diag-times-vector",       "(mul (diag ?a) ?b)",            Forward, "(had ?a ?b)",                  &[Vector("?a"), SameShape("?a", "?b")]), // diag(a)b = a⊙b
        rule(f, "vector-times-diag",       "(mul (T ?b) (diag ?a))",        Forward, "(T (had ?a ?b))",              &[Vector("?a"), SameShape("?a", "?b")]), // bᵀdiag(a) = (a⊙b)ᵀ
        rule(f, "relu-as-step",            "(had ?z (ew-step ?z))",         Forward, "(ew-relu ?z)",                 &[]),                      // z⊙1[z>0] = relu(z)
        rule(f, "log-of-exp",              "(ew-log (ew-exp ?a))",          Forward, "?a",                           &[]),                      // log(exp a) = a
        rule(f, "log-of-softmax",          "(ew-log (softmax ?a))",         Forward, "(sub ?a (logsumexp ?a))",      &[]),                      // log softmax(z) = z − logsumexp(z)
        rule(f, "ones-inner-product",      "(mul (T (ones ?n)) ?a)",        Forward, "(sum ?a)",                     &[Vector("?a")]),          // 𝟙ᵀa = sum(a)
        rule(f, "sum-of-scalar",           "(sum ?a)",                      Forward, "?a",                           &[Scalar("?a")]),          // sum(a) = a
        rule(f, "diag-of-scalar",          "(diag ?a)",                     Forward, "?a",                           &[Scalar("?a")]),          // diag(a) = a for 1×1
        rule(f, "diag-of-scaled",          "(diag (mul ?k ?a))",            Forward, "(mul ?k (diag ?a))",           &[Scalar("?k"), NotScalar("?a")]), // diag(kA) = k·diag(A)
        rule(f, "diag-of-negation",        "(diag (neg ?a))",               Forward, "(neg (diag ?a))",              &[]),                      // diag(−A) = −diag(A)
    ]
}

/// The Kronecker product, `vec` and the commutation matrix K₍ₘ,ₙ₎ (K vec(A) = vec(Aᵀ)
/// for A: m×n); Magnus & Neudecker ch. 2, Cookbook §10.2.
#[rustfmt::skip]
pub fn kron_rules() -> Vec<RuleSpec> {
    let f = "kron";
    vec![
        rule(f, "kron-transpose",          "(T (kron ?a ?b))",                     Both,    "(kron (T ?a) (T ?b))",                 &[]),                                       // (A⊗B)ᵀ = Aᵀ⊗Bᵀ, Cookbook (508)
        // One way only: the other way, X⁻ᵀ ⊗ X⁻¹ would display as the shorter (Xᵀ ⊗ X)⁻¹.
        rule(f, "kron-inverse",            "(inv (kron ?a ?b))",                   Forward, "(kron (inv ?a) (inv ?b))",             &[Square("?a"), Square("?b")]),             // (A⊗B)⁻¹ = A⁻¹⊗B⁻¹, Cookbook (509)
        rule(f, "kron-mixed-product",      "(mul (kron ?a ?b) (kron ?c ?d))",      Forward, "(kron (mul ?a ?c) (mul ?b ?d))",       &[NotScalar("?a"), NotScalar("?b"), NotScalar("?c"), NotScalar("?d")]), // (A⊗B)(C⊗D) = AC⊗BD, Cookbook (510)
        rule(f, "kron-trace",              "(tr (kron ?a ?b))",                    Forward, "(mul (tr ?a) (tr ?b))",                &[Square("?a"), Square("?b")]),             // tr(A⊗B) = tr(A)tr(B), Cookbook (511)
        rule(f, "kron-det",                "(det (kron ?a ?b))",                   Forward, "(mul (pow (det ?a) ?q) (pow (det ?b) ?p))", &[Square("?a"), Square("?b"), RowsNumber("?p", "?a"), RowsNumber("?q", "?b")]), // det(A⊗B) = det(A)ᵠdet(B)ᵖ, A p×p, B q×q, Cookbook (512)
        rule(f, "kron-logdet",             "(logdet (kron ?a ?b))",                Forward, "(add (mul ?q (logdet ?a)) (mul ?p (logdet ?b)))", &[Square("?a"), Square("?b"), RowsNumber("?p", "?a"), RowsNumber("?q", "?b")]), // log|A⊗B| = q log|A| + p log|B|
        rule(f, "kron-identity",           "(kron (I ?m) (I ?n))",                 Forward, "(I ?p)",                               &[RowsOfKron("?p", "?m", "?n")]),          // Iₘ⊗Iₙ = Iₘₙ
        rule(f, "kron-scalar-left",        "(kron ?k ?a)",                         Forward, "(mul ?k ?a)",                          &[Scalar("?k")]),                           // k⊗A = kA
        rule(f, "kron-scalar-right",       "(kron ?a ?k)",                         Forward, "(mul ?k ?a)",                          &[Scalar("?k")]),                           // A⊗k = kA
        rule(f, "kron-scaled-left",        "(kron (mul ?k ?a) ?b)",                Both,    "(mul ?k (kron ?a ?b))",                &[Scalar("?k")]),                           // (kA)⊗B = k(A⊗B)
        rule(f, "kron-scaled-right",       "(kron ?a (mul ?k ?b))",                Both,    "(mul ?k (kron ?a ?b))",                &[Scalar("?k")]),                           // A⊗(kB) = k(A⊗B)
        rule(f, "kron-neg-left",           "(kron (neg ?a) ?b)",                   Both,    "(neg (kron ?a ?b))",                   &[]),                                       // (−A)⊗B = −(A⊗B)
        rule(f, "kron-neg-right",          "(kron ?a (neg ?b))",                   Both,    "(neg (kron ?a ?b))",                   &[]),                                       // A⊗(−B) = −(A⊗B)
        rule(f, "kron-distribute-left",    "(kron ?a (add ?b ?c))",                Both,    "(add (kron ?a ?b) (kron ?a ?c))",      &[SameShape("?b", "?c")]),                  // A⊗(B+C) = A⊗B + A⊗C, Cookbook (506)
        rule(f, "kron-distribute-right",   "(kron (add ?a ?b) ?c)",                Both,    "(add (kron ?a ?c) (kron ?b ?c))",      &[SameShape("?a", "?b")]),                  // (A+B)⊗C = A⊗C + B⊗C
        rule(f, "kron-factor-left-sub",    "(sub (kron ?a ?b) (kron ?a ?c))",      Forward, "(kron ?a (sub ?b ?c))",                &[SameShape("?b", "?c")]),                  // A⊗B − A⊗C = A⊗(B−C)
        rule(f, "kron-factor-right-sub",   "(sub (kron ?a ?c) (kron ?b ?c))",      Forward, "(kron (sub ?a ?b) ?c)",                &[SameShape("?a", "?b")]),                  // A⊗C − B⊗C = (A−B)⊗C
        rule(f, "kron-assoc",              "(kron (kron ?a ?b) ?c)",               Both,    "(kron ?a (kron ?b ?c))",               &[]),                                       // (A⊗B)⊗C = A⊗(B⊗C), Cookbook (507)
        rule(f, "vec-trick",               "(vec (mul ?a (mul ?x ?b)))",           Both,    "(mul (kron (T ?b) ?a) (vec ?x))",      &[NotScalar("?a"), NotScalar("?x"), NotScalar("?b")]), // vec(AXB) = (Bᵀ⊗A)vec(X), Cookbook (520)
        rule(f, "vec-trick-row",           "(mul (T (vec ?c)) (kron ?b ?a))",      Forward, "(T (vec (mul (T ?a) (mul ?c ?b))))",   &[NotScalar("?a"), NotScalar("?b"), NotScalar("?c")]), // vec(C)ᵀ(B⊗A) = vec(AᵀCB)ᵀ
        rule(f, "vec-of-vector",           "(vec ?a)",                             Forward, "?a",                                   &[Vector("?a")]),                           // vec(a) = a
        rule(f, "vec-of-sum",              "(vec (add ?a ?b))",                    Both,    "(add (vec ?a) (vec ?b))",              &[SameShape("?a", "?b")]),                  // vec(A+B) = vec(A)+vec(B)
        rule(f, "vec-of-scaled",           "(vec (mul ?k ?a))",                    Both,    "(mul ?k (vec ?a))",                    &[Scalar("?k")]),                           // vec(kA) = k vec(A)
        rule(f, "vec-of-neg",              "(vec (neg ?a))",                       Both,    "(neg (vec ?a))",                       &[]),                                       // vec(−A) = −vec(A)
        rule(f, "vec-of-row",              "(vec (T ?a))",                         Forward, "?a",                                   &[Vector("?a")]),                           // vec(aᵀ) = a
        // The m×n matrix whose vec is g, (vec(Iₙ)ᵀ ⊗ Iₘ)(Iₙ ⊗ g), as a derivative by a matrix
        // through vec is written (diff::unvec): of vec(A) it is A, of 𝟙 it is 𝟙𝟙ᵀ. Written
        // out, its identities leave their sizes to the reader, who cannot tell them.
        rule(f, "unvec-of-vec",            "(mul (kron (T (vec (I ?n))) (I ?m)) (kron (I ?n) (vec ?a)))", Forward, "?a",          &[RowsAre("?a", "?m"), ColsAre("?a", "?n")]), // unvec(vec(A)) = A
        rule(f, "unvec-of-ones",           "(mul (kron (T (vec (I ?n))) (I ?m)) (kron (I ?n) (ones ?p)))", Forward, "(mul (ones ?m) (T (ones ?n)))", &[]), // unvec(𝟙ₘₙ) = 𝟙ₘ𝟙ₙᵀ
        // The adjoint of A in A ⊗ B reads (Iₘ ⊗ vec(Iₚ)ᵀ)(Ḡ ⊗ Iₚ)…: of Ḡ = 𝟙 its first two
        // factors are 𝟙𝟙ᵀ (diff::kron_adjoint_left).
        rule(f, "kron-pick-of-ones",       "(mul (kron (I ?m) (T (vec (I ?p)))) (kron (ones ?q) (I ?p)))", Forward, "(mul (ones ?m) (T (ones ?p)))", &[]), // (Iₘ ⊗ vec(Iₚ)ᵀ)(𝟙ₘₚ ⊗ Iₚ) = 𝟙ₘ𝟙ₚᵀ
        // The adjoint of a column b in A ⊗ b reads (vec(Iₘ)ᵀ ⊗ Iₚ)(Iₘ ⊗ Ḡ)vec(Aᵀ), Σᵢⱼ AᵢⱼḠᵢⱼ
        // (diff::kron_adjoint_right): of Ḡ = 𝟙cᵀ it is 𝟙𝟙ᵀAc.
        rule(f, "kron-pick-of-ones-outer", "(mul (mul (kron (T (vec (I ?m))) (I ?p)) (kron (I ?m) (mul (ones ?r) (T ?c)))) (vec (T ?a)))", Forward, "(mul (mul (ones ?p) (T (ones ?m))) (mul ?a ?c))", &[RowsAre("?a", "?m"), Vector("?c")]), // (vec(Iₘ)ᵀ ⊗ Iₚ)(Iₘ ⊗ 𝟙cᵀ)vec(Aᵀ) = 𝟙ₚ𝟙ₘᵀAc
        rule(f, "vec-inner-product",       "(mul (T (vec ?a)) (vec ?b))",          Forward, "(tr (mul (T ?a) ?b))",                 &[SameShape("?a", "?b")]),                  // vec(A)ᵀvec(B) = tr(AᵀB), Cookbook (521)
        rule(f, "commutation-vec",         "(mul (K ?m ?n) (vec ?a))",             Forward, "(vec (T ?a))",                         &[RowsAre("?a", "?m"), ColsAre("?a", "?n")]), // K₍ₘ,ₙ₎vec(A) = vec(Aᵀ)
        rule(f, "commutation-transpose",   "(T (K ?m ?n))",                        Forward, "(K ?n ?m)",                            &[]),                                       // K₍ₘ,ₙ₎ᵀ = K₍ₙ,ₘ₎
        rule(f, "commutation-inverse",     "(mul (K ?m ?n) (K ?n ?m))",            Forward, "(I ?p)",                               &[RowsOfKron("?p", "?m", "?n")]),          // K₍ₘ,ₙ₎K₍ₙ,ₘ₎ = I
        rule(f, "commutation-square",      "(pow (K ?n ?n) 2)",                    Forward, "(I ?p)",                               &[RowsOfKron("?p", "?n", "?n")]),          // K₍ₙ,ₙ₎² = I
        rule(f, "commutation-of-vector",   "(K ?m #1)",                            Forward, "(I ?m)",                               &[]),                                       // K₍ₘ,₁₎ = Iₘ
        rule(f, "commutation-of-row",      "(K #1 ?n)",                            Forward, "(I ?n)",                               &[]),                                       // K₍₁,ₙ₎ = Iₙ
        rule(f, "commutation-kron-left",   "(mul (K ?p ?m) (kron ?a ?b))",         Forward, "(mul (kron ?b ?a) (K ?q ?n))",         &[RowsAre("?a", "?m"), RowsAre("?b", "?p"), ColsOf("?n", "?a"), ColsOf("?q", "?b")]), // K₍ₚ,ₘ₎(A⊗B) = (B⊗A)K₍q,ₙ₎, A m×n, B p×q
        rule(f, "commutation-kron-right",  "(mul (kron ?b ?a) (K ?q ?n))",         Forward, "(mul (K ?p ?m) (kron ?a ?b))",         &[ColsAre("?a", "?n"), ColsAre("?b", "?q"), RowsOf("?m", "?a"), RowsOf("?p", "?b")]), // (B⊗A)K₍q,ₙ₎ = K₍ₚ,ₘ₎(A⊗B)
        // tensor (issue 17): the factorings that make Magnus & Neudecker's forms reachable,
        // (Xᵀ ⊗ I)K + I ⊗ Xᵀ = K(I ⊗ Xᵀ) + I ⊗ Xᵀ = (I + K)(I ⊗ Xᵀ). Only searched where
        // ⊗, vec or K occurs (rules_for), so other results keep their forms.
        rule(f, "kron-factor-identity-left",  "(add (mul ?b ?c) ?c)",                 Forward, "(mul (add ?b (I ?n)) ?c)",             &[NotScalar("?b"), NotScalar("?c"), Square("?b"), RowsOf("?n", "?b")]), // BC + C = (B + I)C
        rule(f, "kron-factor-identity-right", "(add ?c (mul ?c ?b))",                 Forward, "(mul ?c (add (I ?n) ?b))",             &[NotScalar("?b"), NotScalar("?c"), Square("?b"), RowsOf("?n", "?b")]), // C + CB = C(I + B)
    ]
}

#[path = "functions.rs"]
pub mod functions;

/// Constants made of ones whose value is a product of sizes, written as that product
/// (`sum(𝟙ₘ𝟙ₙᵀ) = mn`, `tr(Iₙ) = n`), so that a display says the size instead of
/// leaving it to the reader (`sum(𝟙𝟙ᵀ)` does not say which 𝟙); and the linearity of
/// `sum` that brings such constants together (`sum(−𝟙) = −n`).
#[rustfmt::skip]
pub fn size_rules() -> Vec<RuleSpec> {
    let f = "size";
    vec![
        rule(f, "trace-of-identity",       "(tr (I ?n))",                          Forward, "(size ?n)",                   &[Readable("?n")]),                 // tr(Iₙ) = n
        rule(f, "sum-of-identity",         "(sum (I ?n))",                         Forward, "(size ?n)",                   &[Readable("?n")]),                 // sum(Iₙ) = n
        rule(f, "sum-of-ones",             "(sum (ones ?n))",                      Forward, "(size ?n)",                   &[Readable("?n")]),                 // sum(𝟙ₙ) = 𝟙ᵀ𝟙 = n
        rule(f, "sum-of-ones-row",         "(sum (T (ones ?n)))",                  Forward, "(size ?n)",                   &[Readable("?n")]),                 // sum(𝟙ₙᵀ) = n
        rule(f, "sum-of-ones-outer",       "(sum (mul (ones ?m) (T (ones ?n))))",  Forward, "(size ?p)",                   &[Readable("?m"), Readable("?n"), RowsOfKron("?p", "?m", "?n")]), // sum(𝟙ₘ𝟙ₙᵀ) = mn
        rule(f, "norm-of-ones",            "(normsq (ones ?n))",                   Forward, "(size ?n)",                   &[Readable("?n")]),                 // ‖𝟙ₙ‖² = n
        rule(f, "norm-of-ones-outer",      "(normsq (mul (ones ?m) (T (ones ?n))))", Forward, "(size ?p)",                 &[Readable("?m"), Readable("?n"), RowsOfKron("?p", "?m", "?n")]), // ‖𝟙ₘ𝟙ₙᵀ‖² = mn
        rule(f, "vec-of-ones-outer",       "(vec (mul (ones ?m) (T (ones ?n))))",  Forward, "(ones ?p)",                   &[RowsOfKron("?p", "?m", "?n")]),   // vec(𝟙ₘ𝟙ₙᵀ) = 𝟙ₘₙ
        rule(f, "sum-of-outer-product",    "(sum (mul ?a (T ?b)))",                Forward, "(mul (sum ?a) (sum ?b))",     &[Vector("?a"), Vector("?b")]),     // sum(abᵀ) = sum(a)sum(b)
        rule(f, "sum-of-row-sums",         "(sum (mul ?a (ones ?n)))",             Forward, "(sum ?a)",                    &[NotScalar("?a")]),                // sum(A𝟙) = sum(A)
        rule(f, "sum-of-column-sums",      "(sum (mul (T (ones ?n)) ?a))",         Forward, "(sum ?a)",                    &[NotScalar("?a")]),                // sum(𝟙ᵀA) = sum(A)
        rule(f, "sum-of-kron",             "(sum (kron ?a ?b))",                   Forward, "(mul (sum ?a) (sum ?b))",     &[]),                               // sum(A⊗B) = sum(A)sum(B)
        rule(f, "sum-of-vec",              "(sum (vec ?a))",                       Forward, "(sum ?a)",                    &[]),                               // sum(vec(A)) = sum(A)
        rule(f, "sum-of-transpose",        "(sum (T ?a))",                         Forward, "(sum ?a)",                    &[]),                               // sum(Aᵀ) = sum(A)
        rule(f, "sum-of-negation",         "(sum (neg ?a))",                       Forward, "(neg (sum ?a))",              &[]),                               // sum(−A) = −sum(A)
        rule(f, "sum-of-scaled",           "(sum (mul ?k ?a))",                    Forward, "(mul ?k (sum ?a))",           &[Scalar("?k")]),                   // sum(kA) = k·sum(A)
    ]
}

/// Every rule table, in family order.
pub fn rule_specs() -> Vec<RuleSpec> {
    let mut res = transpose_rules();
    res.extend(coefficient_rules());
    res.extend(product_rules());
    res.extend(trace_rules());
    res.extend(inverse_rules());
    res.extend(hadamard_rules());
    res.extend(elementwise_rules());
    res.extend(kron_rules());
    res.extend(functions::function_rules());
    res.extend(size_rules());
    res
}

/// Builds the rewrites of one table row (two for a `<=>` row).
///
/// The tables are fixed data, checked by the unit test below, so a malformed row is a
/// programming error.
pub fn rewrites_of(spec: &RuleSpec) -> Vec<Rewrite> {
    let parse = |text: &str| -> Pattern<Mat> {
        text.parse()
            .unwrap_or_else(|e| panic!("rule {}: bad pattern {text}: {e}", spec.name))
    };
    let build = |name: String, lhs: &str, rhs: &str| -> Rewrite {
        let lhs = parse(lhs);
        let applier = GuardedApplier::new(&lhs, parse(rhs), spec.guards)
            .unwrap_or_else(|e| panic!("rule {name}: {e}"));
        Rewrite::new(name.as_str(), lhs, applier).unwrap_or_else(|e| panic!("rule {name}: {e}"))
    };
    let mut res = vec![build(spec.name.to_string(), spec.lhs, spec.rhs)];
    if spec.direction == Both {
        res.push(build(format!("{}-rev", spec.name), spec.rhs, spec.lhs));
    }
    res
}

/// Every rewrite rule the simplifier uses.
pub fn all_rules() -> Vec<Rewrite> {
    rule_specs().iter().flat_map(rewrites_of).collect()
}

/// [`all_rules`] with the flat-sum factoring, built once per process: compiling the
/// patterns cost about 5 % of a small simplification.
pub fn standard_rules() -> &'static [Rewrite] {
    &RuleSet::with_tensors().rules
}

/// The rules worth searching in `egraph`: those of [`standard_rules`] that could ever
/// match it. A rule whose left side needs an operator that is in no class and that no
/// rule able to match could build (`(T (ew-sin ?a))` where there is no `sin`) is left
/// out, found as a fixed point from the operators present: searching its
/// `mul`/`add`/`T`-rooted pattern would slow every simplification and could never add a
/// node. The searchers without a pattern (flat-sum factoring) are always kept, and build
/// only sums, products, quotients, negations, transposes, `I` and `𝟙` beyond the operators
/// they read, which are always taken to be buildable. The [`kron_rules`] are
/// searched only where `⊗`, `vec` or `K` occurs: their factorings (`BC + C = (B + I)C`)
/// would change the forms of other results, and compiling them is left to the first
/// problem that has one.
pub fn rules_for(egraph: &EGraph) -> Vec<&'static Rewrite> {
    let tensors = egraph.classes().any(|class| {
        class
            .nodes
            .iter()
            .any(|node| matches!(node, Mat::Kron(_) | Mat::Vectorize(_) | Mat::Commutation(_)))
    });
    let set = match tensors {
        true => RuleSet::with_tensors(),
        false => RuleSet::without_tensors(),
    };
    let mut available = set.always;
    for class in egraph.classes() {
        for node in &class.nodes {
            available |= set.bit(node);
        }
    }
    let mut live = vec![false; set.rules.len()];
    loop {
        let mut grew = false;
        for ((needs, builds), live) in set.operators.iter().zip(live.iter_mut()) {
            if *live || needs & !available != 0 {
                continue;
            }
            *live = true;
            grew = true;
            available |= builds;
        }
        if !grew {
            break;
        }
    }
    set.rules
        .iter()
        .zip(live)
        .filter_map(|(rule, live)| live.then_some(rule))
        .collect()
}

/// Compiled rules with their operators as bits: for each rule, those of its left side
/// (none for a searcher without a pattern) and of its right side.
struct RuleSet {
    rules: Vec<Rewrite>,
    operators: Vec<(u128, u128)>,
    bits: HashMap<Discriminant<Mat>, u32>,
    always: u128,
}

impl RuleSet {
    /// Every rule but the [`kron_rules`].
    fn without_tensors() -> &'static RuleSet {
        static SET: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
        SET.get_or_init(|| {
            let kron: Vec<&str> = kron_rules().iter().map(|spec| spec.name).collect();
            let rules = rule_specs()
                .iter()
                .filter(|spec| !kron.contains(&spec.name))
                .flat_map(rewrites_of)
                .chain(super::factor::rules())
                .collect();
            RuleSet::new(rules)
        })
    }

    /// Every rule.
    fn with_tensors() -> &'static RuleSet {
        static SET: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
        SET.get_or_init(|| {
            let rules = all_rules()
                .into_iter()
                .chain(super::factor::rules())
                .collect();
            RuleSet::new(rules)
        })
    }

    fn new(rules: Vec<Rewrite>) -> RuleSet {
        let mut bits: HashMap<Discriminant<Mat>, u32> = HashMap::new();
        let mut mask = |ops: &mut dyn Iterator<Item = Discriminant<Mat>>| {
            ops.fold(0u128, |mask, op| {
                let next = bits.len() as u32;
                mask | 1 << *bits.entry(op).or_insert(next)
            })
        };
        let always = mask(&mut always_buildable().into_iter());
        let operators = rules
            .iter()
            .map(|rule| {
                let needs = rule
                    .searcher
                    .get_pattern_ast()
                    .map_or(0, |lhs| mask(&mut operators(lhs)));
                let builds = rule
                    .applier
                    .get_pattern_ast()
                    .map_or(0, |rhs| mask(&mut operators(rhs)));
                (needs, builds)
            })
            .collect();
        assert!(bits.len() <= 128, "more operators than bits");
        RuleSet {
            rules,
            operators,
            bits,
            always,
        }
    }

    /// The bit of `node`'s operator; none for one that no rule reads or builds.
    fn bit(&self, node: &Mat) -> u128 {
        self.bits
            .get(&std::mem::discriminant(node))
            .map_or(0, |bit| 1 << bit)
    }
}

/// The operators of a pattern.
fn operators(ast: &PatternAst<Mat>) -> impl Iterator<Item = Discriminant<Mat>> + '_ {
    ast.as_ref().iter().filter_map(|node| match node {
        ENodeOrVar::ENode(node) => Some(std::mem::discriminant(node)),
        ENodeOrVar::Var(_) => None,
    })
}

/// The operators that appear without a pattern building them: leaves, the analysis's
/// folded constants and zeros (`0·I`), the shape carriers guards add (`𝟙𝟙ᵀ`, `I`), and
/// what the flat-sum factoring writes around the letters it reads (sums, differences,
/// negations, products, quotients by numbers, transposes, `I`).
fn always_buildable() -> Vec<Discriminant<Mat>> {
    let id = Id::from(0usize);
    [
        Mat::Num(super::lang::Num::int(0)),
        Mat::Dim(DimLeaf(Dim::Known(1))),
        Mat::Add([id, id]),
        Mat::Sub([id, id]),
        Mat::Neg(id),
        Mat::Mul([id, id]),
        Mat::Div([id, id]),
        Mat::Transpose(id),
        Mat::Identity(id),
        Mat::Ones(id),
    ]
    .iter()
    .map(std::mem::discriminant)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_every_row_builds_and_names_are_unique() {
        let rules = all_rules();
        let mut names: Vec<String> = rules.iter().map(|r| r.name.to_string()).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate rule names");
    }

    /// The names of the rules [`rules_for`] keeps for the e-graph of `expr`.
    fn live_rules(expr: &str) -> Vec<String> {
        let rec: egg::RecExpr<Mat> = expr.parse().expect("an s-expression");
        let mut egraph = EGraph::new(MatAnalysis::new(Default::default()));
        egraph.add_expr(&rec);
        egraph.rebuild();
        rules_for(&egraph)
            .iter()
            .map(|rule| rule.name.to_string())
            .collect()
    }

    #[test]
    fn rules_for_leaves_out_rules_that_cannot_match() {
        let live = live_rules("(mul (T A) B)");
        assert!(live.contains(&"transpose-of-product".to_string()));
        assert!(live.contains(&"factor-common".to_string()));
        for dead in ["transpose-of-sin", "log-of-softmax", "kron-trace"] {
            assert!(!live.contains(&dead.to_string()), "{dead} kept");
        }
        let with_sin = live_rules("(mul (T (ew-sin A)) B)");
        assert!(with_sin.contains(&"transpose-of-sin".to_string()));
    }

    #[test]
    fn rules_for_keeps_rules_whose_operators_another_rule_builds() {
        // ‖A‖² has no trace, but norm-as-trace writes tr(AᵀA), which the trace rules read.
        let live = live_rules("(normsq A)");
        assert!(live.contains(&"norm-as-trace".to_string()));
        assert!(live.contains(&"trace-cyclic".to_string()));
        assert!(!live_rules("(mul A B)").contains(&"trace-cyclic".to_string()));
    }
}
