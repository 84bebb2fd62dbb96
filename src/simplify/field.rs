//! Elementwise algebra as a commutative field: a pass over the simplifier's input that
//! writes each elementwise subterm as a rational function of its atoms, cancels and
//! collects, and keeps the result where it is smaller. The simplifier adds what it finds
//! to the e-graph as equalities ([`hints`]), next to the unchanged input, and extraction
//! chooses by cost; the rules themselves know no field algebra.
//!
//! - An *elementwise region* is a maximal subterm built from `+`, `−`, `⊙`, `⊘`, integer
//!   `∘k` powers, scaling by scalars and the constants `k`, `𝟙`. Everything else is an
//!   atom (σ(Xw), Xw, y), itself passed through recursively. A region's value is a
//!   rational function over its atoms: coefficient × atom powers × powers of irreducible
//!   polynomials (kept factored, primitive, with a canonical sign). Adding puts terms over
//!   their least common denominator and divides the new numerator by each denominator
//!   factor it is a multiple of, which turns the cross-entropy gradient
//!   `σ ⊙ (1 − σ) ⊙ ((1 − y) ⊘ (1 − σ) − y ⊘ σ)` into `σ − y`.
//! - A *diagonal region* is a square subterm built from `diag(v)`, `I`, sums, scalings,
//!   products, inverses, powers and transposes of such: `diag` maps the elementwise field
//!   of vectors onto diagonal matrices, so the region is `diag` of one rational function,
//!   and `diag(𝟙)` is `I`.
//! - In a matrix product, adjacent diagonal factors merge into one, identities drop out
//!   and equal adjacent factors become a power (`XXXX = X⁴`); a sum whose terms share a
//!   leading or trailing factor has it taken out (`XᵀD₁X + XᵀD₂X = Xᵀ(D₁ + D₂)X`), which is
//!   what lets the four terms of a cross-entropy Hessian meet in one diagonal region.
//! - The logistic function is recognised from the exponential both ways:
//!   `exp(t) ⊘ (1 + exp(t)) = σ(t)`, `𝟙 ⊘ (1 + exp(t)) = 1 − σ(t)`,
//!   `log(1 + exp(t)) = softplus(t)`; and `log(softmax(z)) = z − logsumexp(z)`.
//!
//! Every replacement is value-preserving wherever the input is defined (a cancelled
//! factor was a denominator of the input) and is made only when the region gets
//! smaller, counting atoms as leaves, so a form that is already textbook-shaped
//! (`σ(z) ⊙ (1 + z ⊙ (1 − σ(z)))`) is left as it is. Atoms are identified by
//! hash-consing ([`Interner`]), in time linear in the DAG, and numbered in order of first
//! appearance, so the output is deterministic.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use num_traits::{One, Signed, Zero};

use crate::expr::{build, Dim, Expr, ExprKind, Func, Interner, Rational, Shape};
use crate::limits::Deadline;

/// `expr` with its elementwise and diagonal regions cancelled, collected and recognised,
/// wherever that makes them smaller. Value and shape are unchanged.
pub fn prepare(expr: &Expr) -> Expr {
    let mut pass = Pass::default();
    let input = Rc::new(expr.clone());
    let out = pass.go(&input);
    out.as_ref().clone()
}

/// The equalities the pass finds in `exprs`: pairs (a subterm, its smaller form), for
/// the simplifier to union in its e-graph next to the inputs, which stay as they are (so
/// that the repeats `where` names come from are kept), and for extraction to choose from
/// by cost. Past `deadline` the pass leaves what it has not reached as it is: the
/// hints found so far are equalities all the same.
pub fn hints(exprs: &[Expr], deadline: &Deadline) -> Vec<(Rc<Expr>, Rc<Expr>)> {
    let mut pass = Pass {
        record: true,
        deadline: Some(*deadline),
        ..Pass::default()
    };
    let inputs: Vec<Rc<Expr>> = exprs.iter().map(|e| Rc::new(e.clone())).collect();
    for input in &inputs {
        pass.go(input);
    }
    pass.hints
}

/// Most terms a polynomial may have while being expanded; past it a region is left alone.
const MAX_TERMS: usize = 128;

/// Most nodes an atom counts for when sizes are compared: past it, an atom is one
/// name in a `where` line.
const ATOM_SIZE: usize = 16;

/// Largest exponent taken apart; larger powers stay atoms.
const MAX_POWER: i64 = 12;

/// An atom's number.
type Atom = u32;

/// A monomial: sorted `(atom, exponent)` pairs, no zero exponents.
type Mono = Vec<(Atom, i64)>;

/// A polynomial: monomials (non-negative exponents) with non-zero coefficients.
type Poly = BTreeMap<Mono, Rational>;

/// A rational function: `coeff · Π atomᵉ · Π polyᵉ`, exponents of either sign, each
/// polynomial with two terms or more, no monomial content, primitive with a canonical
/// sign.
#[derive(Clone, Debug, PartialEq)]
struct Rat {
    coeff: Rational,
    mono: Mono,
    factors: Vec<(Poly, i64)>,
}

impl Rat {
    fn constant(q: Rational) -> Rat {
        Rat {
            coeff: q,
            mono: vec![],
            factors: vec![],
        }
    }

    fn atom(a: Atom) -> Rat {
        Rat {
            coeff: Rational::one(),
            mono: vec![(a, 1)],
            factors: vec![],
        }
    }

    fn is_zero(&self) -> bool {
        self.coeff.is_zero()
    }

    fn mul(&self, other: &Rat) -> Rat {
        if self.is_zero() || other.is_zero() {
            return Rat::constant(Rational::zero());
        }
        let mut factors = self.factors.clone();
        for (p, e) in &other.factors {
            match factors.iter_mut().find(|(q, _)| q == p) {
                Some(slot) => slot.1 += e,
                None => factors.push((p.clone(), *e)),
            }
        }
        factors.retain(|(_, e)| *e != 0);
        factors.sort_by(|a, b| a.0.cmp(&b.0));
        Rat {
            coeff: &self.coeff * &other.coeff,
            mono: mono_mul(&self.mono, &other.mono, 1),
            factors,
        }
    }

    fn pow(&self, k: i64) -> Option<Rat> {
        if k < 0 && self.is_zero() {
            return None;
        }
        let coeff = if k >= 0 {
            num_traits::pow(self.coeff.clone(), k as usize)
        } else {
            num_traits::pow(self.coeff.recip(), (-k) as usize)
        };
        Some(Rat {
            coeff,
            mono: self.mono.iter().map(|(a, e)| (*a, e * k)).collect(),
            factors: self
                .factors
                .iter()
                .map(|(p, e)| (p.clone(), e * k))
                .filter(|(_, e)| *e != 0)
                .collect(),
        })
    }

    fn neg(&self) -> Rat {
        Rat {
            coeff: -self.coeff.clone(),
            ..self.clone()
        }
    }

    /// `self + other` over the least common denominator, with the numerator divided by
    /// every denominator factor it is a multiple of.
    fn add(&self, other: &Rat) -> Option<Rat> {
        if self.is_zero() {
            return Some(other.clone());
        }
        if other.is_zero() {
            return Some(self.clone());
        }
        // The common part G: least exponents of every atom and factor.
        let mut atoms: Vec<Atom> = self
            .mono
            .iter()
            .chain(&other.mono)
            .map(|(a, _)| *a)
            .collect();
        atoms.sort_unstable();
        atoms.dedup();
        let exp_of = |m: &Mono, a: Atom| m.iter().find(|(b, _)| *b == a).map_or(0, |(_, e)| *e);
        let common_mono: Mono = atoms
            .iter()
            .map(|a| (*a, exp_of(&self.mono, *a).min(exp_of(&other.mono, *a))))
            .filter(|(_, e)| *e != 0)
            .collect();
        let mut polys: Vec<Poly> = self
            .factors
            .iter()
            .chain(&other.factors)
            .map(|(p, _)| p.clone())
            .collect();
        polys.sort();
        polys.dedup();
        let exp_in = |r: &Rat, p: &Poly| r.factors.iter().find(|(q, _)| q == p).map_or(0, |f| f.1);
        let common_factors: Vec<(Poly, i64)> = polys
            .iter()
            .map(|p| (p.clone(), exp_in(self, p).min(exp_in(other, p))))
            .filter(|(_, e)| *e != 0)
            .collect();
        let common = Rat {
            coeff: Rational::one(),
            mono: common_mono,
            factors: common_factors,
        };
        let inverse = common.pow(-1)?;
        let a = self.mul(&inverse).expand()?;
        let b = other.mul(&inverse).expand()?;
        let mut sum = a;
        poly_add(&mut sum, &b, &Rational::one());
        if sum.is_empty() {
            return Some(Rat::constant(Rational::zero()));
        }
        let mut numerator = Rat::from_poly(sum);
        // Cancel: divide the new factor by each denominator factor as often as it goes.
        if let Some(position) = numerator.factors.iter().position(|(_, e)| *e == 1) {
            let mut n = numerator.factors.remove(position).0;
            let mut extra = Rat::constant(Rational::one());
            for (d, e) in &common.factors {
                let mut times = 0;
                while times < -*e {
                    match poly_div(&n, d) {
                        Some(q) => {
                            n = q;
                            times += 1;
                            extra = extra.mul(&Rat {
                                coeff: Rational::one(),
                                mono: vec![],
                                factors: vec![(d.clone(), 1)],
                            });
                        }
                        None => break,
                    }
                }
            }
            numerator = numerator.mul(&Rat::from_poly(n)).mul(&extra);
        }
        Some(common.mul(&numerator))
    }

    /// The polynomial this is, if every exponent is non-negative.
    fn expand(&self) -> Option<Poly> {
        if self.mono.iter().any(|(_, e)| *e < 0) || self.factors.iter().any(|(_, e)| *e < 0) {
            return None;
        }
        let mut res: Poly = BTreeMap::from([(self.mono.clone(), self.coeff.clone())]);
        for (p, e) in &self.factors {
            for _ in 0..*e {
                res = poly_mul(&res, p);
                if res.len() > MAX_TERMS {
                    return None;
                }
            }
        }
        Some(res)
    }

    /// A polynomial with its content (the least power of each atom, the numbers' common
    /// factor and a canonical sign) taken out into the coefficient and monomial.
    fn from_poly(mut p: Poly) -> Rat {
        if p.is_empty() {
            return Rat::constant(Rational::zero());
        }
        if p.len() == 1 {
            let (mono, coeff) = p.into_iter().next().unwrap_or_default();
            return Rat {
                coeff,
                mono,
                factors: vec![],
            };
        }
        // Monomial content.
        let mut content: Mono = p.keys().next().cloned().unwrap_or_default();
        for mono in p.keys() {
            content.retain_mut(|(a, e)| match mono.iter().find(|(b, _)| b == a) {
                Some((_, f)) => {
                    *e = (*e).min(*f);
                    true
                }
                None => false,
            });
        }
        if !content.is_empty() {
            p = p
                .into_iter()
                .map(|(m, c)| (mono_mul(&m, &content, -1), c))
                .collect();
        }
        // Numeric content: make the coefficients coprime integers with the sign chosen
        // below.
        let lcm_den = p.values().fold(num_bigint::BigInt::one(), |acc, c| {
            num_integer::lcm(acc, c.denom().clone())
        });
        let gcd_num = p.values().fold(num_bigint::BigInt::zero(), |acc, c| {
            num_integer::gcd(acc, (c.numer() * &lcm_den) / c.denom())
        });
        let mut scale = Rational::new(gcd_num, lcm_den);
        if canonical_sign(&p).is_lt() {
            scale = -scale;
        }
        let p: Poly = p.into_iter().map(|(m, c)| (m, c / &scale)).collect();
        Rat {
            coeff: scale,
            mono: content,
            factors: vec![(p, 1)],
        }
    }
}

/// Less when the polynomial should be negated: the constant term, or else the first
/// term, is made positive.
fn canonical_sign(p: &Poly) -> Ordering {
    let lead = p
        .get(&Vec::new())
        .or_else(|| p.values().next())
        .cloned()
        .unwrap_or_default();
    if lead.is_negative() {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}

fn mono_mul(a: &Mono, b: &Mono, sign: i64) -> Mono {
    let mut res: BTreeMap<Atom, i64> = a.iter().copied().collect();
    for (atom, e) in b {
        *res.entry(*atom).or_insert(0) += sign * e;
    }
    res.into_iter().filter(|(_, e)| *e != 0).collect()
}

fn poly_add(acc: &mut Poly, p: &Poly, scale: &Rational) {
    for (m, c) in p {
        let entry = acc.entry(m.clone()).or_insert_with(Rational::zero);
        *entry += c * scale;
        if entry.is_zero() {
            acc.remove(m);
        }
    }
}

fn poly_mul(a: &Poly, b: &Poly) -> Poly {
    let mut res = Poly::new();
    for (ma, ca) in a {
        for (mb, cb) in b {
            let m = mono_mul(ma, mb, 1);
            let entry = res.entry(m.clone()).or_insert_with(Rational::zero);
            *entry += ca * cb;
            if entry.is_zero() {
                res.remove(&m);
            }
        }
    }
    res
}

/// The graded lexicographic order on monomials, a monomial order: what exact division
/// needs (the leading term of a product is the product of the leading terms).
fn grlex(a: &Mono, b: &Mono) -> Ordering {
    let degree = |m: &Mono| m.iter().map(|(_, e)| *e).sum::<i64>();
    degree(a).cmp(&degree(b)).then_with(|| {
        // Lexicographic on the dense exponent vectors, smallest atom first.
        let (mut i, mut j) = (0, 0);
        loop {
            match (a.get(i), b.get(j)) {
                (None, None) => return Ordering::Equal,
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (Some((x, e)), Some((y, f))) => match x.cmp(y) {
                    Ordering::Less => return Ordering::Greater,
                    Ordering::Greater => return Ordering::Less,
                    Ordering::Equal => match e.cmp(f) {
                        Ordering::Equal => {
                            i += 1;
                            j += 1;
                        }
                        other => return other,
                    },
                },
            }
        }
    })
}

fn leading(p: &Poly) -> Option<(&Mono, &Rational)> {
    p.iter().max_by(|a, b| grlex(a.0, b.0))
}

/// `n / d` if `d` divides `n` exactly.
fn poly_div(n: &Poly, d: &Poly) -> Option<Poly> {
    let (dm, dc) = leading(d)?;
    let (dm, dc) = (dm.clone(), dc.clone());
    let mut rest = n.clone();
    let mut quotient = Poly::new();
    let mut steps = 0;
    while let Some((rm, rc)) = leading(&rest) {
        steps += 1;
        if steps > 4 * MAX_TERMS {
            return None;
        }
        let m = mono_mul(rm, &dm, -1);
        if m.iter().any(|(_, e)| *e < 0) {
            return None;
        }
        let c = rc / &dc;
        let term: Poly = BTreeMap::from([(m.clone(), c.clone())]);
        poly_add(&mut rest, &poly_mul(&term, d), &-Rational::one());
        poly_add(&mut quotient, &term, &Rational::one());
    }
    Some(quotient)
}

#[derive(Default)]
struct Pass {
    memo: HashMap<*const Expr, Rc<Expr>>,
    /// [`Pass::same_region`] and [`Pass::rat`] of shared nodes, by address: a region
    /// that is a DAG (definitions expanded, a derivative's shared adjoints) is walked
    /// once per distinct node, never as the tree it unfolds to.
    same_regions: HashMap<*const Expr, Rc<Expr>>,
    /// Keyed also by [`Pass::exp_as_sigma`] and by the region's shape (a `𝟙` is the
    /// constant 1 only where it is shaped like its region).
    rats: HashMap<(*const Expr, bool, Shape), Option<Rat>>,
    /// Every node the pass made, kept alive so that pointers stay unique.
    made: Vec<Rc<Expr>>,
    interner: Interner,
    /// Atoms by number, and numbers by interned id.
    atoms: Vec<Rc<Expr>>,
    atom_of: HashMap<usize, Atom>,
    atom_nodes: HashSet<*const Expr>,
    /// Whether [`Pass::rat`] writes `exp(t)` as `σ(t) ⊘ (1 − σ(t))`, so that exponential
    /// and logistic forms of one argument meet.
    exp_as_sigma: bool,
    /// Whether [`Pass::hints`] is kept.
    record: bool,
    /// Every node the pass changed, with what it became.
    hints: Vec<(Rc<Expr>, Rc<Expr>)>,
    /// Nodes that are an input node with new children only: congruence gives their
    /// equality, so they are no hint.
    rebuilt: HashMap<*const Expr, *const Expr>,
    /// Past it every node is left as it is (`None`: no deadline).
    deadline: Option<Deadline>,
}

/// Whether `e` is an operation of the elementwise field (see the module doc).
fn is_field_op(e: &Expr) -> bool {
    use ExprKind::*;
    match &e.kind {
        Add(..) | Sub(..) | Neg(_) | Hadamard(..) | ElemDiv(..) | Div(..) => true,
        Mul(a, b) => a.shape.is_scalar() || b.shape.is_scalar(),
        ElemPow(_, q) => q.is_integer() && q.abs() <= Rational::from_integer(MAX_POWER.into()),
        _ => false,
    }
}

/// Whether `e` is a diagonal region: a square matrix built from `diag(v)` and `I`.
fn is_diagonal(e: &Expr) -> bool {
    use ExprKind::*;
    if !e.shape.is_square() || e.shape.is_scalar() {
        return false;
    }
    match &e.kind {
        Diag(v) => v.shape.cols.is_one() && !v.shape.is_scalar(),
        Identity => true,
        Neg(a) | Transpose(a) | Inverse(a) => is_diagonal(a),
        Pow(a, k) => is_diagonal(a) && k.abs() <= MAX_POWER,
        Add(a, b) | Sub(a, b) => is_diagonal(a) && is_diagonal(b),
        Mul(a, b) | Div(a, b) if b.shape.is_scalar() => is_diagonal(a),
        Mul(a, b) if a.shape.is_scalar() => is_diagonal(b),
        Mul(a, b) => is_diagonal(a) && is_diagonal(b),
        _ => false,
    }
}

impl Pass {
    fn keep(&mut self, e: Rc<Expr>) -> Rc<Expr> {
        self.made.push(e.clone());
        e
    }

    /// The hash-consed id of `e`; `None` past the deadline (interning a large atom
    /// walks its whole DAG).
    fn id(&mut self, e: &Rc<Expr>) -> Option<usize> {
        self.interner.id_by(e, self.deadline.as_ref())
    }

    fn atom(&mut self, e: Rc<Expr>) -> Option<Atom> {
        let id = self.id(&e)?;
        if let Some(a) = self.atom_of.get(&id) {
            return Some(*a);
        }
        let a = self.atoms.len() as Atom;
        self.atom_nodes.insert(Rc::as_ptr(&e));
        self.atoms.push(e);
        self.atom_of.insert(id, a);
        Some(a)
    }

    /// The pass on one node, memoised by pointer.
    fn go(&mut self, e: &Rc<Expr>) -> Rc<Expr> {
        let key = Rc::as_ptr(e);
        if let Some(done) = self.memo.get(&key) {
            return done.clone();
        }
        if self.deadline.is_some_and(|deadline| deadline.passed()) {
            return e.clone();
        }
        let res = self.go_uncached(e);
        self.memo.insert(key, res.clone());
        let rebuild_of_e = self.rebuilt.get(&Rc::as_ptr(&res)) == Some(&key);
        if self.record && !Rc::ptr_eq(&res, e) && !rebuild_of_e {
            self.hints.push((e.clone(), res.clone()));
        }
        res
    }

    fn go_uncached(&mut self, e: &Rc<Expr>) -> Rc<Expr> {
        if is_diagonal(e) && !matches!(e.kind, ExprKind::Diag(_)) {
            return self.diagonal(e);
        }
        if let ExprKind::Add(..) | ExprKind::Sub(..) = e.kind {
            if !e.shape.is_scalar() {
                if let Some(factored) = self.factor_sum(e) {
                    return factored;
                }
            }
        }
        if is_field_op(e) {
            return self.elementwise(e);
        }
        match &e.kind {
            ExprKind::Mul(..) => self.word(e),
            ExprKind::Pow(a, k) => {
                let a = self.go(a);
                if let ExprKind::Pow(b, j) = &a.kind {
                    if j.checked_mul(*k).is_some_and(|p| p != 0 && p != -1) {
                        return self.keep(build::pow(b.clone(), j * k));
                    }
                }
                self.rebuild(e, vec![a])
            }
            ExprKind::Func(Func::Log, a) => {
                let a = self.go(a);
                if let ExprKind::Softmax(z) = &a.kind {
                    // log softmax(z) = z − logsumexp(z)
                    let lse = self.keep(build::logsumexp(z.clone()));
                    return self.keep(build::sub(z.clone(), lse));
                }
                if let Some(t) = self.one_plus_exp(&a) {
                    // log(1 + exp t) = softplus(t)
                    return self.keep(build::func(Func::Softplus, t));
                }
                self.rebuild(e, vec![a])
            }
            _ => {
                let kids: Vec<Rc<Expr>> = e.children().into_iter().map(|c| self.go(c)).collect();
                self.rebuild(e, kids)
            }
        }
    }

    /// `e` with new children; `e` itself when they are the same.
    fn rebuild(&mut self, e: &Rc<Expr>, kids: Vec<Rc<Expr>>) -> Rc<Expr> {
        let same = e
            .children()
            .iter()
            .zip(&kids)
            .all(|(a, b)| Rc::ptr_eq(a, b));
        if same {
            return e.clone();
        }
        let mut node = e.as_ref().clone();
        for (slot, kid) in node.children_mut().into_iter().zip(kids) {
            *slot = kid;
        }
        let node = self.keep(Rc::new(node));
        self.rebuilt.insert(Rc::as_ptr(&node), Rc::as_ptr(e));
        node
    }

    /// `t` if `a` is `1 + exp(t)` (in either order).
    fn one_plus_exp(&mut self, a: &Rc<Expr>) -> Option<Rc<Expr>> {
        let ExprKind::Add(x, y) = &a.kind else {
            return None;
        };
        let (one, other) = if x.is_one() { (x, y) } else { (y, x) };
        if !one.is_one() {
            return None;
        }
        match &other.kind {
            ExprKind::Func(Func::Exp, t) if t.shape == a.shape => Some(t.clone()),
            _ => None,
        }
    }

    // ---- elementwise regions ----

    /// The rational function of an elementwise region, atoms passed through first.
    fn rat(&mut self, e: &Rc<Expr>, shape: &Shape) -> Option<Rat> {
        if Rc::strong_count(e) == 1 {
            return self.rat_uncached(e, shape);
        }
        let key = (Rc::as_ptr(e), self.exp_as_sigma, shape.clone());
        if let Some(done) = self.rats.get(&key) {
            return done.clone();
        }
        let done = self.rat_uncached(e, shape);
        self.keep(e.clone());
        self.rats.insert(key, done.clone());
        done
    }

    fn rat_uncached(&mut self, e: &Rc<Expr>, shape: &Shape) -> Option<Rat> {
        use ExprKind::*;
        // A region of a thousand factors is one call from `go`: past the deadline it is
        // left as it is.
        if self.deadline.is_some_and(|deadline| deadline.passed()) {
            return None;
        }
        if let Some(q) = e.as_constant() {
            return Some(Rat::constant(q));
        }
        if !is_field_op(e) {
            if matches!(e.kind, Ones) && e.shape == *shape {
                return Some(Rat::constant(Rational::one()));
            }
            if let Func(crate::expr::Func::Sqrt, argument) = &e.kind {
                if let Some(rat) = self.sqrt_of_square_content(argument) {
                    return Some(rat);
                }
            }
            let processed = self.go(e);
            if let (true, ExprKind::Func(crate::expr::Func::Exp, t)) =
                (self.exp_as_sigma, &processed.kind)
            {
                // exp(t) = σ(t) / (1 − σ(t))
                let sigma = self.keep(build::func(crate::expr::Func::Sigma, t.clone()));
                let s = self.atom(sigma)?;
                let one_minus = Rat::from_poly(BTreeMap::from([
                    (vec![], Rational::one()),
                    (vec![(s, 1)], -Rational::one()),
                ]));
                return Some(Rat::atom(s).mul(&one_minus.pow(-1)?));
            }
            return Some(Rat::atom(self.atom(processed)?));
        }
        Some(match &e.kind {
            Add(a, b) => self.rat(a, shape)?.add(&self.rat(b, shape)?)?,
            Sub(a, b) => self.rat(a, shape)?.add(&self.rat(b, shape)?.neg())?,
            Neg(a) => self.rat(a, shape)?.neg(),
            Hadamard(a, b) | Mul(a, b) => self.rat(a, shape)?.mul(&self.rat(b, shape)?),
            ElemDiv(a, b) | Div(a, b) => self.rat(a, shape)?.mul(&self.rat(b, shape)?.pow(-1)?),
            ElemPow(a, q) => {
                let k: i64 = q.to_integer().try_into().ok()?;
                self.rat(a, shape)?.pow(k)?
            }
            _ => return None,
        })
    }

    /// `sqrt(c·p) = √c·sqrt(p)` when the content `c` of the argument's rational function
    /// is the square of a rational (c > 0, so the domain is p ≥ 0 either way): the root
    /// can then cancel with the region around it, `½ ⊘ sqrt(1 − ¼x ⊙ x)` = `𝟙 ⊘
    /// sqrt(4 − x ⊙ x)` (the derivative of arcsin(½x)).
    fn sqrt_of_square_content(&mut self, argument: &Rc<Expr>) -> Option<Rat> {
        let rat = self.rat(argument, &argument.shape)?;
        if !rat.coeff.is_positive() || rat.coeff.is_one() {
            return None;
        }
        let root = |n: &num_bigint::BigInt| {
            let r = n.sqrt();
            (&r * &r == *n).then_some(r)
        };
        let (numer, denom) = (root(rat.coeff.numer())?, root(rat.coeff.denom())?);
        let unit = Rat {
            coeff: Rational::one(),
            ..rat
        };
        let inner = self.rat_expr(&unit, &argument.shape)?;
        let sqrt = self.keep(build::func(crate::expr::Func::Sqrt, inner));
        let atom = self.atom(sqrt)?;
        Some(Rat::constant(Rational::new(numer, denom)).mul(&Rat::atom(atom)))
    }

    /// The region `e` with only its atoms passed through.
    fn same_region(&mut self, e: &Rc<Expr>) -> Rc<Expr> {
        if !is_field_op(e) {
            return self.go(e);
        }
        if let Some(done) = self.same_regions.get(&Rc::as_ptr(e)) {
            return done.clone();
        }
        if self.deadline.is_some_and(|deadline| deadline.passed()) {
            return e.clone();
        }
        let kids: Vec<Rc<Expr>> = e
            .children()
            .into_iter()
            .map(|c| self.same_region(c))
            .collect();
        let done = self.rebuild(e, kids);
        self.keep(e.clone());
        self.same_regions.insert(Rc::as_ptr(e), done.clone());
        done
    }

    fn elementwise(&mut self, e: &Rc<Expr>) -> Rc<Expr> {
        let mut best = self.same_region(e);
        for exp_as_sigma in [false, true] {
            self.exp_as_sigma = exp_as_sigma;
            let rat = self.rat(e, &e.shape);
            self.exp_as_sigma = false;
            let Some(rat) = rat else {
                continue;
            };
            let rat = self.recognise_sigma(rat);
            if let Some(candidate) = self.rat_expr(&rat, &e.shape) {
                if self.smaller(&candidate, &best) {
                    best = candidate;
                }
            }
        }
        best
    }

    /// Whether `a` has fewer nodes than `b`, an atom counting its own size up to
    /// [`ATOM_SIZE`] (both counts stop at a budget: a shared subtree could unfold to an
    /// exponential tree).
    fn smaller(&self, a: &Rc<Expr>, b: &Rc<Expr>) -> bool {
        fn size(e: &Expr, atoms: &HashSet<*const Expr>, budget: &mut usize) {
            if *budget == 0 {
                return;
            }
            if atoms.contains(&(e as *const Expr)) {
                let mut own = ATOM_SIZE;
                size(e, &HashSet::new(), &mut own);
                *budget = budget.saturating_sub(ATOM_SIZE - own);
                return;
            }
            *budget -= 1;
            for c in e.children() {
                size(c, atoms, budget);
            }
        }
        const BUDGET: usize = 4096;
        let (mut left, mut right) = (BUDGET, BUDGET);
        size(a, &self.atom_nodes, &mut left);
        size(b, &self.atom_nodes, &mut right);
        left > right
    }

    /// `exp(t)ᵏ ⊘ (1 + exp(t))ʲ` in σ-form: `σ(t)^min(k,j) (1 − σ(t))^(j − min(k,j))`.
    fn recognise_sigma(&mut self, mut rat: Rat) -> Rat {
        let mut index = 0;
        while index < rat.factors.len() {
            let (p, e) = rat.factors[index].clone();
            let Some(exp_atom) = self.one_plus_atom(&p) else {
                index += 1;
                continue;
            };
            let ExprKind::Func(Func::Exp, t) = &self.atoms[exp_atom as usize].kind else {
                index += 1;
                continue;
            };
            if e >= 0 {
                index += 1;
                continue;
            }
            let t = t.clone();
            let sigma = self.keep(build::func(Func::Sigma, t));
            let Some(s) = self.atom(sigma) else {
                return rat;
            };
            let have = rat
                .mono
                .iter()
                .find(|(a, _)| *a == exp_atom)
                .map_or(0, |(_, k)| *k)
                .max(0);
            let k = have.min(-e);
            rat.factors.remove(index);
            rat.mono = mono_mul(&rat.mono, &vec![(exp_atom, k)], -1);
            rat.mono = mono_mul(&rat.mono, &vec![(s, k)], 1);
            if -e - k > 0 {
                let one_minus = Rat::from_poly(BTreeMap::from([
                    (vec![], Rational::one()),
                    (vec![(s, 1)], -Rational::one()),
                ]));
                if let Some(power) = one_minus.pow(-e - k) {
                    rat = rat.mul(&power);
                }
            }
            index = 0;
        }
        rat
    }

    /// The atom `a` if `p` is `1 + a`.
    fn one_plus_atom(&self, p: &Poly) -> Option<Atom> {
        if p.len() != 2 || p.get(&Vec::new()) != Some(&Rational::one()) {
            return None;
        }
        p.iter().find_map(|(m, c)| match m.as_slice() {
            [(a, 1)] if c.is_one() => Some(*a),
            _ => None,
        })
    }

    /// An expression for `rat` of the region's `shape`, if there is one.
    fn rat_expr(&mut self, rat: &Rat, shape: &Shape) -> Option<Rc<Expr>> {
        let mut num: Vec<Rc<Expr>> = vec![];
        let mut den: Vec<Rc<Expr>> = vec![];
        let mut negative = rat.coeff.is_negative();
        // A negative sign goes into a factor 1 − s rather than in front.
        let mut flip: Option<usize> = None;
        if negative {
            flip = rat.factors.iter().position(|(_, e)| *e == 1);
            if flip.is_some() {
                negative = false;
            }
        }
        for (a, e) in &rat.mono {
            let base = self.atoms[*a as usize].clone();
            let power = self.power(base, e.abs());
            if *e > 0 { &mut num } else { &mut den }.push(power);
        }
        for (index, (p, e)) in rat.factors.iter().enumerate() {
            let base = self.poly_expr(p, flip == Some(index))?;
            let power = self.power(base, e.abs());
            if *e > 0 { &mut num } else { &mut den }.push(power);
        }
        let magnitude = rat.coeff.abs();
        let mut res = match magnitude.is_one() {
            true => self.product(num),
            false => {
                let k = self.keep(build::constant(magnitude.clone()));
                self.scaled(k, num)
            }
        };
        if res.is_none() {
            res = Some(self.keep(build::constant(magnitude)));
        }
        let mut res = res?;
        if let Some(d) = self.product(den) {
            res = if d.shape.is_scalar() {
                self.keep(build::div(res, d))
            } else {
                self.keep(build::elem_div(res, d))
            };
        }
        if negative {
            res = self.keep(build::neg(res));
        }
        if res.shape != *shape {
            if res.shape.is_scalar() && shape.is_col_vector() {
                let ones = self.keep(build::ones(shape.rows.clone()));
                res = self.keep(build::mul(res, ones));
            } else if res.shape.is_scalar() && shape.transposed().is_col_vector() {
                // A constant row, −β𝟙ᵀ: uᵀ − β − uᵀ would otherwise stay as it is.
                let ones = self.keep(build::ones(shape.cols.clone()));
                let row = self.keep(build::transpose(ones));
                res = self.keep(build::mul(res, row));
            } else {
                return None;
            }
        }
        Some(res)
    }

    /// `base` to the `k`th elementwise power, `base^{∘k}`.
    fn power(&mut self, base: Rc<Expr>, k: i64) -> Rc<Expr> {
        match k {
            1 => base,
            _ => self.keep(build::elem_pow(base, Rational::from_integer(k.into()))),
        }
    }

    /// The product of `factors`: scalars first as scaling, then `⊙`.
    fn product(&mut self, mut factors: Vec<Rc<Expr>>) -> Option<Rc<Expr>> {
        factors.sort_by_key(|f| !f.shape.is_scalar());
        let mut iter = factors.into_iter();
        let mut res = iter.next()?;
        for f in iter {
            res = if res.shape.is_scalar() || f.shape.is_scalar() {
                self.keep(build::mul(res, f))
            } else {
                self.keep(build::hadamard(res, f))
            };
        }
        Some(res)
    }

    /// A polynomial as a sum: positive terms first (constants first), then the
    /// negative ones subtracted; `negated` writes `−p`.
    fn poly_expr(&mut self, p: &Poly, negated: bool) -> Option<Rc<Expr>> {
        let mut terms: Vec<(&Mono, Rational)> = p
            .iter()
            .map(|(m, c)| (m, if negated { -c.clone() } else { c.clone() }))
            .collect();
        terms.sort_by(|a, b| {
            a.1.is_negative()
                .cmp(&b.1.is_negative())
                .then_with(|| grlex(a.0, b.0))
        });
        let mut res: Option<Rc<Expr>> = None;
        for (mono, c) in terms {
            let rat = Rat {
                coeff: c.abs(),
                mono: mono.clone(),
                factors: vec![],
            };
            let term = self.rat_expr_loose(&rat)?;
            res = Some(match res {
                None if c.is_negative() => self.keep(build::neg(term)),
                None => term,
                Some(acc) if c.is_negative() => self.keep(build::sub(acc, term)),
                Some(acc) => self.keep(build::add(acc, term)),
            });
        }
        res
    }

    /// A monomial with a positive coefficient, of whatever shape its atoms give it.
    fn rat_expr_loose(&mut self, rat: &Rat) -> Option<Rc<Expr>> {
        let mut factors = vec![];
        for (a, e) in &rat.mono {
            let base = self.atoms[*a as usize].clone();
            factors.push(self.power(base, *e));
        }
        if factors.is_empty() || !rat.coeff.is_one() {
            let k = self.keep(build::constant(rat.coeff.clone()));
            return self.scaled(k, factors);
        }
        self.product(factors)
    }

    /// The number `k` times the product of `factors`: with the scalar factors when there
    /// are any, `(k·s)·x`, which prints `2 exp(t)x`; `k·(s·x)` prints `2(exp(t)x)`.
    fn scaled(&mut self, k: Rc<Expr>, mut factors: Vec<Rc<Expr>>) -> Option<Rc<Expr>> {
        if factors.is_empty() || factors.iter().any(|f| f.shape.is_scalar()) {
            factors.insert(0, k);
            return self.product(factors);
        }
        let p = self.product(factors)?;
        Some(self.keep(build::mul(k, p)))
    }

    // ---- diagonal regions ----

    /// The rational function `r` of a diagonal region, `diag(r)`; `I` is 1.
    fn diag_rat(&mut self, e: &Rc<Expr>, vector: &Shape) -> Option<Rat> {
        use ExprKind::*;
        if e.shape.is_scalar() {
            return self.rat(e, vector);
        }
        Some(match &e.kind {
            Diag(v) => self.rat(v, vector)?,
            Identity => Rat::constant(Rational::one()),
            Neg(a) => self.diag_rat(a, vector)?.neg(),
            Transpose(a) => self.diag_rat(a, vector)?,
            Inverse(a) => self.diag_rat(a, vector)?.pow(-1)?,
            Pow(a, k) => self.diag_rat(a, vector)?.pow(*k)?,
            Add(a, b) => self.diag_rat(a, vector)?.add(&self.diag_rat(b, vector)?)?,
            Sub(a, b) => self
                .diag_rat(a, vector)?
                .add(&self.diag_rat(b, vector)?.neg())?,
            Mul(a, b) => self.diag_rat(a, vector)?.mul(&self.diag_rat(b, vector)?),
            Div(a, b) => self
                .diag_rat(a, vector)?
                .mul(&self.rat(b, vector)?.pow(-1)?),
            _ => return None,
        })
    }

    /// `diag(r)` for the rational function `r` of the `n×n` region `e`: `kI` when `r` is
    /// a scalar, `I` when it is 1.
    fn diag_expr(&mut self, rat: &Rat, n: &Dim) -> Option<Rc<Expr>> {
        let vector = Shape::vector(n.clone());
        let identity = self.keep(build::identity(n.clone()));
        if rat.coeff.is_one() && rat.mono.is_empty() && rat.factors.is_empty() {
            return Some(identity);
        }
        // A number goes in front, as in 2 diag(x).
        let magnitude = rat.coeff.abs();
        if magnitude.is_zero() {
            return None;
        }
        let unit = Rat {
            coeff: rat.coeff.clone() / &magnitude,
            ..rat.clone()
        };
        let v = self.rat_expr(&unit, &vector)?;
        let d = match &v.kind {
            ExprKind::Mul(k, ones) if matches!(ones.kind, ExprKind::Ones) => {
                self.keep(build::mul(k.clone(), identity))
            }
            _ => self.keep(build::diag(v)),
        };
        if magnitude.is_one() {
            return Some(d);
        }
        let k = self.keep(build::constant(magnitude));
        Some(self.keep(build::mul(k, d)))
    }

    fn diagonal(&mut self, e: &Rc<Expr>) -> Rc<Expr> {
        let kids: Vec<Rc<Expr>> = e.children().into_iter().map(|c| self.go(c)).collect();
        let same = self.rebuild(e, kids);
        match self.diag_candidate(e) {
            Some(candidate) if self.smaller(&candidate, &same) => candidate,
            _ => same,
        }
    }

    /// The smallest `diag(r)` form of the diagonal region `e`, with exponentials as they
    /// are or written in σ.
    fn diag_candidate(&mut self, e: &Rc<Expr>) -> Option<Rc<Expr>> {
        let n = e.shape.rows.clone();
        let vector = Shape::vector(n.clone());
        let mut best: Option<Rc<Expr>> = None;
        for exp_as_sigma in [false, true] {
            self.exp_as_sigma = exp_as_sigma;
            let rat = self.diag_rat(e, &vector);
            self.exp_as_sigma = false;
            let Some(rat) = rat else {
                continue;
            };
            let rat = self.recognise_sigma(rat);
            if let Some(candidate) = self.diag_expr(&rat, &n) {
                if best.as_ref().is_none_or(|b| self.smaller(&candidate, b)) {
                    best = Some(candidate);
                }
            }
        }
        best
    }

    // ---- products and sums of products ----

    /// The factors of a matrix product (non-scalar factors, scalar ones kept in place).
    fn factors(e: &Rc<Expr>, out: &mut Vec<Rc<Expr>>) {
        match &e.kind {
            ExprKind::Mul(a, b) if !a.shape.is_scalar() && !b.shape.is_scalar() => {
                Pass::factors(a, out);
                Pass::factors(b, out);
            }
            _ => out.push(e.clone()),
        }
    }

    /// The first (`first`) or last factor [`Pass::factors`] would write of `e`.
    fn end_factor(e: &Rc<Expr>, first: bool) -> Rc<Expr> {
        let mut at = e;
        while let ExprKind::Mul(a, b) = &at.kind {
            if a.shape.is_scalar() || b.shape.is_scalar() {
                break;
            }
            at = if first { a } else { b };
        }
        at.clone()
    }

    /// A product with adjacent diagonal factors merged, identities dropped and equal
    /// adjacent factors made a power; `e` itself (children passed through) when nothing
    /// merges.
    fn word(&mut self, e: &Rc<Expr>) -> Rc<Expr> {
        // The factors of the children as the pass left them (memoised), runs already
        // merged: the k subproducts of a left-nested product of k factors then cost one
        // merge each, not a flattening of the whole prefix (quadratic: the 2 000-factor
        // xᵀA…Ax spent 380 ms here).
        let kids: Vec<Rc<Expr>> = e.children().into_iter().map(|c| self.go(c)).collect();
        let mut factors = vec![];
        for kid in &kids {
            Pass::factors(kid, &mut factors);
        }
        // Each entry: the factor as written (`None` for a run of equal factors, written
        // as one power when the run ends), its base and its exponent. Writing every
        // partial power of a run (AAA… = A², A³, …) was quadratic: 125 000 nodes for
        // the words of a 500-factor Hessian.
        let mut merged: Vec<(Option<Rc<Expr>>, Rc<Expr>, i64)> = vec![];
        let mut changed = false;
        for f in factors {
            if matches!(f.kind, ExprKind::Identity) {
                changed = true;
                continue;
            }
            if let Some((written, base, k)) = merged.last().cloned() {
                let last_diagonal = match &written {
                    Some(last) => is_diagonal(last),
                    None => is_diagonal(&base) && k.abs() <= MAX_POWER,
                };
                if last_diagonal && is_diagonal(&f) {
                    let last = match written {
                        Some(last) => last,
                        None => self.keep(build::pow(base.clone(), k)),
                    };
                    let product = self.keep(build::mul(last, f.clone()));
                    if let Some(d) = self.diag_candidate(&product) {
                        merged.pop();
                        changed = true;
                        if !matches!(d.kind, ExprKind::Identity) {
                            let (db, dk) = self.power_parts(&d);
                            merged.push((Some(d), db, dk));
                        }
                        continue;
                    }
                }
                let (fb, fk) = self.power_parts(&f);
                if base.shape.is_square()
                    && self.id(&base).is_some()
                    && self.id(&base) == self.id(&fb)
                {
                    let sum = k + fk;
                    if sum != 0 && sum != -1 && sum.abs() <= 1 << 20 {
                        merged.pop();
                        merged.push((None, base, sum));
                        changed = true;
                        continue;
                    }
                }
            }
            let (fb, fk) = self.power_parts(&f);
            merged.push((Some(f), fb, fk));
        }
        if !changed {
            return self.rebuild(e, kids);
        }
        if merged.is_empty() {
            return self.keep(build::identity(e.shape.rows.clone()));
        }
        let merged: Vec<Rc<Expr>> = merged
            .into_iter()
            .map(|(written, base, k)| match written {
                Some(written) => written,
                None => self.keep(build::pow(base, k)),
            })
            .collect();
        self.nested(merged)
    }

    /// `(base, k)` for `baseᵏ` and for `(bᵏ)ᵀ`, whose base is `bᵀ` (so that `(X⁴)ᵀXᵀ`,
    /// as the adjoint of a product reads, is `(Xᵀ)⁵`), `(e, 1)` otherwise.
    fn power_parts(&mut self, e: &Rc<Expr>) -> (Rc<Expr>, i64) {
        match &e.kind {
            ExprKind::Pow(b, k) => (b.clone(), *k),
            ExprKind::Transpose(p) => match &p.kind {
                // Kept: the interner knows nodes by address, so a node it has seen must
                // outlive the pass.
                ExprKind::Pow(b, k) => (self.keep(build::transpose(b.clone())), *k),
                _ => (e.clone(), 1),
            },
            _ => (e.clone(), 1),
        }
    }

    /// The product of `factors`, left-nested as a person reads `ABC`.
    fn nested(&mut self, factors: Vec<Rc<Expr>>) -> Rc<Expr> {
        let mut iter = factors.into_iter();
        let mut res = iter.next().unwrap_or_else(|| build::int(1));
        for f in iter {
            res = self.keep(build::mul(res, f));
        }
        res
    }

    /// A sum of products sharing a leading or trailing factor, with it taken out, and the
    /// result passed through; `None` when the terms share nothing.
    fn factor_sum(&mut self, e: &Rc<Expr>) -> Option<Rc<Expr>> {
        let mut terms: Vec<(bool, Rc<Expr>)> = vec![];
        flatten_sum(e, false, &mut terms);
        if terms.len() < 2 || terms.iter().any(|(_, t)| t.shape != e.shape) {
            return None;
        }
        // Terms that share neither their first nor their last factor share nothing; the
        // spines tell without writing out every word (quadratic in a long product).
        let ends: Vec<(Rc<Expr>, Rc<Expr>)> = terms
            .iter()
            .map(|(_, term)| {
                let word = scalars_and_word_top(term);
                (
                    Pass::end_factor(&word, true),
                    Pass::end_factor(&word, false),
                )
            })
            .collect();
        let mut shares_an_end = false;
        for first in [true, false] {
            let mut ids = vec![];
            for (head, tail) in &ends {
                ids.push(self.id(if first { head } else { tail })?);
            }
            shares_an_end |= ids.iter().all(|id| *id == ids[0]);
        }
        if !shares_an_end {
            return None;
        }
        // Each term as scalar factors and a word.
        let mut split: Vec<Term> = vec![];
        for (negative, term) in &terms {
            let (scalars, word) = scalars_and_word(term);
            if word.is_empty() {
                return None;
            }
            split.push((*negative, scalars, word));
        }
        let ids: Vec<Vec<usize>> = split
            .iter()
            .map(|(_, _, w)| w.iter().map(|f| self.id(f)).collect::<Option<Vec<_>>>())
            .collect::<Option<_>>()?;
        let shortest = ids.iter().map(Vec::len).min().unwrap_or(0);
        let mut prefix = 0;
        while prefix < shortest && ids.iter().all(|w| w[prefix] == ids[0][prefix]) {
            prefix += 1;
        }
        let mut suffix = 0;
        while suffix + prefix < shortest
            && ids
                .iter()
                .all(|w| w[w.len() - 1 - suffix] == ids[0][ids[0].len() - 1 - suffix])
        {
            suffix += 1;
        }
        // A middle that would be empty is an identity, which needs a square gap.
        if prefix + suffix == 0 {
            return None;
        }
        let first = &split[0].2;
        let rows = if prefix > 0 {
            first[prefix - 1].shape.cols.clone()
        } else {
            first[first.len() - suffix].shape.rows.clone()
        };
        let mut middle: Option<Rc<Expr>> = None;
        for (negative, scalars, word) in &split {
            let inner = &word[prefix..word.len() - suffix];
            let mut term = if inner.is_empty() {
                let n = if prefix > 0 {
                    word[prefix - 1].shape.cols.clone()
                } else {
                    word[word.len() - suffix].shape.rows.clone()
                };
                if n != rows {
                    return None;
                }
                self.keep(build::identity(n))
            } else {
                self.nested(inner.to_vec())
            };
            for k in scalars.iter().rev() {
                term = self.keep(build::mul(k.clone(), term));
            }
            middle = Some(match middle {
                None if *negative => self.keep(build::neg(term)),
                None => term,
                Some(acc) if *negative => self.keep(build::sub(acc, term)),
                Some(acc) => self.keep(build::add(acc, term)),
            });
        }
        let middle = middle?;
        // Only what then meets in one diagonal region (a Hessian's Xᵀ(Σ Dᵢ)X): other
        // factorings are the rules' business, and made here they would preempt
        // the repeats that `where` names come from.
        if !is_diagonal(&middle) {
            return None;
        }
        let mut word: Vec<Rc<Expr>> = first[..prefix].to_vec();
        word.push(middle);
        word.extend(first[first.len() - suffix..].iter().cloned());
        let factored = self.nested(word);
        let factored = self.go(&factored);
        let kids: Vec<Rc<Expr>> = e.children().into_iter().map(|c| self.go(c)).collect();
        let same = self.rebuild(e, kids);
        self.smaller(&factored, &same).then_some(factored)
    }
}

/// A term of a sum: whether it is subtracted, its scalar factors and its word.
type Term = (bool, Vec<Rc<Expr>>, Vec<Rc<Expr>>);

/// The terms of a sum, each with whether it is subtracted.
fn flatten_sum(e: &Rc<Expr>, negative: bool, out: &mut Vec<(bool, Rc<Expr>)>) {
    match &e.kind {
        ExprKind::Add(a, b) if a.shape == b.shape => {
            flatten_sum(a, negative, out);
            flatten_sum(b, negative, out);
        }
        ExprKind::Sub(a, b) if a.shape == b.shape => {
            flatten_sum(a, negative, out);
            flatten_sum(b, !negative, out);
        }
        ExprKind::Neg(a) => flatten_sum(a, !negative, out),
        _ => out.push((negative, e.clone())),
    }
}

/// A term's scalar factors (in order) and the non-scalar factors of its matrix product.
fn scalars_and_word(term: &Rc<Expr>) -> (Vec<Rc<Expr>>, Vec<Rc<Expr>>) {
    let mut scalars = vec![];
    let mut at = term.clone();
    while let Some((k, a)) = leading_scalar(&at) {
        scalars.push(k);
        at = a;
    }
    let mut word = vec![];
    Pass::factors(&at, &mut word);
    (scalars, word)
}

/// `term` without the scalar factors [`scalars_and_word`] takes off: the product its
/// word is the factors of.
fn scalars_and_word_top(term: &Rc<Expr>) -> Rc<Expr> {
    let mut at = term.clone();
    while let Some((_, a)) = leading_scalar(&at) {
        at = a;
    }
    at
}

/// `(k, a)` for a product `k·a` or `a·k` of a scalar k and a non-scalar a.
fn leading_scalar(e: &Rc<Expr>) -> Option<(Rc<Expr>, Rc<Expr>)> {
    match &e.kind {
        ExprKind::Mul(k, a) if k.shape.is_scalar() && !a.shape.is_scalar() => {
            Some((k.clone(), a.clone()))
        }
        ExprKind::Mul(a, k) if k.shape.is_scalar() && !a.shape.is_scalar() => {
            Some((k.clone(), a.clone()))
        }
        _ => None,
    }
}
