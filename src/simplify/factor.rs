//! Factoring on the flat form of a sum: one rewrite ([`rules`]) that finds the common
//! factors of any subset of a sum's terms, adjacent or not, which patterns cannot once
//! associativity and commutativity are no rules (`Wzxᵀ + AB + Wxzᵀ = W(zxᵀ + xzᵀ) + AB`).
//!
//! For every e-class that holds a sum, the applier reads the sum's flat form off the
//! e-graph: its terms (through `+`, `−` and negation), each a coefficient × a multiset
//! of scalar classes × a word of matrix classes (through products, scalings, `I` and
//! transposes of products). Letters are e-classes, so two letters are equal exactly when
//! the e-graph knows them equal. From that form it adds to the class, as equalities,
//! every maximal candidate, never just one, and never an expansion:
//!
//! - the *content*: the gcd of the coefficients with the scalars common to every term
//!   (`2xᵀa + 4xᵀb = 2(xᵀa + 2xᵀb)`), and each scalar shared by several terms;
//! - every node of the prefix trie of the words shared by two terms or more, `p(Σ rest)`,
//!   and of the suffix trie, `(Σ rest)s`, each also with the rests' own common suffix
//!   or prefix taken out, `p(Σ m)s`; an empty rest is `I` (`kC + BC = (kI + B)C`);
//! - Hadamard factors: the least exponent of each factor across the terms that have it
//!   (`a ⊙ b + c + a ⊙ d = a ⊙ (b + d) + c`; a bare `a` leaves `1`).
//!
//! A rest sum is a new class and is factored in turn in the next iteration. Extraction
//! chooses between the candidates and the input by cost. Each class is factored once per
//! e-graph (a settled match), from the flat form it has when first met: factoring it
//! again whenever its form changes (new letters, merged classes) grew the e-graph enough,
//! with the associativity rules still present, to stop saturation short of forms found
//! before (the Rayleigh quotient's `(I − xxᵀ/ζ)(A + Aᵀ)x/ζ`). Each round of
//! saturation starts a fresh e-graph from the best forms, factored afresh.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use egg::{Applier, Id, PatternAst, SearchMatches, Searcher, Subst, Symbol, Var};
use num_integer::Integer;
use num_traits::{One, Signed, Zero};

use super::analysis::{node_shape, EGraph, MatAnalysis};
use super::lang::{DimLeaf, Mat, Num};
use super::rules::Rewrite;
use crate::expr::{build, Expr, ExprKind, Interner, Rational, Shape};

/// The factoring rewrites, for the rule list.
pub fn rules() -> Vec<Rewrite> {
    vec![Rewrite::new("factor-common", FactorSums, FactorSums).expect("a rewrite without variables")]
}

/// The searcher and applier of [`rules`]: matches every class holding a sum and adds the
/// factored forms of its flat form.
#[derive(Clone, Copy, Debug, Default)]
pub struct FactorSums;

/// Most terms a sum may have to be factored: the candidates grow with the terms.
const MAX_TERMS: usize = 64;

/// Most candidates added to one class at a time.
const MAX_CANDIDATES: usize = 32;

/// Deepest nesting the flat form is read through.
const MAX_DEPTH: usize = 96;

/// Longest word, and most scalar or Hadamard factors, a flat product may have; a longer
/// one is a letter of its own. A class read twice is one node but two copies in the flat
/// form, so without a bound `zᵢ = zᵢ₋₁ ⊙ zᵢ₋₁` would flatten to 2ⁱ factors. A word may
/// be as long as the longest product the parser reads.
const MAX_WORD: usize = 4096;
const MAX_FACTORS: usize = 256;

impl Searcher<Mat, MatAnalysis> for FactorSums {
    fn search_eclass_with_limit(
        &self,
        egraph: &EGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, Mat>> {
        let class = &egraph[eclass];
        let is_sum = class
            .nodes
            .iter()
            .any(|node| matches!(node, Mat::Add(_) | Mat::Sub(_)));
        // A sum inside a larger sum of its shape is factored as part of that one, whose
        // flat form holds its terms: with associativity and commutativity rules, every
        // subset of a sum's terms is a class of its own.
        let inside_a_sum = || {
            class.parents().any(|parent| {
                matches!(
                    egraph.id_to_node(parent),
                    Mat::Add(_) | Mat::Sub(_) | Mat::Neg(_)
                ) && egraph[parent].data.shape == class.data.shape
            })
        };
        let wanted = limit > 0 && is_sum && class.data.dim.is_none() && !inside_a_sum();
        wanted.then(|| SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

impl Applier<Mat, MatAnalysis> for FactorSums {
    fn apply_one(
        &self,
        egraph: &mut EGraph,
        eclass: Id,
        _subst: &Subst,
        _searcher_ast: Option<&PatternAst<Mat>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        factor_classes(egraph, &[eclass], rule_name)
    }

    fn apply_matches(
        &self,
        egraph: &mut EGraph,
        matches: &[SearchMatches<Mat>],
        rule_name: Symbol,
    ) -> Vec<Id> {
        let classes: Vec<Id> = matches.iter().map(|m| m.eclass).collect();
        factor_classes(egraph, &classes, rule_name)
    }

    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

/// Adds the candidates of every class in `classes` not factored yet; returns the
/// classes that changed.
fn factor_classes(egraph: &mut EGraph, classes: &[Id], rule_name: Symbol) -> Vec<Id> {
    let mut plans = vec![];
    {
        let mut flat = Flat::new(egraph);
        for class in classes {
            let class = egraph.find(*class);
            let key = (rule_name, class, [None; 4]);
            if egraph.analysis.settled.contains(&key) {
                continue;
            }
            let terms = flat.sum(class).unwrap_or_default();
            let candidates = if (2..=MAX_TERMS).contains(&terms.len()) {
                candidates(&mut flat, class, &terms)
            } else {
                vec![]
            };
            plans.push((class, key, terms, candidates));
        }
    }
    let mut changed = vec![];
    for (class, key, terms, candidates) in plans {
        egraph.analysis.settled.insert(key);
        let shape = egraph[class].data.shape.clone();
        for candidate in candidates {
            let Some(id) = build_candidate(egraph, &candidate, &terms, &shape) else {
                continue;
            };
            if egraph[id].data.shape == shape && egraph.find(id) != egraph.find(class) {
                egraph.union(class, id);
                changed.push(class);
            }
        }
    }
    changed
}

/// A product: coefficient × scalar classes (sorted, with repeats) × a word of classes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Mono {
    coef: Rational,
    scalars: Vec<Id>,
    word: Vec<Id>,
}

impl Mono {
    fn one() -> Mono {
        Mono {
            coef: Rational::one(),
            scalars: vec![],
            word: vec![],
        }
    }

    fn times(&self, other: &Mono) -> Mono {
        let mut scalars = self.scalars.clone();
        scalars.extend(&other.scalars);
        scalars.sort();
        let mut word = self.word.clone();
        word.extend(&other.word);
        Mono {
            coef: &self.coef * &other.coef,
            scalars,
            word,
        }
    }

    fn scaled(mut self, k: &Rational) -> Mono {
        self.coef = &self.coef * k;
        self
    }
}

/// One term of a sum: the class it is, whether it is subtracted, and its product form
/// with that sign in the coefficient.
#[derive(Clone, Debug)]
struct Term {
    negated: bool,
    class: Id,
    mono: Mono,
}

/// The flat forms of classes, read off the e-graph with memos; a class met again
/// below itself is a leaf, so cycles in the e-graph end.
struct Flat<'a> {
    egraph: &'a EGraph,
    leaves: HashMap<Id, Option<Vec<(bool, Id)>>>,
    monos: HashMap<Id, Mono>,
    hads: HashMap<Id, Vec<Id>>,
    stack: Vec<Id>,
}

impl<'a> Flat<'a> {
    fn new(egraph: &'a EGraph) -> Flat<'a> {
        Flat {
            egraph,
            leaves: HashMap::new(),
            monos: HashMap::new(),
            hads: HashMap::new(),
            stack: vec![],
        }
    }

    fn shape(&self, id: Id) -> &Shape {
        &self.egraph[id].data.shape
    }

    fn scalar(&self, id: Id) -> bool {
        self.egraph[id].data.scalar
    }

    /// The terms of the sum `class` is, if it is one.
    fn sum(&mut self, class: Id) -> Option<Vec<Term>> {
        let leaves = self.sum_leaves(class)?;
        Some(
            leaves
                .into_iter()
                .map(|(negated, leaf)| {
                    let mono = self.mono(leaf);
                    let mono = if negated {
                        mono.scaled(&-Rational::one())
                    } else {
                        mono
                    };
                    Term {
                        negated,
                        class: leaf,
                        mono,
                    }
                })
                .collect(),
        )
    }

    /// The signed terms of `class` through sums, differences and negations of its own
    /// shape; `None` when it is none of those.
    fn sum_leaves(&mut self, class: Id) -> Option<Vec<(bool, Id)>> {
        let class = self.egraph.find(class);
        if let Some(done) = self.leaves.get(&class) {
            return done.clone();
        }
        if self.stack.contains(&class) || self.stack.len() > MAX_DEPTH {
            return None;
        }
        self.stack.push(class);
        let egraph = self.egraph;
        let shape = self.shape(class).clone();
        let mut res = None;
        for pass in 0..2 {
            for node in &egraph[class].nodes {
                let (a, b, subtract) = match *node {
                    Mat::Add([a, b]) if pass == 0 => (a, Some(b), false),
                    Mat::Sub([a, b]) if pass == 0 => (a, Some(b), true),
                    Mat::Neg(a) if pass == 1 => (a, None, false),
                    _ => continue,
                };
                let same = |id: Id| *self.shape(id) == shape;
                if !same(a) || !b.is_none_or(same) {
                    continue;
                }
                let Some(mut left) = self.leaves_or_self(a) else {
                    continue;
                };
                match b {
                    Some(b) => {
                        let Some(right) = self.leaves_or_self(b) else {
                            continue;
                        };
                        left.extend(right.into_iter().map(|(n, id)| (n != subtract, id)));
                    }
                    None => left.iter_mut().for_each(|(n, _)| *n = !*n),
                }
                if left.len() <= MAX_TERMS {
                    res = Some(left);
                }
                break;
            }
            if res.is_some() {
                break;
            }
        }
        self.stack.pop();
        self.leaves.insert(class, res.clone());
        res
    }

    /// The terms of `id` as a part of a sum: its own, or itself; `None` when it is on
    /// the way down (a cycle).
    fn leaves_or_self(&mut self, id: Id) -> Option<Vec<(bool, Id)>> {
        let id = self.egraph.find(id);
        if self.stack.contains(&id) {
            return None;
        }
        Some(self.sum_leaves(id).unwrap_or_else(|| vec![(false, id)]))
    }

    /// The product form of `class`: through products, scalings, quotients by numbers,
    /// negations, `I` and transposes of products; anything else is one letter (or one
    /// scalar, if 1×1).
    fn mono(&mut self, class: Id) -> Mono {
        let class = self.egraph.find(class);
        let egraph = self.egraph;
        let data = &egraph[class].data;
        if let Some(q) = &data.constant {
            return Mono {
                coef: q.clone(),
                ..Mono::one()
            };
        }
        let atom = || {
            let mut res = Mono::one();
            if data.scalar {
                res.scalars.push(class);
            } else {
                res.word.push(class);
            }
            res
        };
        if self.stack.contains(&class) || self.stack.len() > MAX_DEPTH {
            return atom();
        }
        if let Some(done) = self.monos.get(&class) {
            return done.clone();
        }
        self.stack.push(class);
        let mut res = None;
        for node in &egraph[class].nodes {
            res = match *node {
                Mat::Identity(_) if !data.scalar => Some(Mono::one()),
                Mat::Mul([a, b]) => self.product(class, a, b),
                Mat::Div([a, k]) => egraph[k]
                    .data
                    .constant
                    .as_ref()
                    .filter(|k| !k.is_zero())
                    .map(|k| self.mono(a).scaled(&k.recip())),
                Mat::Neg(a) => Some(self.mono(a).scaled(&-Rational::one())),
                Mat::Transpose(a) if !data.scalar => self.transposed(a),
                _ => None,
            };
            if res.is_some() {
                break;
            }
        }
        self.stack.pop();
        let res = res
            .filter(|mono| mono.word.len() <= MAX_WORD && mono.scalars.len() <= MAX_FACTORS)
            .unwrap_or_else(atom);
        self.monos.insert(class, res.clone());
        res
    }

    /// The product form of the product `ab` of class `class`.
    fn product(&mut self, class: Id, a: Id, b: Id) -> Option<Mono> {
        let (sa, sb) = (self.scalar(a), self.scalar(b));
        if self.scalar(class) {
            return match (sa, sb) {
                (true, true) => Some(self.scalar_factor(a).times(&self.scalar_factor(b))),
                // An inner product, `zᵀx`: a word.
                (false, false) => Some(self.mono(a).times(&self.mono(b))),
                _ => None,
            };
        }
        let left = if sa {
            self.scalar_factor(a)
        } else {
            self.mono(a)
        };
        let right = if sb {
            self.scalar_factor(b)
        } else {
            self.mono(b)
        };
        Some(left.times(&right))
    }

    /// A scalar class as a factor of a product: its coefficient and scalars, or itself
    /// when it is a word (`zᵀx`).
    fn scalar_factor(&mut self, id: Id) -> Mono {
        let mono = self.mono(id);
        if mono.word.is_empty() {
            mono
        } else {
            Mono {
                scalars: vec![self.egraph.find(id)],
                ..Mono::one()
            }
        }
    }

    /// `(l₁…lₖ)ᵀ = lₖᵀ…l₁ᵀ`, when the e-graph holds every `lᵢᵀ`.
    fn transposed(&mut self, a: Id) -> Option<Mono> {
        let inner = self.mono(a);
        if inner.word.len() < 2 {
            return None;
        }
        let word = inner
            .word
            .iter()
            .rev()
            .map(|letter| self.egraph.lookup(Mat::Transpose(*letter)))
            .collect::<Option<Vec<Id>>>()?;
        Some(Mono { word, ..inner })
    }

    /// The factors of a Hadamard product (sorted, with repeats); a letter that is none
    /// is its own one factor.
    fn had_factors(&mut self, letter: Id) -> Vec<Id> {
        let letter = self.egraph.find(letter);
        if let Some(done) = self.hads.get(&letter) {
            return done.clone();
        }
        if self.stack.contains(&letter) || self.stack.len() > MAX_DEPTH {
            return vec![letter];
        }
        self.stack.push(letter);
        let egraph = self.egraph;
        let mut res = None;
        for node in &egraph[letter].nodes {
            if let Mat::Had([a, b]) = *node {
                if !self.scalar(a) && !self.scalar(b) {
                    let mut factors = self.had_factors(a);
                    factors.extend(self.had_factors(b));
                    factors.sort();
                    res = (factors.len() <= MAX_FACTORS).then_some(factors);
                    break;
                }
            }
        }
        self.stack.pop();
        let res = res.unwrap_or_else(|| vec![letter]);
        self.hads.insert(letter, res.clone());
        res
    }
}

/// What a factored term is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// `content · left · (Σ inner) · right`, the inner sum of shape `inner`.
    Word {
        left: Vec<Id>,
        right: Vec<Id>,
        inner: Shape,
    },
    /// `content · (h₁ ⊙ … ⊙ hₖ ⊙ (Σ inner))`, each inner term's word its remaining
    /// Hadamard factors (none: the scalar 1).
    Hadamard { common: Vec<Id> },
}

/// A factored term standing for the terms `members`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Factored {
    members: Vec<usize>,
    negated: bool,
    content: Mono,
    kind: Kind,
    inner: Vec<Mono>,
}

/// The candidates for a sum: each replaces some of the terms by one factored term.
fn candidates(flat: &mut Flat, class: Id, terms: &[Term]) -> Vec<Factored> {
    let shape = flat.shape(class).clone();
    if terms.iter().any(|t| t.mono.coef.is_zero()) {
        return vec![];
    }
    // Kronecker products have factoring rules of their own, tuned to Magnus and
    // Neudecker's forms (`(I + K)(I ⊗ Xᵀ)`), which a factored-out `I ⊗ X` would undo
    // through distribution.
    let kron = |id: &Id| {
        flat.egraph[*id]
            .nodes
            .iter()
            .any(|node| matches!(node, Mat::Kron(_) | Mat::Vectorize(_) | Mat::Commutation(_)))
    };
    if terms.iter().any(|t| t.mono.word.iter().any(kron)) {
        return vec![];
    }
    // Broadcast terms (a scalar added to a matrix) stay as they are.
    let taking: Vec<usize> = (0..terms.len())
        .filter(|i| *flat.shape(terms[*i].class) == shape)
        .collect();
    let mut res: Vec<Factored> = vec![];
    let mut seen: HashSet<Factored> = HashSet::new();
    let mut push = |f: Option<Factored>| {
        if let Some(f) = f {
            if res.len() < MAX_CANDIDATES && seen.insert(f.clone()) {
                res.push(f);
            }
        }
    };
    // The content of all terms, then each scalar shared by some.
    if taking.len() == terms.len() {
        push(content(terms, &taking));
    }
    let mut by_scalar: BTreeMap<Id, Vec<usize>> = BTreeMap::new();
    for &i in &taking {
        let mut scalars = terms[i].mono.scalars.clone();
        scalars.dedup();
        for s in scalars {
            by_scalar.entry(s).or_default().push(i);
        }
    }
    for members in by_scalar.values() {
        if members.len() >= 2 {
            push(scalar_factored(terms, members));
        }
    }
    // Words: the prefix trie, then the suffix trie.
    for from_left in [true, false] {
        for (affix, members) in shared_affixes(terms, &taking, from_left) {
            // The most factored form of these terms: with the rests' common affix on
            // the other side taken out too, when they have one.
            let one_sided = word_factored(flat, terms, &members, &affix, from_left, &shape);
            let both = one_sided.as_ref().and_then(|f| {
                let other = common_affix(&f.inner, !from_left);
                let (left, right) = if from_left {
                    (affix.clone(), other)
                } else {
                    (other, affix.clone())
                };
                (!left.is_empty() && !right.is_empty())
                    .then(|| two_sided(flat, terms, &members, &left, &right, &shape))
                    .flatten()
            });
            push(both.or(one_sided));
        }
    }
    // Hadamard factors.
    let mut factors: BTreeMap<usize, Vec<Id>> = BTreeMap::new();
    for &i in &taking {
        if let [letter] = terms[i].mono.word.as_slice() {
            factors.insert(i, flat.had_factors(*letter));
        }
    }
    let mut by_factor: BTreeMap<Id, Vec<usize>> = BTreeMap::new();
    for (i, fs) in &factors {
        let mut fs = fs.clone();
        fs.dedup();
        for f in fs {
            by_factor.entry(f).or_default().push(*i);
        }
    }
    for members in by_factor.values() {
        if members.len() >= 2 {
            push(hadamard_factored(terms, members, &factors));
        }
    }
    res
}

/// The multiset intersection of sorted lists.
fn intersection(lists: &[&[Id]]) -> Vec<Id> {
    let Some((first, rest)) = lists.split_first() else {
        return vec![];
    };
    let mut common: Vec<Id> = first.to_vec();
    for list in rest {
        let mut next = vec![];
        let mut pool: Vec<Id> = list.to_vec();
        for id in common {
            if let Some(at) = pool.iter().position(|x| *x == id) {
                pool.remove(at);
                next.push(id);
            }
        }
        common = next;
    }
    common
}

/// `list` less one occurrence of each of `common` (a sub-multiset of it).
fn without(list: &[Id], common: &[Id]) -> Vec<Id> {
    let mut res = list.to_vec();
    for id in common {
        if let Some(at) = res.iter().position(|x| x == id) {
            res.remove(at);
        }
    }
    res
}

fn gcd(a: &Rational, b: &Rational) -> Rational {
    Rational::new(a.numer().gcd(b.numer()), a.denom().lcm(b.denom()))
}

/// A factored term from its parts, with its sign taken out when every inner term is
/// negative.
fn factored(members: &[usize], content: Mono, kind: Kind, mut inner: Vec<Mono>) -> Factored {
    let negated = inner.iter().all(|m| m.coef.is_negative());
    if negated {
        for m in &mut inner {
            m.coef = -m.coef.clone();
        }
    }
    Factored {
        members: members.to_vec(),
        negated,
        content,
        kind,
        inner,
    }
}

/// The gcd of all coefficients with the scalars common to all terms, if not just 1.
fn content(terms: &[Term], members: &[usize]) -> Option<Factored> {
    let coef = members
        .iter()
        .map(|i| terms[*i].mono.coef.abs())
        .reduce(|a, b| gcd(&a, &b))?;
    let lists: Vec<&[Id]> = members
        .iter()
        .map(|i| terms[*i].mono.scalars.as_slice())
        .collect();
    let scalars = intersection(&lists);
    let negative = members.iter().all(|i| terms[*i].mono.coef.is_negative());
    if coef.is_one() && scalars.is_empty() && !negative {
        return None;
    }
    let inner: Vec<Mono> = members
        .iter()
        .map(|i| {
            let m = &terms[*i].mono;
            Mono {
                coef: &m.coef / &coef,
                scalars: without(&m.scalars, &scalars),
                word: m.word.clone(),
            }
        })
        .collect();
    let content = Mono {
        coef,
        scalars,
        word: vec![],
    };
    let shape = Shape::unknown();
    let kind = Kind::Word {
        left: vec![],
        right: vec![],
        inner: shape,
    };
    Some(factored(members, content, kind, inner))
}

/// The scalars common to the terms `members`, taken out.
fn scalar_factored(terms: &[Term], members: &[usize]) -> Option<Factored> {
    let lists: Vec<&[Id]> = members
        .iter()
        .map(|i| terms[*i].mono.scalars.as_slice())
        .collect();
    let scalars = intersection(&lists);
    let inner: Vec<Mono> = members
        .iter()
        .map(|i| {
            let m = &terms[*i].mono;
            Mono {
                scalars: without(&m.scalars, &scalars),
                ..m.clone()
            }
        })
        .collect();
    let content = Mono {
        scalars,
        ..Mono::one()
    };
    let kind = Kind::Word {
        left: vec![],
        right: vec![],
        inner: Shape::unknown(),
    };
    Some(factored(members, content, kind, inner))
}

/// The nodes of the prefix (or suffix) trie of the terms' words that two terms or more
/// pass through and that are maximal: the affix and its terms.
fn shared_affixes(terms: &[Term], taking: &[usize], from_left: bool) -> Vec<(Vec<Id>, Vec<usize>)> {
    let word = |i: usize| -> Vec<Id> {
        let w = &terms[i].mono.word;
        if from_left {
            w.clone()
        } else {
            w.iter().rev().copied().collect()
        }
    };
    let words: BTreeMap<usize, Vec<Id>> = taking
        .iter()
        .map(|i| (*i, word(*i)))
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let longest = words.values().map(Vec::len).max().unwrap_or(0);
    let mut res = vec![];
    for len in 1..=longest {
        let mut groups: BTreeMap<&[Id], Vec<usize>> = BTreeMap::new();
        for (i, w) in &words {
            if w.len() >= len {
                groups.entry(&w[..len]).or_default().push(*i);
            }
        }
        for (affix, members) in groups {
            if members.len() < 2 {
                continue;
            }
            // Not maximal when every member goes on with the same letter.
            let next: Vec<Option<Id>> =
                members.iter().map(|i| words[i].get(len).copied()).collect();
            if next[0].is_some() && next.iter().all(|n| *n == next[0]) {
                continue;
            }
            let mut affix = affix.to_vec();
            if !from_left {
                affix.reverse();
            }
            res.push((affix, members));
        }
    }
    res
}

/// The longest affix common to the inner terms' words, none of which it may use up
/// entirely unless another is left with letters.
fn common_affix(inner: &[Mono], from_left: bool) -> Vec<Id> {
    let Some(shortest) = inner.iter().map(|m| m.word.len()).min() else {
        return vec![];
    };
    let mut len = 0;
    while len < shortest {
        let at = |m: &Mono| {
            if from_left {
                m.word[len]
            } else {
                m.word[m.word.len() - 1 - len]
            }
        };
        let first = at(&inner[0]);
        if !inner.iter().all(|m| at(m) == first) {
            break;
        }
        len += 1;
    }
    // Taking every letter of every term would leave only scalars: collecting like
    // terms, which the coefficient rules do.
    if inner.iter().all(|m| m.word.len() == len) {
        len = len.saturating_sub(1);
    }
    let w = &inner[0].word;
    if from_left {
        w[..len].to_vec()
    } else {
        w[w.len() - len..].to_vec()
    }
}

/// `affix·(Σ rest)` (or `(Σ rest)·affix`) over the terms `members`.
fn word_factored(
    flat: &Flat,
    terms: &[Term],
    members: &[usize],
    affix: &[Id],
    from_left: bool,
    shape: &Shape,
) -> Option<Factored> {
    let (left, right) = if from_left {
        (affix.to_vec(), vec![])
    } else {
        (vec![], affix.to_vec())
    };
    two_sided(flat, terms, members, &left, &right, shape)
}

/// `left·(Σ m)·right` over the terms `members`, each of whose words starts with `left`
/// and ends with `right` (apart).
fn two_sided(
    flat: &Flat,
    terms: &[Term],
    members: &[usize],
    left: &[Id],
    right: &[Id],
    shape: &Shape,
) -> Option<Factored> {
    let mut inner = vec![];
    for i in members {
        let m = &terms[*i].mono;
        if m.word.len() < left.len() + right.len()
            || m.word[..left.len()] != *left
            || m.word[m.word.len() - right.len()..] != *right
        {
            return None;
        }
        inner.push(Mono {
            word: m.word[left.len()..m.word.len() - right.len()].to_vec(),
            ..m.clone()
        });
    }
    let rows = match left.last() {
        Some(l) => flat.shape(*l).cols.clone(),
        None => shape.rows.clone(),
    };
    let cols = match right.first() {
        Some(r) => flat.shape(*r).rows.clone(),
        None => shape.cols.clone(),
    };
    let kind = Kind::Word {
        left: left.to_vec(),
        right: right.to_vec(),
        inner: Shape::new(rows, cols),
    };
    Some(factored(members, Mono::one(), kind, inner))
}

/// The Hadamard factors common to the terms `members`, taken out.
fn hadamard_factored(
    terms: &[Term],
    members: &[usize],
    factors: &BTreeMap<usize, Vec<Id>>,
) -> Option<Factored> {
    let lists: Vec<&[Id]> = members.iter().map(|i| factors[i].as_slice()).collect();
    let common = intersection(&lists);
    let inner: Vec<Mono> = members
        .iter()
        .map(|i| Mono {
            word: without(&factors[i], &common),
            ..terms[*i].mono.clone()
        })
        .collect();
    // Every factor in common: collecting like terms, not factoring.
    if common.is_empty() || inner.iter().all(|m| m.word.is_empty()) {
        return None;
    }
    Some(factored(
        members,
        Mono::one(),
        Kind::Hadamard { common },
        inner,
    ))
}

/// Adds `node` if it is well typed.
fn add(egraph: &mut EGraph, node: Mat) -> Option<Id> {
    let (_, ok) = node_shape(
        &node,
        |id: Id| {
            let data = &egraph[id].data;
            (data.shape.clone(), data.dim.clone())
        },
        |name| egraph.analysis.vars.get(name).map(|d| d.shape.clone()),
    );
    ok.then(|| egraph.add(node))
}

fn number(egraph: &mut EGraph, q: &Rational) -> Id {
    egraph.add(Mat::Num(Num(q.clone())))
}

/// `|coef| · scalars`, if not just 1.
fn scale(egraph: &mut EGraph, coef: &Rational, scalars: &[Id]) -> Option<Option<Id>> {
    let mut acc = (!coef.abs().is_one()).then(|| number(egraph, &coef.abs()));
    for s in scalars {
        acc = Some(match acc {
            Some(a) => add(egraph, Mat::Mul([a, *s]))?,
            None => *s,
        });
    }
    Some(acc)
}

/// `acc` times each letter of `word` in turn (the letters alone without `acc`).
fn times_word(egraph: &mut EGraph, mut acc: Option<Id>, word: &[Id]) -> Option<Option<Id>> {
    for letter in word {
        acc = Some(match acc {
            Some(a) => add(egraph, Mat::Mul([a, *letter]))?,
            None => *letter,
        });
    }
    Some(acc)
}

/// `|m|` of the given shape: `|coef| · scalars · word`, the empty word `I` (or 1).
fn mono_node(egraph: &mut EGraph, m: &Mono, shape: &Shape) -> Option<Id> {
    let k = scale(egraph, &m.coef, &m.scalars)?;
    if m.word.is_empty() {
        if shape.is_scalar() {
            return Some(k.unwrap_or_else(|| number(egraph, &Rational::one())));
        }
        if shape.rows != shape.cols {
            return None;
        }
        let dim = egraph.add(Mat::Dim(DimLeaf(shape.rows.clone())));
        let identity = egraph.add(Mat::Identity(dim));
        return match k {
            Some(k) => add(egraph, Mat::Mul([k, identity])),
            None => Some(identity),
        };
    }
    times_word(egraph, k, &m.word)?
}

/// `±a ± b ± …`, left to right.
fn sum_node(egraph: &mut EGraph, parts: &[(bool, Id)]) -> Option<Id> {
    let (&(negated, first), rest) = parts.split_first()?;
    let mut acc = if negated {
        add(egraph, Mat::Neg(first))?
    } else {
        first
    };
    for &(negated, id) in rest {
        let node = if negated {
            Mat::Sub([acc, id])
        } else {
            Mat::Add([acc, id])
        };
        acc = add(egraph, node)?;
    }
    Some(acc)
}

/// The factored term itself (without its sign).
fn factored_node(egraph: &mut EGraph, f: &Factored, shape: &Shape) -> Option<Id> {
    let k = scale(egraph, &f.content.coef, &f.content.scalars)?;
    match &f.kind {
        Kind::Word { left, right, inner } => {
            let inner_shape = if left.is_empty() && right.is_empty() {
                shape
            } else {
                inner
            };
            let letters = left.len() + right.len();
            // Only scalars left inside: `(k + l)C`.
            if letters > 0 && f.inner.iter().all(|m| m.word.is_empty()) {
                let parts = inner_parts(egraph, &f.inner, &Shape::scalar())?;
                let sum = sum_node(egraph, &parts)?;
                let acc = match k {
                    Some(k) => add(egraph, Mat::Mul([k, sum]))?,
                    None => sum,
                };
                let mut word = left.clone();
                word.extend(right);
                return times_word(egraph, Some(acc), &word)?;
            }
            let parts = inner_parts(egraph, &f.inner, inner_shape)?;
            let sum = sum_node(egraph, &parts)?;
            let acc = times_word(egraph, k, left)?;
            let acc = match acc {
                Some(a) => add(egraph, Mat::Mul([a, sum]))?,
                None => sum,
            };
            times_word(egraph, Some(acc), right)?
        }
        Kind::Hadamard { common } => {
            let mut parts = vec![];
            for m in &f.inner {
                let mut acc = scale(egraph, &m.coef, &m.scalars)?;
                let mut had: Option<Id> = None;
                for factor in &m.word {
                    had = Some(match had {
                        Some(h) => add(egraph, Mat::Had([h, *factor]))?,
                        None => *factor,
                    });
                }
                acc = match (acc, had) {
                    (Some(k), Some(h)) => Some(add(egraph, Mat::Mul([k, h]))?),
                    (None, h) => h,
                    (k, None) => k,
                };
                let id = acc.unwrap_or_else(|| number(egraph, &Rational::one()));
                parts.push((m.coef.is_negative(), id));
            }
            let sum = sum_node(egraph, &parts)?;
            let mut acc: Option<Id> = None;
            for factor in common {
                acc = Some(match acc {
                    Some(h) => add(egraph, Mat::Had([h, *factor]))?,
                    None => *factor,
                });
            }
            let had = add(egraph, Mat::Had([acc?, sum]))?;
            match k {
                Some(k) => add(egraph, Mat::Mul([k, had])),
                None => Some(had),
            }
        }
    }
}

/// The inner terms as signed classes of the given shape.
fn inner_parts(egraph: &mut EGraph, inner: &[Mono], shape: &Shape) -> Option<Vec<(bool, Id)>> {
    inner
        .iter()
        .map(|m| Some((m.coef.is_negative(), mono_node(egraph, m, shape)?)))
        .collect()
}

/// The sum with the members of `f` replaced by the factored term, where the first of
/// them was.
fn build_candidate(egraph: &mut EGraph, f: &Factored, terms: &[Term], shape: &Shape) -> Option<Id> {
    let term = factored_node(egraph, f, shape)?;
    let mut parts = vec![];
    for (i, t) in terms.iter().enumerate() {
        if f.members.first() == Some(&i) {
            parts.push((f.negated != f.content.coef.is_negative(), term));
        } else if !f.members.contains(&i) {
            parts.push((t.negated, t.class));
        }
    }
    let id = sum_node(egraph, &parts)?;
    (egraph[id].data.shape == *shape).then_some(id)
}

/// `expr` with every sum flat, for display: `a + (b − c)` is `a + b − c`, `a − (−b)` is
/// `a + b`, `−a + b` is `b − a`, and Hadamard products nested on the right are
/// regrouped to the left, in their order. Like terms are collected, exactly, at the
/// first one's place (`−U − U` is `−2U`; see [`flat_sums_collecting`]). The value is
/// the same (both operations are associative and `+` commutative, broadcasting
/// included), the printed text never longer (only parentheses, leading minus signs and
/// repeated terms go), and, as the printers keep the tree, it reads back as this tree.
pub fn flat_sums(expr: &Expr) -> Expr {
    flat_sums_collecting(expr).0
}

/// [`flat_sums`], with whether like terms were collected: a `where` name may then be
/// used once only (`−2U`), which the caller writes out in place.
///
/// Saturation rarely brings like terms together: they sit apart in a long sum, and the
/// associativity and commutativity that would bring them side by side stop at a limit
/// first (the Rayleigh quotient's Hessian printed `… − U − U …`). In the flat form they
/// are found whatever their places.
pub fn flat_sums_collecting(expr: &Expr) -> (Expr, bool) {
    let mut memo = HashMap::new();
    // Tells like terms apart in linear time; every term it sees is held by `memo`, so
    // no pointer it keys on is freed and reused while it lives.
    let mut interner = Interner::new();
    let mut collected = false;
    let res = flat_rc(
        &Rc::new(expr.clone()),
        &mut memo,
        &mut interner,
        &mut collected,
    );
    (res.as_ref().clone(), collected)
}

fn flat_rc(
    expr: &Rc<Expr>,
    memo: &mut HashMap<*const Expr, Rc<Expr>>,
    interner: &mut Interner,
    collected: &mut bool,
) -> Rc<Expr> {
    let key = Rc::as_ptr(expr);
    if let Some(done) = memo.get(&key) {
        return done.clone();
    }
    let res = match &expr.kind {
        ExprKind::Add(..) | ExprKind::Sub(..) => {
            let mut terms = vec![];
            sum_terms(expr, false, &mut terms);
            let mut terms: Vec<(bool, Rc<Expr>)> = terms
                .into_iter()
                .map(|(negative, term)| (negative, flat_rc(&term, memo, interner, collected)))
                .collect();
            if let Some(like) = collect_like_terms(&terms, &expr.shape, interner) {
                terms = like;
                *collected = true;
            }
            // The order is the one extraction chose by cost (`W(zxᵀ + xzᵀ)`, `1 − σ`),
            // except that a sum does not lead with a minus when a term is added.
            if terms.first().is_some_and(|t| t.0) {
                if let Some(at) = terms.iter().position(|t| !t.0) {
                    let first = terms.remove(at);
                    terms.insert(0, first);
                }
            }
            let mut parts = terms.into_iter();
            let (negative, first) = parts.next().expect("a sum has terms");
            let first = if negative { build::neg(first) } else { first };
            parts.fold(first, |acc, (negative, term)| {
                if negative {
                    build::sub(acc, term)
                } else {
                    build::add(acc, term)
                }
            })
        }
        ExprKind::Hadamard(..) => {
            let mut factors = vec![];
            hadamard_factors(expr, &mut factors);
            factors
                .iter()
                .map(|f| flat_rc(f, memo, interner, collected))
                .reduce(build::hadamard)
                .expect("a product has factors")
        }
        _ => {
            let mapped = expr.map_children(|child| flat_rc(child, memo, interner, collected));
            merged_scalar_powers(&mapped, interner).unwrap_or(mapped)
        }
    };
    memo.insert(key, res.clone());
    res
}

/// A scalar's powers written as one, as a person writes them: `(α²)²` is `α⁴`, `α³α`
/// is `α⁴`, `80α³⁹α⁴⁰` is `80α⁷⁹`, `αα⁻³` is `α⁻²` (extraction reaches powers by
/// squaring and cubing rules, which add no exponents). `None` when `e` is no such
/// product or power, when exponents cancel (`αα⁻¹` is undefined where `α = 0`), or when
/// the exponent would pass what the parser reads back (`--max-exponent`).
fn merged_scalar_powers(e: &Rc<Expr>, interner: &mut Interner) -> Option<Rc<Expr>> {
    if !e.shape.is_scalar() {
        return None;
    }
    let readable =
        |k: i64| k != 0 && k.unsigned_abs() <= crate::parse::Limits::standard().max_exponent;
    let power = |base: Rc<Expr>, k: i64| if k == 1 { base } else { build::pow(base, k) };
    let (base, exponent) = match &e.kind {
        ExprKind::Pow(inner, k) => match &inner.kind {
            ExprKind::Pow(base, j) => (base.clone(), j.checked_mul(*k)?),
            _ => return None,
        },
        // A scalar's elementwise power and inverse are its power: `α^{∘4}` is `α⁴`.
        ExprKind::ElemPow(base, q) if q.is_integer() => {
            (base.clone(), q.to_integer().try_into().ok()?)
        }
        ExprKind::Inverse(inner) => match &inner.kind {
            ExprKind::Pow(base, j) => (base.clone(), j.checked_neg()?),
            _ => return None,
        },
        ExprKind::Mul(..) => {
            // The factors of the scalar product, each (base, exponent), equal bases
            // merged at the first one's place; numbers stay as they are.
            let mut factors = vec![];
            scalar_factors(e, &mut factors);
            let mut merged: Vec<(Rc<Expr>, i64)> = vec![];
            let mut place_of: rustc_hash::FxHashMap<usize, usize> = Default::default();
            let mut changed = false;
            for factor in factors {
                let (base, k) = match &factor.kind {
                    ExprKind::Pow(base, k) => (base.clone(), *k),
                    _ => (factor, 1),
                };
                if base.as_constant().is_some() {
                    merged.push((base, k));
                    continue;
                }
                match place_of.entry(interner.id(&base)) {
                    std::collections::hash_map::Entry::Occupied(place) => {
                        let slot = &mut merged[*place.get()].1;
                        *slot = slot.checked_add(k)?;
                        changed = true;
                    }
                    std::collections::hash_map::Entry::Vacant(place) => {
                        place.insert(merged.len());
                        merged.push((base, k));
                    }
                }
            }
            if !changed || !merged.iter().all(|(_, k)| readable(*k)) {
                return None;
            }
            return merged
                .into_iter()
                .map(|(base, k)| power(base, k))
                .reduce(build::mul);
        }
        _ => return None,
    };
    readable(exponent).then(|| power(base, exponent))
}

/// The factors of a product of scalars, in order.
fn scalar_factors(e: &Rc<Expr>, out: &mut Vec<Rc<Expr>>) {
    match &e.kind {
        ExprKind::Mul(a, b) if a.shape.is_scalar() && b.shape.is_scalar() => {
            scalar_factors(a, out);
            scalar_factors(b, out);
        }
        _ => out.push(e.clone()),
    }
}

/// The terms of a sum with like terms collected (`−U − U` is `−2U`, `2x + x` is `3x`):
/// terms equal but for a leading numeric coefficient become one, at the first one's
/// place, with the coefficients added exactly. `None` when no two terms are alike, so
/// that such sums keep extraction's form, or when collecting would change the sum's
/// shape (`x − x + s`, with `s` a scalar broadcast, would leave the scalar `s`).
fn collect_like_terms(
    terms: &[(bool, Rc<Expr>)],
    shape: &Shape,
    interner: &mut Interner,
) -> Option<Vec<(bool, Rc<Expr>)>> {
    // (coefficient, the term without it), in the order of first occurrence.
    let mut groups: Vec<(Rational, Rc<Expr>)> = vec![];
    let mut group_of: rustc_hash::FxHashMap<usize, usize> = Default::default();
    let mut merged = false;
    for (negative, term) in terms {
        let (mut coefficient, mut rest) = (Rational::one(), term.clone());
        while let ExprKind::Mul(k, inner) = &rest.kind {
            let ExprKind::Num(q) = &k.kind else {
                break;
            };
            coefficient *= q;
            rest = inner.clone();
        }
        let coefficient = if *negative { -coefficient } else { coefficient };
        match group_of.entry(interner.id(&rest)) {
            std::collections::hash_map::Entry::Occupied(group) => {
                groups[*group.get()].0 += coefficient;
                merged = true;
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push((coefficient, rest));
            }
        }
    }
    if !merged {
        return None;
    }
    let collected: Vec<(bool, Rc<Expr>)> = groups
        .into_iter()
        .filter(|(coefficient, _)| !coefficient.is_zero())
        .map(|(coefficient, rest)| {
            let magnitude = coefficient.abs();
            let term = if magnitude.is_one() {
                rest
            } else {
                scaled_first(build::constant(magnitude), &rest)
            };
            (coefficient.is_negative(), term)
        })
        .collect();
    collected
        .iter()
        .any(|(_, term)| term.shape == *shape)
        .then_some(collected)
}

/// `k·term` with `k` on the first factor of a product or quotient, `2AᵀZ/η`, which
/// prints without the parentheses of `2(AᵀZ/η)` (the printers keep the tree).
pub(super) fn scaled_first(k: Rc<Expr>, term: &Rc<Expr>) -> Rc<Expr> {
    match &term.kind {
        ExprKind::Mul(a, b) => build::mul(scaled_first(k, a), b.clone()),
        ExprKind::Div(a, b) => build::div(scaled_first(k, a), b.clone()),
        _ => build::mul(k, term.clone()),
    }
}

/// The signed terms of a sum, through sums, differences and negated terms.
fn sum_terms(expr: &Rc<Expr>, negative: bool, out: &mut Vec<(bool, Rc<Expr>)>) {
    match &expr.kind {
        ExprKind::Add(a, b) => {
            sum_terms(a, negative, out);
            sum_terms(b, negative, out);
        }
        ExprKind::Sub(a, b) => {
            sum_terms(a, negative, out);
            sum_terms(b, !negative, out);
        }
        ExprKind::Neg(a) => sum_terms(a, !negative, out),
        _ => out.push((negative, expr.clone())),
    }
}

/// The factors of a Hadamard product nested either way, in order.
fn hadamard_factors(expr: &Rc<Expr>, out: &mut Vec<Rc<Expr>>) {
    match &expr.kind {
        ExprKind::Hadamard(a, b) => {
            hadamard_factors(a, out);
            hadamard_factors(b, out);
        }
        _ => out.push(expr.clone()),
    }
}
