//! Every rewrite rule preserves value, checked by random sampling (ruler's `validate`).
//!
//! The test iterates over the whole of `all_rules()`, so a new rule is covered without
//! anyone adding a case. For each rule it instantiates the left-hand side's pattern
//! variables with random variables of random small shapes and properties (symmetric or
//! SPD where square), keeps the well-typed instances, runs that one rule once on an
//! e-graph holding the instance, and then checks that every e-node of every e-class
//! evaluates (with `numeric::evaluate`) to the same matrix as its class's smallest
//! term. A rule whose guards reject (almost) every instance fails the test too: it was
//! never exercised.
//!
//! The same instantiation gives every rule its snapshot in `snapshots/simplify/rules/`:
//! the first instance, over readable fixed shapes, on which the rule fires, before and
//! after.

use std::collections::{BTreeMap, HashSet};

use egg::{AstSize, ENodeOrVar, Extractor, Id, Language, RecExpr, Runner};
use matcalc::numeric::{evaluate, Instance};
use matcalc::print::{render, Style};
use matcalc::simplify::analysis::{node_shape, EGraph, MatAnalysis};
use matcalc::simplify::lang::{add_shape_carrier, rec_to_expr, DimLeaf, Mat, VarShapes};
use matcalc::simplify::rules::{all_rules, Rewrite};
use matcalc::{Dim, Props, Shape, VarDecl};
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Adds one instance of a pattern variable the left-hand side does not bind.
type Builder<'a> = dyn Fn(&mut RecExpr<Mat>) -> Id + 'a;

/// Instances to try per rule, and how many fired instances are enough.
const ATTEMPTS: usize = 3000;
const ENOUGH_FIRINGS: usize = 20;

struct Problem {
    rec: RecExpr<Mat>,
    vars: BTreeMap<String, VarDecl>,
    values: BTreeMap<String, DMatrix<f64>>,
}

fn random_matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| rng.gen_range(-1.0..1.0))
}

/// The variables of a pattern that stand for an integer: an exponent (`(pow ?a ?k)`, the
/// offset of `(powsym ?a ?k ?o)`), instantiated with a number, and the symbol of a
/// symbolic power (`?k` there), instantiated with an integer variable.
fn integer_vars(ast: &RecExpr<ENodeOrVar<Mat>>) -> (Vec<egg::Var>, Vec<egg::Var>) {
    let nodes = ast.as_ref();
    let var = |id: &Id| match nodes[usize::from(*id)] {
        ENodeOrVar::Var(v) => Some(v),
        _ => None,
    };
    let (mut numbers, mut symbols) = (vec![], vec![]);
    for node in nodes {
        match node {
            ENodeOrVar::ENode(Mat::Pow([_, k]) | Mat::ElemPow([_, k])) => numbers.extend(var(k)),
            ENodeOrVar::ENode(Mat::PowSym([_, k, offset])) => {
                symbols.extend(var(k));
                numbers.extend(var(offset));
            }
            _ => {}
        }
    }
    (numbers, symbols)
}

/// An integer variable of a symbolic power, as an instance declares it.
fn integer_decl() -> VarDecl {
    VarDecl {
        shape: Shape::scalar(),
        props: Props {
            integer: true,
            ..Props::default()
        },
    }
}

/// The value-variables and size-variables of a pattern (integer variables, see
/// [`integer_vars`], are neither).
fn pattern_vars(ast: &RecExpr<ENodeOrVar<Mat>>) -> (Vec<egg::Var>, Vec<egg::Var>) {
    let nodes = ast.as_ref();
    let (numbers, symbols) = integer_vars(ast);
    let mut sizes = vec![];
    for node in nodes {
        let children: &[Id] = match node {
            ENodeOrVar::ENode(Mat::Identity(child) | Mat::Ones(child)) => {
                std::slice::from_ref(child)
            }
            ENodeOrVar::ENode(Mat::Commutation(children)) => children,
            _ => &[],
        };
        for child in children {
            if let ENodeOrVar::Var(v) = nodes[usize::from(*child)] {
                if !sizes.contains(&v) {
                    sizes.push(v);
                }
            }
        }
    }
    let mut values = vec![];
    for node in nodes {
        if let ENodeOrVar::Var(v) = node {
            let integer = numbers.contains(v) || symbols.contains(v);
            if !integer && !sizes.contains(v) && !values.contains(v) {
                values.push(*v);
            }
        }
    }
    (values, sizes)
}

fn well_typed(rec: &RecExpr<Mat>, vars: &BTreeMap<String, VarDecl>) -> bool {
    let mut facts: Vec<(Shape, Option<Dim>)> = vec![];
    for node in rec.as_ref() {
        let (shape, ok) = node_shape(
            node,
            |id: Id| facts[usize::from(id)].clone(),
            |name| vars.get(name).map(|d| d.shape.clone()),
        );
        if !ok {
            return false;
        }
        let dim = match node {
            Mat::Dim(DimLeaf(d)) => Some(d.clone()),
            _ => None,
        };
        facts.push((shape, dim));
    }
    true
}

/// A random instance of the pattern `ast`; with `ones`, each value variable is, by a coin
/// toss, the all-ones value of its shape instead (what the rules guarded by
/// `AllOnes` need).
fn draw(ast: &RecExpr<ENodeOrVar<Mat>>, rng: &mut ChaCha8Rng, ones: bool) -> Option<Problem> {
    let (value_vars, size_vars) = pattern_vars(ast);
    let mut vars = BTreeMap::new();
    let mut values = BTreeMap::new();
    let mut leaves: BTreeMap<egg::Var, Mat> = BTreeMap::new();
    let mut all_ones: BTreeMap<egg::Var, Shape> = BTreeMap::new();
    for var in &value_vars {
        let name = var.to_string().trim_start_matches('?').to_string();
        let rows = rng.gen_range(1..=3usize);
        let cols = if rng.gen_bool(0.4) {
            rows
        } else {
            rng.gen_range(1..=3usize)
        };
        let kind = if rows == cols && rows > 1 {
            rng.gen_range(0..3)
        } else {
            0
        };
        let base = random_matrix(rng, rows, cols);
        let value = match kind {
            1 => &base + base.transpose(),
            2 => &base * base.transpose() + DMatrix::identity(rows, rows) * rows as f64,
            _ => base,
        };
        let props = Props {
            symmetric: kind >= 1,
            positive_definite: kind == 2,
            integer: false,
        };
        let shape = Shape::new(Dim::Known(rows as u64), Dim::Known(cols as u64));
        if ones && rng.gen_bool(0.5) {
            all_ones.insert(*var, shape);
            continue;
        }
        vars.insert(name.clone(), VarDecl { shape, props });
        values.insert(name.clone(), value);
        leaves.insert(*var, Mat::Symbol(egg::Symbol::from(name.as_str())));
    }
    for var in &size_vars {
        let n = rng.gen_range(1..=3u64);
        leaves.insert(*var, Mat::Dim(DimLeaf(Dim::Known(n))));
    }
    let (numbers, symbols) = integer_vars(ast);
    for var in &numbers {
        let k = rng.gen_range(-3..=4i64);
        leaves.insert(*var, Mat::Num(matcalc::simplify::lang::Num::int(k)));
    }
    for var in &symbols {
        let name = var.to_string().trim_start_matches('?').to_string();
        let k = rng.gen_range(0..=4i32);
        vars.insert(name.clone(), integer_decl());
        values.insert(name.clone(), DMatrix::from_element(1, 1, f64::from(k)));
        leaves.insert(*var, Mat::Symbol(egg::Symbol::from(name.as_str())));
    }
    let mut rec = RecExpr::default();
    let mut ids: Vec<Id> = Vec::with_capacity(ast.as_ref().len());
    for node in ast.as_ref() {
        let id = match node {
            ENodeOrVar::ENode(enode) => {
                rec.add(enode.clone().map_children(|child| ids[usize::from(child)]))
            }
            ENodeOrVar::Var(v) => match all_ones.get(v) {
                Some(shape) => add_shape_carrier(shape, false, &mut |node| rec.add(node)),
                None => rec.add(leaves.get(v)?.clone()),
            },
        };
        ids.push(id);
    }
    if !well_typed(&rec, &vars) {
        return None;
    }
    Some(Problem { rec, vars, values })
}

fn close(a: &DMatrix<f64>, b: &DMatrix<f64>) -> Option<bool> {
    if a.shape() != b.shape() {
        return Some(false);
    }
    if a.iter().chain(b.iter()).any(|v| !v.is_finite()) {
        return None;
    }
    let scale = a.iter().chain(b.iter()).fold(1.0f64, |m, v| m.max(v.abs()));
    Some((a - b).iter().all(|d| d.abs() <= 1e-7 * scale))
}

/// Runs `rule` once on the instance; `Ok(fired)` or `Err(description of a mismatch)`.
fn check_instance(rule: &Rewrite, problem: &Problem) -> Result<bool, String> {
    let mut egraph = EGraph::new(MatAnalysis::new(problem.vars.clone()));
    egraph.add_expr(&problem.rec);
    egraph.rebuild();
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_iter_limit(1)
        .with_node_limit(10_000)
        .run(std::slice::from_ref(rule));
    let fired = runner
        .iterations
        .first()
        .is_some_and(|it| it.applied.values().sum::<usize>() > 0);
    if !fired {
        return Ok(false);
    }
    let egraph = &runner.egraph;
    let extractor = Extractor::new(egraph, AstSize);
    let shapes: VarShapes = problem
        .vars
        .iter()
        .map(|(name, decl)| (name.clone(), decl.shape.clone()))
        .collect();
    let sizes: BTreeMap<String, usize> = BTreeMap::new();
    let instance = Instance::new(sizes, problem.values.clone());
    let value_of = |rec: &RecExpr<Mat>| -> Option<DMatrix<f64>> {
        let expr = rec_to_expr(rec, &shapes).ok()?;
        evaluate(&expr, &instance).ok()
    };
    for class in egraph.classes() {
        if class.data.dim.is_some() {
            continue;
        }
        let (_, best) = extractor.find_best(class.id);
        let Some(expected) = value_of(&best) else {
            continue;
        };
        for enode in &class.nodes {
            let rec = enode.build_recexpr(|id| extractor.find_best_node(id).clone());
            let Some(got) = value_of(&rec) else {
                continue;
            };
            if close(&expected, &got) == Some(false) {
                return Err(format!(
                    "rule {}: on {} the class of {best} also holds {rec}\n  values {:?}\n  {best} = {expected}\n  {rec} = {got}",
                    rule.name, problem.rec, problem.values
                ));
            }
        }
    }
    Ok(true)
}

#[test]
fn rules_preserve_value_on_random_instances() {
    let rules = all_rules();
    let mut failures = vec![];
    let mut never_fired = vec![];
    let mut seen = HashSet::new();
    for rule in &rules {
        assert!(seen.insert(rule.name), "duplicate rule {}", rule.name);
        let Some(ast) = rule.searcher.get_pattern_ast() else {
            failures.push(format!("rule {} has no pattern", rule.name));
            continue;
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        let mut fired = 0;
        // Instances of random values first; where (almost) none fires, instances where
        // some values are all ones.
        for attempt in 0..2 * ATTEMPTS {
            if attempt == ATTEMPTS && fired >= 3 {
                break;
            }
            let Some(problem) = draw(ast, &mut rng, attempt >= ATTEMPTS) else {
                continue;
            };
            match check_instance(rule, &problem) {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(message) => {
                    failures.push(message);
                    break;
                }
            }
            if fired >= ENOUGH_FIRINGS {
                break;
            }
        }
        if fired < 3 {
            never_fired.push(rule.name.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "rules that change a value:\n{}",
        failures.join("\n")
    );
    assert!(
        never_fired.is_empty(),
        "rules exercised by fewer than 3 random instances: {never_fired:?}"
    );
}

/// The shapes tried for each value variable of a rule's left-hand side, most readable
/// first: a general square matrix, a vector, a symmetric matrix, a rectangular matrix,
/// a scalar. Each is `(rows, cols, symmetric)`.
const EXAMPLE_SHAPES: [(u64, u64, bool); 5] = [
    (3, 3, false),
    (3, 1, false),
    (3, 3, true),
    (2, 3, false),
    (1, 1, false),
];

/// The printed name of a pattern variable bound to a value of the given shape: upper
/// case for matrices, lower case for vectors, Greek for scalars.
fn example_name(var: &egg::Var, rows: u64, cols: u64) -> String {
    let bare = var.to_string().trim_start_matches('?').to_string();
    if rows == 1 && cols == 1 {
        let greek = match bare.as_str() {
            "a" => "α",
            "b" => "β",
            "c" => "γ",
            "k" => "κ",
            "l" => "λ",
            "z" => "ζ",
            _ => "ψ",
        };
        greek.to_string()
    } else if cols == 1 {
        bare.to_lowercase()
    } else {
        bare.to_uppercase()
    }
}

/// The first instance (in the order of [`EXAMPLE_SHAPES`]) of `rule`'s left-hand side
/// on which the rule fires, rendered as `lhs ⇒ rhs` with the variables' shapes.
fn rule_example(rule: &Rewrite) -> Result<String, String> {
    let searcher = rule
        .searcher
        .get_pattern_ast()
        .ok_or("the rule has no searcher pattern")?;
    let applier = rule
        .applier
        .get_pattern_ast()
        .ok_or("the rule has no applier pattern")?;
    let (value_vars, size_vars) = pattern_vars(searcher);
    let combinations = EXAMPLE_SHAPES.len().pow(value_vars.len() as u32);
    // Variables as named values first; then, for the rules about all-ones values, each
    // the all-ones value of its shape.
    for (ones, index) in [false, true]
        .into_iter()
        .flat_map(|ones| (0..combinations).map(move |index| (ones, index)))
    {
        let mut vars = BTreeMap::new();
        let mut leaves: BTreeMap<egg::Var, Mat> = BTreeMap::new();
        let mut all_ones: BTreeMap<egg::Var, Shape> = BTreeMap::new();
        let mut rest = index;
        for var in &value_vars {
            let (rows, cols, symmetric) = EXAMPLE_SHAPES[rest % EXAMPLE_SHAPES.len()];
            rest /= EXAMPLE_SHAPES.len();
            let shape = Shape::new(Dim::Known(rows), Dim::Known(cols));
            if ones {
                all_ones.insert(*var, shape);
                continue;
            }
            let name = example_name(var, rows, cols);
            let props = Props {
                symmetric,
                positive_definite: false,
                integer: false,
            };
            vars.insert(name.clone(), VarDecl { shape, props });
            leaves.insert(*var, Mat::Symbol(egg::Symbol::from(name.as_str())));
        }
        // With all-ones values, sizes 2, 3 and 6, so that a vector of ones can be the
        // vec of a 2×3 or 3×2 one (unvec(𝟙₆) = 𝟙₃𝟙₂ᵀ).
        for (k, var) in size_vars.iter().enumerate() {
            let size = if ones { [2, 3, 6][k.min(2)] } else { 3 };
            leaves.insert(*var, Mat::Dim(DimLeaf(Dim::Known(size))));
        }
        let (numbers, symbols) = integer_vars(searcher);
        for var in &numbers {
            leaves.insert(*var, Mat::Num(matcalc::simplify::lang::Num::int(2)));
        }
        for var in &symbols {
            let name = var.to_string().trim_start_matches('?').to_string();
            vars.insert(name.clone(), integer_decl());
            leaves.insert(*var, Mat::Symbol(egg::Symbol::from(name.as_str())));
        }
        // A size bound only by the right-hand side (`AA⁻¹ = I`): every example matrix it
        // can be the size of has 3 rows; as an exponent (det(A ⊗ B) = det(A)³det(B)³)
        // it is the number 3; the size of a Kronecker product of two (Iₘ ⊗ Iₙ = Iₘₙ) is 9.
        // A factor carrying the match's shape (`0·A ⇒ 0·𝟙𝟙ᵀ`) is built for that shape.
        let instantiate = |ast: &RecExpr<ENodeOrVar<Mat>>, unbound: &Builder<'_>| -> RecExpr<Mat> {
            let mut rec = RecExpr::default();
            let mut ids: Vec<Id> = Vec::with_capacity(ast.as_ref().len());
            for node in ast.as_ref() {
                let id = match node {
                    ENodeOrVar::ENode(enode) => {
                        rec.add(enode.clone().map_children(|child| ids[usize::from(child)]))
                    }
                    ENodeOrVar::Var(v) => match (leaves.get(v), all_ones.get(v)) {
                        (Some(leaf), _) => rec.add(leaf.clone()),
                        (None, Some(shape)) => {
                            add_shape_carrier(shape, false, &mut |node| rec.add(node))
                        }
                        (None, None) => unbound(&mut rec),
                    },
                };
                ids.push(id);
            }
            rec
        };
        let leaf = |leaf: Mat| move |rec: &mut RecExpr<Mat>| rec.add(leaf.clone());
        let lhs = instantiate(searcher, &leaf(Mat::Dim(DimLeaf(Dim::Known(3)))));
        if !well_typed(&lhs, &vars) {
            continue;
        }
        let mut egraph = EGraph::new(MatAnalysis::new(vars.clone()));
        let root = egraph.add_expr(&lhs);
        egraph.rebuild();
        let runner = Runner::default()
            .with_egraph(egraph)
            .with_iter_limit(1)
            .with_node_limit(10_000)
            .run(std::slice::from_ref(rule));
        let egraph = &runner.egraph;
        let found = |rec: &RecExpr<Mat>| {
            egraph.lookup_expr(rec).map(|id| egraph.find(id)) == Some(egraph.find(root))
        };
        let root_shape = egraph[root].data.shape.clone();
        let carrier = |rec: &mut RecExpr<Mat>| {
            add_shape_carrier(&root_shape, true, &mut |node| rec.add(node))
        };
        let unbound: [&Builder<'_>; 4] = [
            &leaf(Mat::Dim(DimLeaf(Dim::Known(3)))),
            &leaf(Mat::Num(matcalc::simplify::lang::Num::int(3))),
            &leaf(Mat::Dim(DimLeaf(Dim::Known(9)))),
            &carrier,
        ];
        let Some(rhs) = unbound
            .iter()
            .map(|unbound| instantiate(applier, unbound))
            .find(|rhs| found(rhs))
        else {
            continue;
        };
        let shapes: VarShapes = vars
            .iter()
            .map(|(name, decl)| (name.clone(), decl.shape.clone()))
            .collect();
        let render = |rec: &RecExpr<Mat>| -> Result<String, String> {
            let expr = rec_to_expr(rec, &shapes)?;
            Ok(render(&expr, Style::Unicode))
        };
        let mut out = format!("{}: {} ⇒ {}\n", rule.name, render(&lhs)?, render(&rhs)?);
        let declared: Vec<String> = vars
            .iter()
            .map(|(name, decl)| {
                let shape = &decl.shape;
                let symmetric = if decl.props.symmetric { " sym" } else { "" };
                format!("{name}: {}×{}{symmetric}", shape.rows, shape.cols)
            })
            .collect();
        if !declared.is_empty() {
            out += &format!("  with {}\n", declared.join(", "));
        }
        out += &format!("  pattern {searcher} ⇒ {applier}\n");
        return Ok(out);
    }
    Err(format!("rule {}: no example instance fires", rule.name))
}

/// One snapshot per rewrite rule: a concrete instance of its left-hand side and what
/// the rule rewrites it to. It iterates over `all_rules()`, so a new rule gets a
/// snapshot (and a failing `insta` check until someone reads and accepts it).
#[test]
fn rules_before_and_after_snapshots() {
    let mut failures = vec![];
    insta::with_settings!({snapshot_path => "../snapshots/simplify/rules", prepend_module_to_snapshot => false, omit_expression => true}, {
        for rule in all_rules() {
            match rule_example(&rule) {
                Ok(example) => insta::assert_snapshot!(rule.name.to_string(), example),
                Err(message) => failures.push(message),
            }
        }
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
