//! The normal form: associativity, commutativity, scalar placement and transposes taken
//! out of the rewrite rules and settled once, by construction.
//!
//! - A sum is flat: a map from monomial to exact coefficient, sorted by a structural key,
//!   like terms merged, no zero coefficients (except one that keeps a matrix's shape).
//! - A monomial is coefficient × sorted scalar multiset (with integer exponents) × word:
//!   the ordered non-scalar factors. A 1×1 stretch of a word (`W(zᵀx)y`) moves to the
//!   multiset, as `zᵀx` or `xᵀz`, whichever is smaller: a scalar is its own transpose.
//! - A letter of a word is an atom with a transpose bit and an integer power; adjacent
//!   equal letters merge (`XX⁻¹ = I`, `XXX = X³`), the identity is the empty word.
//! - Transposes sit on opaque leaves only: `(AB)ᵀ = BᵀAᵀ`, `(A + B)ᵀ = Aᵀ + Bᵀ`,
//!   `(A ⊙ B)ᵀ = Aᵀ ⊙ Bᵀ`, `σ(A)ᵀ = σ(Aᵀ)`; a symmetric atom drops its bit.
//! - A Hadamard product is a sorted multiset of factors; `𝟙 ⊙ a = a`; scalars move out.
//! - A trace is linear and its word rotated to the least of its rotations and of those of
//!   its transpose; a trace whose word passes through a 1 becomes that scalar
//!   (`tr(xyᵀ) = yᵀx`).
//!
//! Sums inside products are not expanded (expansion is exponential); they are atoms,
//! normalised inside. Nodes this module does not know are opaque atoms with normalised
//! children. The order is the byte order of a structural key (an s-expression), never an
//! e-class id or a hash, so the same input always gives the same form.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use num_traits::{One, Signed, Zero};

use crate::expr::{build, Dim, Expr, ExprKind, Func, Rational, Shape, Symbol, VarDecl};

/// `expr` in normal form, for variables with the properties in `vars` (a declared
/// symmetric variable drops its transposes). The value and shape are unchanged.
pub fn normalise(expr: &Expr, vars: &BTreeMap<Symbol, VarDecl>) -> Expr {
    let mut normaliser = Normaliser {
        vars,
        memo: HashMap::new(),
    };
    let input = Rc::new(expr.clone());
    let poly = normaliser.poly(&input);
    poly_expr(&poly).as_ref().clone()
}

/// The normal form of one value, shared: what the e-class analysis keeps for each class
/// (see [`super::analysis`]), so that classes equal up to associativity, commutativity,
/// scalar placement and transposes are recognised by their keys.
#[derive(Clone, Debug)]
pub struct Normal {
    poly: Rc<Poly>,
    key: Rc<str>,
    size: usize,
}

impl Normal {
    fn of(poly: Rc<Poly>) -> Normal {
        let key = poly.key();
        let size = key.len();
        Normal {
            poly,
            key: bounded(key),
            size,
        }
    }

    /// The structural key: equal keys mean equal normal forms.
    pub fn key(&self) -> &Rc<str> {
        &self.key
    }

    /// The length of the key written out in full: how large the normal form is.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The normal form as an expression, in the fixed association of [`normalise`].
    pub fn expr(&self) -> Rc<Expr> {
        poly_expr(&self.poly)
    }

    /// How many terms the normal form's sum has.
    pub fn terms(&self) -> usize {
        self.poly.terms.len()
    }
}

/// The normal form of `node`, whose children are the leaves of `children`, each standing
/// for a value with the normal form given beside it (shapes as the leaves say).
pub fn normal_of_node(
    node: &Rc<Expr>,
    children: &[(Rc<Expr>, Normal)],
    vars: &BTreeMap<Symbol, VarDecl>,
) -> Normal {
    let mut normaliser = Normaliser {
        vars,
        memo: children
            .iter()
            .map(|(leaf, normal)| (Rc::as_ptr(leaf), (leaf.clone(), normal.poly.clone())))
            .collect(),
    };
    Normal::of(normaliser.poly(node))
}

/// The normal form of each of `nodes`, subterms of one another (shared through
/// [`Rc`]), in one pass: each normalised once, whatever shares it.
pub fn normalise_each(nodes: &[Rc<Expr>], vars: &BTreeMap<Symbol, VarDecl>) -> Vec<Rc<Expr>> {
    let mut normaliser = Normaliser {
        vars,
        memo: HashMap::new(),
    };
    nodes
        .iter()
        .map(|node| poly_expr(&normaliser.poly(node)))
        .collect()
}

/// `expr` with every chain of products grouped to the right (`A(BC)` for `(AB)C`), the
/// scalars in front staying in front: the grouping that shows a chain's first factor,
/// as the normal form's left grouping shows its last, so that a rule can take out a
/// common first factor of two terms (`XA + XB = X(A + B)`).
pub fn right_grouped(expr: &Rc<Expr>, memo: &mut HashMap<*const Expr, Rc<Expr>>) -> Rc<Expr> {
    let key = Rc::as_ptr(expr);
    if let Some(done) = memo.get(&key) {
        return done.clone();
    }
    let mut factors = vec![];
    if let ExprKind::Mul(..) = expr.kind {
        chain_factors(expr, &mut factors);
    }
    let res = match &expr.kind {
        ExprKind::Mul(..) if factors.len() > 1 => {
            let factors: Vec<Rc<Expr>> = factors.iter().map(|f| right_grouped(f, memo)).collect();
            let split = factors
                .iter()
                .position(|f| !f.shape.is_scalar())
                .unwrap_or(factors.len());
            let (scalars, matrices) = factors.split_at(split);
            let chain = matrices
                .iter()
                .cloned()
                .rev()
                .reduce(|acc, f| build::mul(f, acc));
            let scale = scalars.iter().cloned().reduce(build::mul);
            match (scale, chain) {
                (Some(k), Some(c)) => build::mul(k, c),
                (Some(k), None) => k,
                (None, Some(c)) => c,
                (None, None) => expr.clone(),
            }
        }
        _ => expr.map_children(|child| right_grouped(child, memo)),
    };
    memo.insert(key, res.clone());
    res
}

/// The factors of a chain of products, in order: scalars only where they lead the chain.
fn chain_factors(expr: &Rc<Expr>, out: &mut Vec<Rc<Expr>>) {
    match &expr.kind {
        ExprKind::Mul(a, b) if !b.shape.is_scalar() && (out.is_empty() || !a.shape.is_scalar()) => {
            chain_factors(a, out);
            chain_factors(b, out);
        }
        _ => out.push(expr.clone()),
    }
}

/// What a letter's base is, as far as transposing it is concerned.
#[derive(Clone, Debug)]
enum Inner {
    /// A leaf or a node this module treats as opaque: a transpose stays on it.
    Opaque,
    /// A sum used as a factor.
    Sum(Rc<Poly>),
    /// A Hadamard product of at least two factors (each a word, coefficient one).
    Had(Rc<Vec<Mono>>),
    /// A product used as one factor (`(AB)⁻¹`).
    Word(Rc<Mono>),
    /// An elementwise function of a matrix.
    Func(Func, Rc<Poly>),
}

/// A factor of a word: `baseᵀᵖ`.
#[derive(Clone, Debug)]
struct Letter {
    base: Rc<Expr>,
    key: Rc<str>,
    inner: Inner,
    symmetric: bool,
    transposed: bool,
    power: i64,
}

impl Letter {
    fn atom(base: Rc<Expr>, key: String, inner: Inner, symmetric: bool) -> Letter {
        Letter {
            base,
            key: bounded(key),
            inner,
            symmetric,
            transposed: false,
            power: 1,
        }
    }

    /// The shape of the letter's value.
    fn shape(&self) -> Shape {
        if self.transposed {
            self.base.shape.transposed()
        } else {
            self.base.shape.clone()
        }
    }

    fn same_base(&self, other: &Letter) -> bool {
        self.key == other.key && self.transposed == other.transposed
    }

    fn key(&self) -> String {
        let mut key = self.key.to_string();
        // After every other character: of two equal keys, the one without transposes
        // wins.
        if self.transposed {
            key.push('ᵀ');
        }
        if self.power != 1 {
            key += &format!("^{}", self.power);
        }
        key
    }
}

/// A scalar atom with its exponent.
#[derive(Clone, Debug)]
struct ScalarAtom {
    expr: Rc<Expr>,
    key: Rc<str>,
    exponent: i64,
}

/// `scalars · word`, of the given shape (an empty word is the identity of that shape;
/// a 1×1 monomial has an empty word).
#[derive(Clone, Debug)]
struct Mono {
    shape: Shape,
    scalars: Vec<ScalarAtom>,
    word: Vec<Letter>,
}

impl Mono {
    fn one(shape: Shape) -> Mono {
        Mono {
            shape,
            scalars: vec![],
            word: vec![],
        }
    }

    fn key(&self) -> String {
        let mut key = String::from("(*");
        for atom in &self.scalars {
            key += &format!(" {}^{}", atom.key, atom.exponent);
        }
        key += " |";
        if self.word.is_empty() && !self.shape.is_scalar() {
            key += &format!(" I#{}", self.shape.rows);
        }
        for letter in &self.word {
            key.push(' ');
            key += &letter.key();
        }
        key.push(')');
        key
    }

    fn word_key(&self) -> String {
        Mono {
            shape: self.shape.clone(),
            scalars: vec![],
            word: self.word.clone(),
        }
        .key()
    }
}

/// A flat sum of monomials with exact coefficients, sorted by the monomials' keys.
#[derive(Clone, Debug)]
struct Poly {
    shape: Shape,
    terms: Vec<(Rational, Mono, Rc<str>)>,
}

impl Poly {
    fn key(&self) -> String {
        let mut key = String::from("(+");
        for (coefficient, _, mono_key) in &self.terms {
            key += &format!(" {coefficient} {mono_key}");
        }
        key.push(')');
        key
    }

    fn constant(q: Rational) -> Poly {
        Poly::of(q, Mono::one(Shape::scalar()))
    }

    fn of(coefficient: Rational, mono: Mono) -> Poly {
        let shape = mono.shape.clone();
        let key = mono.key().into();
        let mut res = Poly {
            shape,
            terms: vec![(coefficient, mono, key)],
        };
        res.tidy();
        res
    }

    /// The single monomial of a one-term sum that has the sum's own shape.
    fn as_mono(&self) -> Option<(&Rational, &Mono)> {
        match self.terms.as_slice() {
            [(c, m, _)] if m.shape == self.shape => Some((c, m)),
            _ => None,
        }
    }

    fn scaled(mut self, k: &Rational) -> Poly {
        for (c, _, _) in &mut self.terms {
            *c = &*c * k;
        }
        self.tidy();
        self
    }

    /// Sorts, merges like terms and drops zeros. A matrix with no term of its own shape
    /// left is written with the zero term of [`zero_mono`].
    fn tidy(&mut self) {
        self.terms.sort_by(|a, b| a.2.cmp(&b.2));
        let mut merged: Vec<(Rational, Mono, Rc<str>)> = vec![];
        for term in self.terms.drain(..) {
            match merged.last_mut() {
                Some(last) if last.2 == term.2 => last.0 = &last.0 + &term.0,
                _ => merged.push(term),
            }
        }
        merged.retain(|(c, _, _)| !c.is_zero());
        if !self.shape.is_scalar() && !merged.iter().any(|(_, m, _)| m.shape == self.shape) {
            let zero = zero_mono(&self.shape);
            let key = zero.key().into();
            merged.insert(0, (Rational::zero(), zero, key));
        }
        self.terms = merged;
    }
}

/// The monomial a zero matrix is written with, `0·M`: `I` when square, else `𝟙`, `𝟙ᵀ`
/// or `𝟙𝟙ᵀ`; the same for every zero of a shape, whatever it came from.
fn zero_mono(shape: &Shape) -> Mono {
    if shape.rows == shape.cols {
        return Mono::one(shape.clone());
    }
    let ones = |n: &Dim, transposed: bool| Letter {
        transposed,
        ..Letter::atom(
            build::ones(n.clone()),
            format!("1#{n}"),
            Inner::Opaque,
            false,
        )
    };
    let mut word = vec![];
    if !shape.rows.is_one() {
        word.push(ones(&shape.rows, false));
    }
    if !shape.cols.is_one() {
        word.push(ones(&shape.cols, true));
    }
    Mono {
        shape: shape.clone(),
        scalars: vec![],
        word,
    }
}

fn sum_polys(shape: Shape, parts: Vec<Poly>) -> Poly {
    let mut res = Poly {
        shape,
        terms: parts.into_iter().flat_map(|p| p.terms).collect(),
    };
    res.tidy();
    res
}

/// The product of two scalar multisets, sorted and merged.
fn merge_scalars(a: &[ScalarAtom], b: &[ScalarAtom]) -> Vec<ScalarAtom> {
    let mut all: Vec<ScalarAtom> = a.iter().chain(b).cloned().collect();
    // Sums last, so that a coefficient is written next to an atom (`3b(b/2 − 3)`): next
    // to a sum alone it would be distributed when normalised again.
    all.sort_by(|x, y| (is_sum(&x.expr), &x.key).cmp(&(is_sum(&y.expr), &y.key)));
    let mut res: Vec<ScalarAtom> = vec![];
    for atom in all {
        match res.last_mut() {
            Some(last) if last.key == atom.key => last.exponent += atom.exponent,
            _ => res.push(atom),
        }
    }
    res.retain(|atom| atom.exponent != 0);
    res
}

/// Longest key kept as written; a longer one is replaced by a digest of it, so that the
/// key of a node nested n deep (each key holds its children's) stays short instead of
/// growing with n, and comparing keys stays cheap.
const MAX_KEY: usize = 96;

/// `key`, or a 128-bit digest of it when longer than [`MAX_KEY`]: a function of the key
/// alone (`DefaultHasher::new` has fixed keys), so the order stays the same from run to run; it only
/// orders long keys arbitrarily among themselves.
fn bounded(key: String) -> Rc<str> {
    if key.len() <= MAX_KEY {
        return key.into();
    }
    let digest = |seed: u8| {
        use std::hash::Hasher;
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write_u8(seed);
        hasher.write(key.as_bytes());
        hasher.finish()
    };
    format!("#{:016x}{:016x}", digest(1), digest(2)).into()
}

/// Most a coefficient is raised to exactly; beyond it the power stays an atom.
const MAX_EXPONENT: i64 = 64;

struct Normaliser<'a> {
    vars: &'a BTreeMap<Symbol, VarDecl>,
    /// Normal forms by input node, keeping the node alive so its address stays unique.
    memo: HashMap<*const Expr, (Rc<Expr>, Rc<Poly>)>,
}

impl Normaliser<'_> {
    fn poly(&mut self, expr: &Rc<Expr>) -> Rc<Poly> {
        let key = Rc::as_ptr(expr);
        if let Some((_, done)) = self.memo.get(&key) {
            return done.clone();
        }
        let res = Rc::new(self.compute(expr));
        self.memo.insert(key, (expr.clone(), res.clone()));
        res
    }

    fn compute(&mut self, expr: &Rc<Expr>) -> Poly {
        let shape = expr.shape.clone();
        match &expr.kind {
            ExprKind::Num(q) => Poly::constant(q.clone()),
            ExprKind::Var(name) => {
                let symmetric = self
                    .vars
                    .get(name)
                    .is_some_and(|d| d.props.symmetric || d.props.positive_definite);
                self.opaque(expr.clone(), name.clone(), symmetric)
            }
            ExprKind::Identity => Poly::of(Rational::one(), Mono::one(shape)),
            ExprKind::Ones => self.opaque(expr.clone(), format!("1#{}", shape.rows), false),
            ExprKind::Neg(a) => self.poly(a).as_ref().clone().scaled(&-Rational::one()),
            ExprKind::Add(a, b) => {
                let parts = vec![self.poly(a).as_ref().clone(), self.poly(b).as_ref().clone()];
                sum_polys(shape, parts)
            }
            ExprKind::Sub(a, b) => {
                let minus = self.poly(b).as_ref().clone().scaled(&-Rational::one());
                sum_polys(shape, vec![self.poly(a).as_ref().clone(), minus])
            }
            ExprKind::Mul(a, b) => {
                let (pa, pb) = (self.poly(a), self.poly(b));
                self.product(&pa, &pb, shape)
            }
            ExprKind::Div(a, b) if b.shape.is_scalar() => {
                let pa = self.poly(a);
                let pb = self.poly(b);
                let inverse = self.power(&pb, -1);
                self.product(&pa, &inverse, shape)
            }
            ExprKind::Hadamard(a, b) if a.shape.is_scalar() || b.shape.is_scalar() => {
                let (pa, pb) = (self.poly(a), self.poly(b));
                self.product(&pa, &pb, shape)
            }
            ExprKind::Hadamard(a, b) => {
                let (pa, pb) = (self.poly(a), self.poly(b));
                self.hadamard(&pa, &pb, shape)
            }
            ExprKind::Transpose(a) => {
                let pa = self.poly(a);
                self.transpose(&pa)
            }
            ExprKind::Inverse(a) => {
                let pa = self.poly(a);
                self.power(&pa, -1)
            }
            ExprKind::Pow(a, k) => {
                let pa = self.poly(a);
                self.power(&pa, *k)
            }
            ExprKind::Trace(a) => {
                let pa = self.poly(a);
                self.trace(&pa)
            }
            ExprKind::Sum(a) if !a.shape.is_scalar() => {
                let pa = self.poly(a);
                self.linear(&pa, |n, inner| {
                    let e = poly_expr(inner);
                    let key = format!("(sum {})", inner.key());
                    n.scalar_atom(build::sum(e), key)
                })
            }
            ExprKind::Diag(a) if a.shape.cols.is_one() && !a.shape.is_scalar() => {
                let pa = self.poly(a);
                if let Some((c, m)) = pa.as_mono() {
                    if c.is_one() && m.scalars.is_empty() && is_ones(&m.word) {
                        return Poly::of(Rational::one(), Mono::one(shape));
                    }
                }
                let key = format!("(diag {})", pa.key());
                self.opaque(build::diag(poly_expr(&pa)), key, true)
            }
            ExprKind::Func(f, a) => {
                let pa = self.poly(a);
                let key = format!("({} {})", f.name(), pa.key());
                let e = build::func(*f, poly_expr(&pa));
                if shape.is_scalar() {
                    self.scalar_atom(e, key)
                } else {
                    let letter = Letter::atom(e, key, Inner::Func(*f, pa), false);
                    Poly::of(Rational::one(), self.word_mono(shape, vec![], vec![letter]))
                }
            }
            ExprKind::Det(a) | ExprKind::LogDet(a) => {
                let log = matches!(expr.kind, ExprKind::LogDet(_));
                let pa = self.poly(a);
                self.determinant(&pa, log)
            }
            _ => {
                // Anything else is an atom whose children are normalised.
                let mut node = expr.as_ref().clone();
                let mut keys = vec![];
                for child in node.children_mut() {
                    let p = self.poly(child);
                    keys.push(p.key());
                    *child = poly_expr(&p);
                }
                let key = format!("({} {})", skeleton(&node), keys.join(" "));
                self.opaque(Rc::new(node), key, false)
            }
        }
    }

    /// A leaf (or an opaque node) as a one-term sum.
    fn opaque(&self, expr: Rc<Expr>, key: String, symmetric: bool) -> Poly {
        let shape = expr.shape.clone();
        if shape.is_scalar() {
            return self.scalar_atom(expr, key);
        }
        let letter = Letter::atom(expr, key, Inner::Opaque, symmetric);
        Poly::of(
            Rational::one(),
            Mono {
                shape,
                scalars: vec![],
                word: vec![letter],
            },
        )
    }

    fn scalar_atom(&self, expr: Rc<Expr>, key: String) -> Poly {
        let atom = ScalarAtom {
            expr,
            key: bounded(key),
            exponent: 1,
        };
        Poly::of(
            Rational::one(),
            Mono {
                shape: Shape::scalar(),
                scalars: vec![atom],
                word: vec![],
            },
        )
    }

    /// A sum as a single factor: a letter, or a scalar atom when 1×1.
    fn atomise(&self, p: &Poly) -> Mono {
        if p.shape.is_scalar() {
            let atom = ScalarAtom {
                expr: poly_expr(p),
                key: bounded(p.key()),
                exponent: 1,
            };
            return Mono {
                shape: Shape::scalar(),
                scalars: vec![atom],
                word: vec![],
            };
        }
        let letter = Letter::atom(poly_expr(p), p.key(), Inner::Sum(Rc::new(p.clone())), false);
        Mono {
            shape: p.shape.clone(),
            scalars: vec![],
            word: vec![letter],
        }
    }

    /// The sum as a (coefficient, monomial) when it is one term, else as an atom.
    fn as_factor(&self, p: &Poly) -> (Rational, Mono) {
        match p.as_mono() {
            Some((c, m)) => (c.clone(), m.clone()),
            None if p.terms.is_empty() => (Rational::zero(), Mono::one(p.shape.clone())),
            None => (Rational::one(), self.atomise(p)),
        }
    }

    fn product(&mut self, a: &Poly, b: &Poly, shape: Shape) -> Poly {
        // A number scales a sum term by term.
        for (k, other) in [(a, b), (b, a)] {
            if let Some(q) = as_number(k) {
                if other.shape == shape {
                    return other.clone().scaled(&q);
                }
            }
        }
        let (ca, ma) = self.as_factor(a);
        let (cb, mb) = self.as_factor(b);
        let scalars = merge_scalars(&ma.scalars, &mb.scalars);
        let mut word = ma.word;
        word.extend(mb.word);
        let mono = self.word_mono(shape, scalars, word);
        let coefficient = ca * cb;
        let mut res = Poly::of(coefficient, mono);
        res.tidy();
        res
    }

    /// A monomial from scalars and a word: adjacent equal letters merged, and every 1×1
    /// stretch of the word moved to the scalars.
    fn word_mono(&mut self, shape: Shape, scalars: Vec<ScalarAtom>, word: Vec<Letter>) -> Mono {
        let word = merge_letters(word);
        if word.is_empty() {
            return Mono {
                shape,
                scalars,
                word,
            };
        }
        let mut dims: Vec<Dim> = vec![word[0].shape().rows];
        dims.extend(word.iter().map(|l| l.shape().cols));
        let ones: Vec<usize> = (0..dims.len()).filter(|i| dims[*i].is_one()).collect();
        if ones.len() < 2 {
            return Mono {
                shape,
                scalars,
                word,
            };
        }
        let mut extracted = vec![];
        for pair in ones.windows(2) {
            let segment = word[pair[0]..pair[1]].to_vec();
            extracted.push(self.scalar_word(segment));
        }
        let (first, last) = (ones[0], ones[ones.len() - 1]);
        let mut rest: Vec<Letter> = word[..first].to_vec();
        rest.extend(word[last..].iter().cloned());
        let scalars = merge_scalars(&scalars, &extracted);
        // Joining the two ends can make new neighbours equal (`x(yᵀz)xᵀ` stays `xxᵀ`).
        let rest = merge_letters(rest);
        Mono {
            shape,
            scalars,
            word: rest,
        }
    }

    /// A 1×1 word as a scalar atom: itself or its transpose, whichever key is smaller.
    fn scalar_word(&mut self, word: Vec<Letter>) -> ScalarAtom {
        let flipped = self.transpose_word(&word);
        let key_of = |w: &[Letter]| {
            Mono {
                shape: Shape::scalar(),
                scalars: vec![],
                word: w.to_vec(),
            }
            .word_key()
        };
        let (k1, k2) = (key_of(&word), key_of(&flipped));
        let flipped_first = (transposes(&flipped), &k2) < (transposes(&word), &k1);
        let (chosen, key) = if flipped_first {
            (flipped, k2)
        } else {
            (word, k1)
        };
        ScalarAtom {
            expr: word_expr(&chosen, &Shape::scalar()),
            key: bounded(key),
            exponent: 1,
        }
    }

    fn transpose_word(&mut self, word: &[Letter]) -> Vec<Letter> {
        word.iter()
            .rev()
            .map(|l| self.transpose_letter(l))
            .collect()
    }

    fn transpose_letter(&mut self, letter: &Letter) -> Letter {
        if letter.symmetric {
            return letter.clone();
        }
        let transposed_inner = match &letter.inner {
            Inner::Opaque => {
                let mut res = letter.clone();
                res.transposed = !res.transposed;
                return res;
            }
            Inner::Sum(p) => self.transpose(p),
            Inner::Word(m) => {
                let word = self.transpose_word(&m.word);
                let mono = self.word_mono(m.shape.transposed(), vec![], word);
                Poly::of(Rational::one(), mono)
            }
            Inner::Had(factors) => {
                let shape = letter.base.shape.transposed();
                let factors = factors
                    .iter()
                    .map(|f| {
                        let word = self.transpose_word(&f.word);
                        self.word_mono(f.shape.transposed(), vec![], word)
                    })
                    .collect();
                Poly::of(Rational::one(), self.had_mono(shape, factors))
            }
            Inner::Func(f, p) => {
                let p = self.transpose(p);
                let key = format!("({} {})", f.name(), p.key());
                let e = build::func(*f, poly_expr(&p));
                let l = Letter::atom(e, key, Inner::Func(*f, Rc::new(p)), false);
                let shape = l.shape();
                Poly::of(Rational::one(), self.word_mono(shape, vec![], vec![l]))
            }
        };
        let mut res = self.single_letter(&transposed_inner);
        res.power = letter.power;
        res
    }

    /// A sum as one letter of power one: its own letter when it is a lone letter.
    fn single_letter(&mut self, p: &Poly) -> Letter {
        if let Some((c, m)) = p.as_mono() {
            if c.is_one() && m.scalars.is_empty() {
                if let [letter] = m.word.as_slice() {
                    if letter.power == 1 {
                        return letter.clone();
                    }
                }
                if m.word.len() > 1 {
                    let e = word_expr(&m.word, &m.shape);
                    return Letter::atom(e, m.word_key(), Inner::Word(Rc::new(m.clone())), false);
                }
            }
        }
        let mono = self.atomise(p);
        mono.word.into_iter().next().unwrap_or_else(|| {
            Letter::atom(poly_expr(p), p.key(), Inner::Sum(Rc::new(p.clone())), false)
        })
    }

    fn transpose(&mut self, p: &Poly) -> Poly {
        let shape = p.shape.transposed();
        let mut terms = vec![];
        for (c, m, _) in &p.terms {
            let word = self.transpose_word(&m.word);
            let mono = self.word_mono(m.shape.transposed(), m.scalars.clone(), word);
            let key = mono.key().into();
            terms.push((c.clone(), mono, key));
        }
        let mut res = Poly { shape, terms };
        res.tidy();
        res
    }

    /// `pᵏ` (`k = −1`: the inverse).
    fn power(&mut self, p: &Poly, k: i64) -> Poly {
        let shape = p.shape.clone();
        if k == 1 {
            return p.clone();
        }
        if k == 0 && !shape.is_scalar() {
            return Poly::of(Rational::one(), Mono::one(shape));
        }
        let single = p.as_mono().map(|(c, m)| (c.clone(), m.clone()));
        if let Some((c, m)) = single {
            let coefficient = (k.abs() <= MAX_EXPONENT && !(k < 0 && c.is_zero()))
                .then(|| num_traits::pow::Pow::pow(c.clone(), k as i32));
            let exact = coefficient.filter(|q| q.numer().bits() <= 512 && q.denom().bits() <= 512);
            if let Some(coefficient) = exact {
                let scalars: Vec<ScalarAtom> = m
                    .scalars
                    .iter()
                    .map(|a| ScalarAtom {
                        exponent: a.exponent * k,
                        ..a.clone()
                    })
                    .collect();
                let scalars = merge_scalars(&scalars, &[]);
                let word = match m.word.as_slice() {
                    [] => vec![],
                    [letter] => {
                        let mut letter = letter.clone();
                        letter.power *= k;
                        vec![letter]
                    }
                    _ => {
                        let mut letter = self.single_letter(&Poly::of(
                            Rational::one(),
                            Mono {
                                scalars: vec![],
                                ..m.clone()
                            },
                        ));
                        letter.power = k;
                        vec![letter]
                    }
                };
                let mono = self.word_mono(shape, scalars, word);
                let mut res = Poly::of(coefficient, mono);
                res.tidy();
                return res;
            }
        }
        if shape.is_scalar() {
            let mut mono = self.atomise(p);
            for atom in &mut mono.scalars {
                atom.exponent *= k;
            }
            return Poly::of(Rational::one(), mono);
        }
        let mut letter = self.single_letter(p);
        letter.power = k;
        let mono = self.word_mono(shape, vec![], vec![letter]);
        Poly::of(Rational::one(), mono)
    }

    /// Applies a linear map to every term: coefficients and scalars come out, `inner`
    /// maps the word (as a sum of one term) to a scalar sum.
    fn linear(&mut self, p: &Poly, inner: impl Fn(&mut Self, &Poly) -> Poly) -> Poly {
        // A broadcast scalar term (`A + 1`) is not a matrix of its own: no linearity.
        if p.terms.iter().any(|(_, m, _)| m.shape != p.shape) {
            let whole = Poly::of(Rational::one(), self.atomise(p));
            return inner(self, &whole);
        }
        let mut parts = vec![];
        for (c, m, _) in &p.terms {
            let word = Mono {
                scalars: vec![],
                ..m.clone()
            };
            let scalars = Poly::of(
                c.clone(),
                Mono {
                    shape: Shape::scalar(),
                    scalars: m.scalars.clone(),
                    word: vec![],
                },
            );
            let mapped = if m.shape.is_scalar() {
                Poly::constant(Rational::one())
            } else {
                inner(self, &Poly::of(Rational::one(), word))
            };
            parts.push(self.product(&scalars, &mapped, Shape::scalar()));
        }
        sum_polys(Shape::scalar(), parts)
    }

    fn trace(&mut self, p: &Poly) -> Poly {
        if p.shape.is_scalar() {
            return p.clone();
        }
        self.linear(p, |n, single| {
            let m = &single.terms[0].1;
            n.trace_of_word(m.word.clone(), &m.shape)
        })
    }

    fn trace_of_word(&mut self, word: Vec<Letter>, shape: &Shape) -> Poly {
        let mut word = merge_letters(word);
        // The ends are neighbours under a trace.
        while word.len() > 1 && word[0].same_base(&word[word.len() - 1]) {
            let last = word.pop().expect("two letters");
            word[0].power += last.power;
            if word[0].power == 0 {
                word.remove(0);
            }
            word = merge_letters(word);
        }
        if word.is_empty() {
            return match &shape.rows {
                Dim::Known(n) => Poly::constant(Rational::from_integer((*n).into())),
                _ => self.scalar_atom(
                    build::trace(build::identity(shape.rows.clone())),
                    format!("(tr I#{})", shape.rows),
                ),
            };
        }
        let mut dims: Vec<Dim> = vec![word[0].shape().rows];
        dims.extend(word.iter().map(|l| l.shape().cols));
        let n = word.len();
        // A word through a 1 is a scalar once rotated to start there.
        if let Some(at) = (0..n).find(|i| dims[*i].is_one()) {
            let mut rotated = word[at..].to_vec();
            rotated.extend(word[..at].iter().cloned());
            let mono = self.word_mono(Shape::scalar(), vec![], rotated);
            return Poly::of(Rational::one(), mono);
        }
        let flipped = self.transpose_word(&word);
        let mut best: Option<((usize, String), Vec<Letter>)> = None;
        for candidate in [&word, &flipped] {
            for at in 0..n {
                let mut rotated = candidate[at..].to_vec();
                rotated.extend(candidate[..at].iter().cloned());
                let square = rotated[0].shape().rows == rotated[n - 1].shape().cols;
                if !square {
                    continue;
                }
                let key = Mono {
                    shape: Shape::new(rotated[0].shape().rows, rotated[n - 1].shape().cols),
                    scalars: vec![],
                    word: rotated.clone(),
                }
                .word_key();
                let rank = (transposes(&rotated), key);
                if best.as_ref().is_none_or(|(k, _)| rank < *k) {
                    best = Some((rank, rotated));
                }
            }
        }
        let Some(((_, key), chosen)) = best else {
            let e = build::trace(word_expr(&word, shape));
            return self.scalar_atom(e, format!("(tr {})", key_of_word(&word)));
        };
        let inner_shape = Shape::new(chosen[0].shape().rows, chosen[n - 1].shape().cols);
        let e = build::trace(word_expr(&chosen, &inner_shape));
        self.scalar_atom(e, format!("(tr {key})"))
    }

    fn determinant(&mut self, p: &Poly, log: bool) -> Poly {
        let name = if log { "logdet" } else { "det" };
        if let Some((c, m)) = p.as_mono() {
            if c.is_one() && m.scalars.is_empty() {
                if let [letter] = m.word.as_slice() {
                    // det(Xᵀᵏ) = det(X)ᵏ; log|Xᵀᵏ| = k log|X|.
                    let base = Letter {
                        transposed: false,
                        power: 1,
                        ..letter.clone()
                    };
                    let inner = Poly::of(
                        Rational::one(),
                        Mono {
                            shape: m.shape.clone(),
                            scalars: vec![],
                            word: vec![base],
                        },
                    );
                    let e = poly_expr(&inner);
                    let key = format!("({name} {})", inner.key());
                    let atom = if log { build::logdet(e) } else { build::det(e) };
                    let single = self.scalar_atom(atom, key);
                    return if log {
                        single.scaled(&Rational::from_integer(letter.power.into()))
                    } else {
                        self.power(&single, letter.power)
                    };
                }
            }
        }
        let e = poly_expr(p);
        let key = format!("({name} {})", p.key());
        self.scalar_atom(if log { build::logdet(e) } else { build::det(e) }, key)
    }

    fn hadamard(&mut self, a: &Poly, b: &Poly, shape: Shape) -> Poly {
        let (ca, ma) = self.as_factor(a);
        let (cb, mb) = self.as_factor(b);
        let scalars = merge_scalars(&ma.scalars, &mb.scalars);
        let mut factors = vec![];
        for m in [ma, mb] {
            match m.word.as_slice() {
                [letter] if letter.power == 1 && !letter.transposed => match &letter.inner {
                    Inner::Had(inner) => factors.extend(inner.iter().cloned()),
                    _ => factors.push(Mono {
                        scalars: vec![],
                        ..m
                    }),
                },
                _ => factors.push(Mono {
                    scalars: vec![],
                    ..m
                }),
            }
        }
        let mut mono = self.had_mono(shape, factors);
        mono.scalars = merge_scalars(&mono.scalars, &scalars);
        let mut res = Poly::of(ca * cb, mono);
        res.tidy();
        res
    }

    /// The Hadamard product of word-only factors: sorted, `𝟙` factors dropped.
    fn had_mono(&mut self, shape: Shape, factors: Vec<Mono>) -> Mono {
        let mut keyed: Vec<(String, Mono)> = factors.into_iter().map(|f| (f.key(), f)).collect();
        keyed.sort_by(|x, y| x.0.cmp(&y.0));
        if keyed.len() > 1 {
            let all_ones = keyed.iter().all(|(_, f)| is_ones(&f.word));
            if !all_ones {
                keyed.retain(|(_, f)| !is_ones(&f.word));
            }
        }
        if keyed.len() == 1 {
            let (_, only) = keyed.pop().expect("one factor");
            return only;
        }
        let key = format!(
            "(had {})",
            keyed
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let factors: Vec<Mono> = keyed.into_iter().map(|(_, f)| f).collect();
        let e = factors
            .iter()
            .map(|f| word_expr(&f.word, &f.shape))
            .reduce(build::hadamard)
            .unwrap_or_else(|| build::identity(shape.rows.clone()));
        let letter = Letter::atom(e, key, Inner::Had(Rc::new(factors)), false);
        Mono {
            shape,
            scalars: vec![],
            word: vec![letter],
        }
    }
}

/// How many letters of a word carry a transpose: of a word and its transpose, the one
/// with fewer is written (`zᵀWx`, not `xᵀWᵀz`).
fn transposes(word: &[Letter]) -> usize {
    word.iter().filter(|l| l.transposed).count()
}

fn is_sum(expr: &Expr) -> bool {
    matches!(expr.kind, ExprKind::Add(..) | ExprKind::Sub(..))
}

/// The value of a sum that is a plain number.
fn as_number(p: &Poly) -> Option<Rational> {
    if !p.shape.is_scalar() {
        return None;
    }
    match p.terms.as_slice() {
        [] => Some(Rational::zero()),
        [(c, m, _)] if m.scalars.is_empty() && m.word.is_empty() => Some(c.clone()),
        _ => None,
    }
}

fn is_ones(word: &[Letter]) -> bool {
    matches!(word, [l] if l.power == 1 && !l.transposed && matches!(l.base.kind, ExprKind::Ones))
}

fn key_of_word(word: &[Letter]) -> String {
    word.iter().map(Letter::key).collect::<Vec<_>>().join(" ")
}

/// What an opaque node is apart from its children (its kind, function name, exponent,
/// shape), as text: the node with every child replaced by a placeholder.
fn skeleton(node: &Expr) -> String {
    let mut bare = node.clone();
    bare.span = None;
    for child in bare.children_mut() {
        *child = Rc::new(Expr::typed(
            ExprKind::Num(Rational::zero()),
            Shape::scalar(),
        ));
    }
    format!("{:?} {}", bare.kind, bare.shape)
}

/// Adjacent equal letters merged (`XX = X²`, `XX⁻¹ = I`), until none are left.
fn merge_letters(word: Vec<Letter>) -> Vec<Letter> {
    let mut res: Vec<Letter> = Vec::with_capacity(word.len());
    for letter in word {
        if letter.power == 0 {
            continue;
        }
        match res.last_mut() {
            Some(last) if last.same_base(&letter) => {
                last.power += letter.power;
                if last.power == 0 {
                    res.pop();
                }
            }
            _ => res.push(letter),
        }
    }
    res
}

fn letter_expr(letter: &Letter) -> Rc<Expr> {
    let base = letter.base.clone();
    match (letter.transposed, letter.power) {
        (false, 1) => base,
        (true, 1) => build::transpose(base),
        (false, -1) => build::inverse(base),
        // X⁻ᵀ, as the printers spell it.
        (true, -1) => build::transpose(build::inverse(base)),
        (false, k) => build::pow(base, k),
        // (X³)ᵀ, as textbooks write it.
        (true, k) => build::transpose(build::pow(base, k)),
    }
}

fn word_expr(word: &[Letter], shape: &Shape) -> Rc<Expr> {
    word.iter()
        .map(letter_expr)
        .reduce(build::mul)
        .unwrap_or_else(|| {
            if shape.is_scalar() {
                build::int(1)
            } else {
                build::identity(shape.rows.clone())
            }
        })
}

fn scalar_power(atom: &ScalarAtom, exponent: i64) -> Rc<Expr> {
    match exponent {
        1 => atom.expr.clone(),
        k => build::pow(atom.expr.clone(), k),
    }
}

/// A monomial times `|coefficient|`, spelt `(n · scalars · word) / (d · scalars⁻)`.
fn mono_expr(magnitude: &Rational, mono: &Mono) -> Rc<Expr> {
    let numer = Rational::from_integer(magnitude.numer().clone());
    let denom = Rational::from_integer(magnitude.denom().clone());
    let mut front: Vec<Rc<Expr>> = vec![];
    if !numer.is_one() {
        front.push(build::constant(numer.clone()));
    }
    let mut below: Vec<Rc<Expr>> = vec![];
    if !denom.is_one() {
        below.push(build::constant(denom));
    }
    for atom in &mono.scalars {
        if atom.exponent > 0 {
            front.push(scalar_power(atom, atom.exponent));
        } else {
            below.push(scalar_power(atom, -atom.exponent));
        }
    }
    // `3(s·X)` rather than `(3s)X` when the first atom is a sum `s`: `3s` would be
    // distributed when normalised again.
    let next_is_sum = match (front.get(1), mono.word.first()) {
        (Some(atom), _) => is_sum(atom),
        (None, Some(letter)) => is_sum(&letter_expr(letter)),
        (None, None) => false,
    };
    let number_first = !numer.is_one() && next_is_sum;
    if number_first {
        let number = front.remove(0);
        let rest = mono_expr(
            &Rational::one(),
            &Mono {
                scalars: mono
                    .scalars
                    .iter()
                    .filter(|a| a.exponent > 0)
                    .cloned()
                    .collect(),
                ..mono.clone()
            },
        );
        let value = build::mul(number, rest);
        return match below.into_iter().reduce(build::mul) {
            Some(d) => build::div(value, d),
            None => value,
        };
    }
    let scale = front.into_iter().reduce(build::mul);
    // Scalars, then the letters, all grouped to the left: `6aAB`, as people write it.
    let value = match scale {
        None if mono.word.is_empty() && mono.shape.is_scalar() => build::int(1),
        None => word_expr(&mono.word, &mono.shape),
        Some(k) if mono.word.is_empty() && !mono.shape.is_scalar() => {
            build::mul(k, build::identity(mono.shape.rows.clone()))
        }
        Some(k) => mono.word.iter().map(letter_expr).fold(k, build::mul),
    };
    match below.into_iter().reduce(build::mul) {
        Some(d) => build::div(value, d),
        None => value,
    }
}

fn poly_expr(p: &Poly) -> Rc<Expr> {
    let mut res: Option<Rc<Expr>> = None;
    for (c, m, _) in &p.terms {
        let term = if c.is_zero() {
            build::mul(build::int(0), mono_expr(&Rational::one(), m))
        } else {
            mono_expr(&c.abs(), m)
        };
        res = Some(match (res, c.is_negative()) {
            (None, false) => term,
            (None, true) => build::neg(term),
            (Some(acc), false) => build::add(acc, term),
            (Some(acc), true) => build::sub(acc, term),
        });
    }
    res.unwrap_or_else(|| build::int(0))
}
