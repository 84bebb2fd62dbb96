//! The compute form's bracketing: every product chain `F₁F₂…Fₙ` is re-associated by the
//! matrix-chain dynamic programme with the sizes given (`--sizes`), instead of being left
//! to whichever association equality saturation happened to reach.
//!
//! For factors of dimensions `p₀×p₁, p₁×p₂, …`, `m[i][j] = min_k m[i][k] + m[k+1][j] +
//! p_{i−1}p_k p_j`: O(n³) for the short chains of derivatives. Scalar factors of a chain
//! (`A(kB)C`) are collected and applied once, to the intermediate result with the fewest
//! entries (the cheapest place to scale).

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::expr::{build, Dim, Expr, ExprKind, Shape};

use super::cost::FlopCost;
use crate::limits::Deadline;

/// The cheapest bracketing of a chain of factors with dimensions `dims` (`n + 1` values
/// for `n` factors): its flop count (`mkn` per `m×k · k×n` product) and, for every
/// sub-chain `i..=j`, the split after which it is divided (`split[i][j] = k`: the
/// sub-chains `i..=k` and `k+1..=j`).
pub fn optimal_bracketing(dims: &[f64]) -> (f64, Vec<Vec<usize>>) {
    let never = Deadline::never();
    bracketing_until(dims, &never).unwrap_or_else(|| (f64::INFINITY, vec![]))
}

/// [`optimal_bracketing`], or `None` once `deadline` has passed (O(n³) for a chain of
/// n factors: a long chain's programme alone may outlast the time limit).
fn bracketing_until(dims: &[f64], deadline: &Deadline) -> Option<(f64, Vec<Vec<usize>>)> {
    let n = dims.len().saturating_sub(1);
    let mut cost = vec![vec![0.0f64; n]; n];
    let mut split = vec![vec![0usize; n]; n];
    for len in 2..=n {
        if deadline.passed() {
            return None;
        }
        for i in 0..=n - len {
            let j = i + len - 1;
            let mut best = f64::INFINITY;
            for k in i..j {
                let here = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1];
                // The first of equal splits wins, so that ties keep the left-nested
                // `((AB)C)` a person reads.
                if here < best {
                    best = here;
                    split[i][j] = k;
                }
            }
            cost[i][j] = best;
        }
    }
    let total = if n == 0 { 0.0 } else { cost[0][n - 1] };
    Some((total, split))
}

/// `expr` with every product chain bracketed by [`optimal_bracketing`] for `sizes`
/// (size symbol → value; a symbol without one counts as [`FlopCost::DEFAULT_SIZE`]).
/// Subtrees shared through [`Rc`] stay shared.
pub fn rebracket(expr: &Expr, sizes: &BTreeMap<String, u64>) -> Expr {
    rebracket_until(expr, sizes, &Deadline::never())
}

/// [`rebracket`], leaving every chain not yet bracketed by `deadline` as it is.
pub fn rebracket_until(expr: &Expr, sizes: &BTreeMap<String, u64>, deadline: &Deadline) -> Expr {
    let mut memo = HashMap::new();
    Rebracket {
        sizes,
        memo: &mut memo,
        deadline,
    }
    .visit(&Rc::new(expr.clone()))
    .as_ref()
    .clone()
}

struct Rebracket<'a> {
    sizes: &'a BTreeMap<String, u64>,
    memo: &'a mut HashMap<*const Expr, Rc<Expr>>,
    deadline: &'a Deadline,
}

impl Rebracket<'_> {
    fn dim(&self, dim: &Dim) -> f64 {
        FlopCost::size_of(dim, self.sizes)
    }

    fn entries(&self, shape: &Shape) -> f64 {
        self.dim(&shape.rows) * self.dim(&shape.cols)
    }

    fn visit(&mut self, expr: &Rc<Expr>) -> Rc<Expr> {
        let key = Rc::as_ptr(expr);
        if let Some(done) = self.memo.get(&key) {
            return done.clone();
        }
        if self.deadline.passed() {
            return expr.clone();
        }
        let res = if let ExprKind::Mul(..) = expr.kind {
            let mut factors = vec![];
            let mut scalars = vec![];
            flatten(expr, &mut factors, &mut scalars);
            let factors: Vec<Rc<Expr>> = factors.iter().map(|f| self.visit(f)).collect();
            let scalars: Vec<Rc<Expr>> = scalars.iter().map(|s| self.visit(s)).collect();
            self.chain(&factors, scalars)
        } else {
            let mut node = expr.as_ref().clone();
            for child in node.children_mut() {
                *child = self.visit(child);
            }
            Rc::new(node)
        };
        self.memo.insert(key, res.clone());
        res
    }

    /// The product of `factors` bracketed optimally, scaled by the product of `scalars`.
    fn chain(&self, factors: &[Rc<Expr>], scalars: Vec<Rc<Expr>>) -> Rc<Expr> {
        let scale = scalars.into_iter().reduce(build::mul);
        if factors.is_empty() {
            return scale.unwrap_or_else(|| build::int(1));
        }
        let mut dims: Vec<f64> = vec![self.dim(&factors[0].shape.rows)];
        dims.extend(factors.iter().map(|f| self.dim(&f.shape.cols)));
        let Some((_, split)) = bracketing_until(&dims, self.deadline) else {
            let product = factors[1..]
                .iter()
                .fold(factors[0].clone(), |product, factor| {
                    build::mul(product, factor.clone())
                });
            return match scale {
                Some(scale) => build::mul(scale, product),
                None => product,
            };
        };
        // The scaling goes on the sub-product with the fewest entries.
        let place = scale.as_ref().map(|_| {
            let mut best = (f64::INFINITY, (0, factors.len() - 1));
            let mut stack = vec![(0, factors.len() - 1)];
            while let Some((i, j)) = stack.pop() {
                let entries = dims[i] * dims[j + 1];
                if entries < best.0 {
                    best = (entries, (i, j));
                }
                if i < j {
                    let k = split[i][j];
                    stack.push((i, k));
                    stack.push((k + 1, j));
                }
            }
            best.1
        });
        build_chain(
            factors,
            &split,
            0,
            factors.len() - 1,
            scale.zip(place).as_ref(),
        )
    }
}

fn build_chain(
    factors: &[Rc<Expr>],
    split: &[Vec<usize>],
    i: usize,
    j: usize,
    scale: Option<&(Rc<Expr>, (usize, usize))>,
) -> Rc<Expr> {
    let product = if i == j {
        factors[i].clone()
    } else {
        let k = split[i][j];
        build::mul(
            build_chain(factors, split, i, k, scale),
            build_chain(factors, split, k + 1, j, scale),
        )
    };
    match scale {
        Some((k, place)) if *place == (i, j) => build::mul(k.clone(), product),
        _ => product,
    }
}

/// The factors of a product chain, in order, and its scalar factors: a scaling
/// (`kA`, `Ak`) inside the chain contributes its scalar and its matrix.
fn flatten(expr: &Rc<Expr>, factors: &mut Vec<Rc<Expr>>, scalars: &mut Vec<Rc<Expr>>) {
    match &expr.kind {
        ExprKind::Mul(a, b) => match (a.shape.is_scalar(), b.shape.is_scalar()) {
            (true, false) => {
                scalars.push(a.clone());
                flatten(b, factors, scalars);
            }
            (false, true) => {
                flatten(a, factors, scalars);
                scalars.push(b.clone());
            }
            _ => {
                flatten(a, factors, scalars);
                flatten(b, factors, scalars);
            }
        },
        _ => factors.push(expr.clone()),
    }
}

/// The flops of `expr`'s products alone (`mkn` per product, one per entry per scaling),
/// each shared subtree counted once: the measure [`rebracket`] minimises.
pub fn product_flops(expr: &Expr, sizes: &BTreeMap<String, u64>) -> f64 {
    let never = Deadline::never();
    let walker = Rebracket {
        sizes,
        memo: &mut HashMap::new(),
        deadline: &never,
    };
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![expr];
    let mut total = 0.0;
    while let Some(node) = stack.pop() {
        if !seen.insert(node as *const Expr) {
            continue;
        }
        if let ExprKind::Mul(a, b) = &node.kind {
            total += if a.shape.is_scalar() {
                walker.entries(&b.shape)
            } else if b.shape.is_scalar() {
                walker.entries(&a.shape)
            } else {
                walker.dim(&a.shape.rows) * walker.dim(&a.shape.cols) * walker.dim(&b.shape.cols)
            };
        }
        stack.extend(node.children().into_iter().map(|c| c.as_ref()));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The cheapest flop count over every bracketing, by enumeration.
    fn brute_force(dims: &[f64], i: usize, j: usize) -> f64 {
        if i == j {
            return 0.0;
        }
        (i..j)
            .map(|k| {
                brute_force(dims, i, k)
                    + brute_force(dims, k + 1, j)
                    + dims[i] * dims[k + 1] * dims[j + 1]
            })
            .fold(f64::INFINITY, f64::min)
    }

    fn random_chain(rng: &mut ChaCha8Rng) -> (Vec<Rc<Expr>>, BTreeMap<String, u64>) {
        let n = rng.gen_range(1..=7);
        let mut sizes = BTreeMap::new();
        let dims: Vec<Dim> = (0..=n)
            .map(|k| {
                if rng.gen_bool(0.2) {
                    Dim::Known(1)
                } else {
                    let name = format!("d{k}");
                    sizes.insert(name.clone(), rng.gen_range(2..400));
                    Dim::Sym(name.into())
                }
            })
            .collect();
        let factors = (0..n)
            .map(|k| {
                build::var(
                    &format!("F{k}"),
                    Shape::new(dims[k].clone(), dims[k + 1].clone()),
                )
            })
            .collect();
        (factors, sizes)
    }

    #[test]
    fn chain_dp_equals_brute_force_on_random_chains() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        for _ in 0..300 {
            let n = rng.gen_range(1..=8);
            let dims: Vec<f64> = (0..=n)
                .map(|_| f64::from(rng.gen_range(1..50u32)))
                .collect();
            let (dp, _) = optimal_bracketing(&dims);
            assert_eq!(dp, brute_force(&dims, 0, n - 1), "dims {dims:?}");
        }
    }

    #[test]
    fn chain_rebracketed_products_cost_the_optimum() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..300 {
            let (factors, sizes) = random_chain(&mut rng);
            // A random association of the chain, as extraction might leave it.
            let mut parts = factors.clone();
            while parts.len() > 1 {
                let at = rng.gen_range(0..parts.len() - 1);
                let right = parts.remove(at + 1);
                parts[at] = build::mul(parts[at].clone(), right);
            }
            let input = parts.pop().unwrap();
            let walker = Rebracket {
                sizes: &sizes,
                memo: &mut HashMap::new(),
                deadline: &Deadline::never(),
            };
            let mut dims = vec![walker.dim(&factors[0].shape.rows)];
            dims.extend(factors.iter().map(|f| walker.dim(&f.shape.cols)));
            let out = rebracket(&input, &sizes);
            let optimum = brute_force(&dims, 0, factors.len() - 1);
            assert_eq!(product_flops(&out, &sizes), optimum, "{input:?}");
            assert!(product_flops(&out, &sizes) <= product_flops(&input, &sizes));
            // The value is unchanged, on random matrices of small sizes.
            let small: BTreeMap<String, usize> = sizes
                .keys()
                .map(|k| (k.clone(), rng.gen_range(1..4)))
                .collect();
            let dim = |d: &Dim| match d {
                Dim::Sym(name) => small[name.as_str()],
                _ => 1,
            };
            let values = factors
                .iter()
                .map(|f| {
                    let ExprKind::Var(name) = &f.kind else {
                        unreachable!()
                    };
                    let (r, c) = (dim(&f.shape.rows), dim(&f.shape.cols));
                    (
                        name.clone(),
                        nalgebra::DMatrix::from_fn(r, c, |_, _| rng.gen_range(-1.0..1.0)),
                    )
                })
                .collect();
            let instance = crate::numeric::Instance::new(small.clone(), values);
            let before = crate::numeric::evaluate(&input, &instance).unwrap();
            let after = crate::numeric::evaluate(&out, &instance).unwrap();
            assert!((before - after).norm() < 1e-9);
            assert_eq!(out.shape, input.shape);
        }
    }

    #[test]
    fn chain_scaling_goes_to_the_smallest_intermediate() {
        let n = Dim::Sym("n".into());
        let a = build::var("A", Shape::new(n.clone(), n.clone()));
        let x = build::var("x", Shape::vector(n));
        let k = build::var("k", Shape::scalar());
        // k(AAx): scaling a vector costs n, scaling A (the input's choice) n².
        let input = build::mul(build::mul(k, a.clone()), build::mul(a, x));
        let out = rebracket(&input, &BTreeMap::new());
        let n = FlopCost::DEFAULT_SIZE;
        assert_eq!(product_flops(&input, &BTreeMap::new()), 2.0 * n * n + n * n);
        assert_eq!(product_flops(&out, &BTreeMap::new()), 2.0 * n * n + n);
    }
}
