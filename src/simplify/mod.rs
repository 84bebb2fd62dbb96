//! Simplification by equality saturation: an [`Expr`] in, a [`Simplified`] out, with a
//! display form for people (`W(zxᵀ + xzᵀ)`), a compute form for machines
//! (`(Wz)xᵀ + (Wx)zᵀ`), and `where` definitions shared by both (`z = WᵀWx − x`).
//!
//! One e-graph, two extractions (SPEC §6). The invariant every part keeps: every rewrite
//! preserves value and shape, so both forms equal the input for every value of its
//! variables (checked rule by rule in `tests/rules_preserve_value.rs`). Saturation is
//! always bounded by a [`Limits`]; when a limit stops it, the best form found so far is
//! returned with `saturated == false`.
//!
//! The parts, one concept a file: [`lang`] (the e-node language and conversions),
//! [`analysis`] (shapes, constants, symmetry), [`rules`] (the rule tables), [`cost`]
//! (the two cost functions), [`cse`] (`where` names), [`field`] (elementwise cancellation,
//! a pass whose equalities seed the e-graph), [`normal`] (the normal form) and [`chain`]
//! (the compute form's bracketing).

pub mod analysis;
pub mod chain;
pub mod cost;
pub mod cse;
pub mod extract;
pub mod factor;
pub mod field;
pub mod lang;
pub mod normal;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use egg::{BackoffScheduler, Id, Language, Runner, StopReason};

use self::analysis::{EGraph, MatAnalysis};
use self::cost::{DisplayCost, FlopCost};
use self::cse::Arena;
use self::extract::Choices;
use self::lang::{expr_to_rec, rec_to_expr, Mat, VarShapes};
use crate::expr::{Expr, ExprKind, Shape, Symbol, VarDecl};
use crate::limits::Deadline;

/// Bounds on one equality saturation; whichever is reached first stops it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most rewrite iterations.
    pub iterations: usize,
    /// Most e-nodes.
    pub nodes: usize,
    /// Most wall-clock time (checked between iterations).
    pub time: Duration,
    /// Most iterations in a row that find no smaller display form of any input before
    /// a round ends: the forms people want appear early, while the rules' bulk
    /// (associativity, commutativity) would go on to the node limit.
    pub patience: usize,
}

impl Limits {
    /// The limits the command line uses: 30 iterations, 10 000 nodes, 500 ms, and a
    /// patience of 3 iterations.
    pub fn standard() -> Limits {
        // The node and iteration limits are what normally stop saturation, so the result
        // does not depend on how loaded the machine is; the time limit is a backstop.
        Limits {
            iterations: 30,
            nodes: 10_000,
            time: Duration::from_millis(500),
            patience: 3,
        }
    }
}

/// The result of [`simplify`].
#[derive(Clone, Debug)]
pub struct Simplified {
    /// The form for people: fewest symbols and operators, factored, using the `where`
    /// names (and the `let` names) for repeated subexpressions.
    pub display: Expr,
    /// The form with fewest floating-point operations, using the same names.
    pub compute: Expr,
    /// The definitions the display form uses, each after the ones it uses: the `let`
    /// definitions that occur (folded back), then fresh names. Bodies are simplified
    /// display forms.
    pub wheres: Vec<(Symbol, Expr)>,
    /// The same definitions with flop-optimal bodies, in an order valid for computing.
    pub compute_wheres: Vec<(Symbol, Expr)>,
    /// Whether saturation completed; false when a limit stopped it first.
    pub saturated: bool,
    /// Why saturation stopped: `saturated`, or which limit was reached.
    pub stop_reason: String,
    /// Where the time went.
    pub timings: Timings,
}

/// Where a simplification spent its time, for benchmarks and profiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// Building the e-graph from the inputs.
    pub setup: Duration,
    /// Equality saturation, all rounds.
    pub saturation: Duration,
    /// Both extractions with their `where` names.
    pub extraction: Duration,
}

/// The result of [`simplify_many`]: one display and compute form per input, with one
/// shared set of definitions.
#[derive(Clone, Debug)]
pub struct SimplifiedMany {
    /// Display forms, one per input, in input order.
    pub displays: Vec<Expr>,
    /// Compute forms, one per input, in input order.
    pub computes: Vec<Expr>,
    /// Shared definitions with display bodies (see [`Simplified::wheres`]).
    pub wheres: Vec<(Symbol, Expr)>,
    /// Shared definitions with compute bodies.
    pub compute_wheres: Vec<(Symbol, Expr)>,
    /// Whether saturation completed.
    pub saturated: bool,
    /// Why saturation stopped.
    pub stop_reason: String,
    /// Where the time went.
    pub timings: Timings,
}

/// Simplifies `expr`, whose variables are described by `vars` (shapes and `sym`/`spd`
/// properties), folding the `lets` (`name = body`, in definition order; a body may use
/// earlier names) back in wherever their bodies occur.
///
/// The compute form counts every size symbol as [`FlopCost::DEFAULT_SIZE`]; use
/// [`simplify_many`] to give sizes.
///
/// # Examples
/// ```
/// use std::collections::BTreeMap;
/// use matcalc::expr::build::{add, mul, transpose, var};
/// use matcalc::simplify::{simplify, Limits};
/// use matcalc::{Dim, Props, Shape, VarDecl};
///
/// let w = Shape::new(Dim::Sym("m".into()), Dim::Sym("n".into()));
/// let vars = BTreeMap::from([("W".to_string(), VarDecl { shape: w.clone(), props: Props::default() })]);
/// // ((Wᵀ)ᵀ + W)ᵀ simplifies to 2Wᵀ.
/// let input = transpose(add(transpose(transpose(var("W", w.clone()))), var("W", w)));
/// let res = simplify(&input, &vars, &[], &Limits::standard());
/// let expected = mul(matcalc::expr::build::int(2), transpose(var("W", res.display.shape.transposed())));
/// assert_eq!(res.display, *expected);
/// ```
pub fn simplify(
    expr: &Expr,
    vars: &BTreeMap<Symbol, VarDecl>,
    lets: &[(Symbol, Expr)],
    limits: &Limits,
) -> Simplified {
    let deadline = crate::limits::Deadline::starting_now(limits.time);
    let mut many = simplify_many(
        std::slice::from_ref(expr),
        vars,
        lets,
        limits,
        &BTreeMap::new(),
        &deadline,
    );
    Simplified {
        display: many.displays.pop().unwrap_or_else(|| expr.clone()),
        compute: many.computes.pop().unwrap_or_else(|| expr.clone()),
        wheres: many.wheres,
        compute_wheres: many.compute_wheres,
        saturated: many.saturated,
        stop_reason: many.stop_reason,
        timings: many.timings,
    }
}

/// Simplifies several expressions in one e-graph so that they share `where`
/// definitions (the gradients of one loss with respect to several variables), with
/// `sizes` (size symbol → value) for the compute form, ending by `deadline`: saturation
/// leaves a fifth of the time it finds to extraction, and past the deadline naming
/// stops and the compute form keeps the bracketing extraction gave it.
pub fn simplify_many(
    exprs: &[Expr],
    vars: &BTreeMap<Symbol, VarDecl>,
    lets: &[(Symbol, Expr)],
    limits: &Limits,
    sizes: &BTreeMap<String, u64>,
    deadline: &Deadline,
) -> SimplifiedMany {
    let start = Instant::now();
    let lets = expand_lets(lets);
    let let_names: BTreeSet<&str> = lets.iter().map(|(name, _)| name.as_str()).collect();
    let exprs: Vec<Expr> = exprs
        .iter()
        .map(|e| substitute(e, &lets, &mut HashMap::new()).as_ref().clone())
        .collect();
    let mut table = vars.clone();
    for expr in exprs.iter().chain(lets.iter().map(|(_, body)| body)) {
        collect_var_shapes(expr, &mut table);
    }
    table.retain(|name, _| !let_names.contains(name.as_str()));

    // The input's own terms, as an arena of e-classes: what repeats in the input is
    // what a person would name (the forward values a derivative reuses).
    let mut egraph = EGraph::new(MatAnalysis::new(table.clone()));
    let mut input_arena = Arena::default();
    let input_tops: Vec<usize> = exprs
        .iter()
        .map(|e| input_arena.add_rec(&mut egraph, &expr_to_rec(e)))
        .collect();
    let roots: Vec<Id> = input_tops
        .iter()
        .map(|top| input_arena.nodes[*top].class)
        .collect();
    let mut let_classes: Vec<(Symbol, Id)> = vec![];
    let mut input_let_tops: HashMap<Id, usize> = HashMap::new();
    for (name, body) in &lets {
        if matches!(body.kind, ExprKind::Var(_) | ExprKind::Num(_)) {
            continue;
        }
        let top = input_arena.add_rec(&mut egraph, &expr_to_rec(body));
        let class = input_arena.nodes[top].class;
        let_classes.push((name.clone(), class));
        input_let_tops.insert(class, top);
    }
    // The rules have no field algebra: the elementwise pass's cancellations join the
    // e-graph as equalities, next to the inputs.
    // The passes before saturation leave it most of the time: past their share they
    // stop with what they have (fewer hints, every repeat named at once).
    let hints_deadline = deadline.leaving(0.6);
    add_hints(
        &mut egraph,
        &field::hints(&exprs, &hints_deadline),
        &hints_deadline,
    );
    egraph.rebuild();
    for node in &mut input_arena.nodes {
        node.class = egraph.find(node.class);
    }
    let input_let_tops: HashMap<Id, usize> = input_let_tops
        .into_iter()
        .map(|(class, top)| (egraph.find(class), top))
        .collect();
    // A repeated `zᵀ` or `−z` names `z`, which the other occurrences can then share.
    let mut candidates: Vec<Id> = vec![];
    let naming_deadline = deadline.leaving(0.5);
    for (_, index) in
        cse::name_repeats(&input_arena, &input_tops, &input_let_tops, &naming_deadline)
            .into_iter()
            .rev()
    {
        let mut at = index;
        while let Mat::Transpose(_) | Mat::Neg(_) = input_arena.nodes[at].enode {
            at = input_arena.nodes[at].children[0];
        }
        let class = input_arena.nodes[at].class;
        if !candidates.contains(&class) {
            candidates.push(class);
        }
    }

    let mut targets: Vec<Id> = roots.clone();
    targets.extend(let_classes.iter().map(|(_, class)| *class));
    targets.extend(candidates.iter().copied());
    let mut originals: Vec<egg::RecExpr<Mat>> = exprs.iter().map(expr_to_rec).collect();
    originals.extend(
        lets.iter()
            .filter(|(_, body)| !matches!(body.kind, ExprKind::Var(_) | ExprKind::Num(_)))
            .map(|(_, body)| expr_to_rec(body)),
    );
    let setup = start.elapsed();
    let (saturated_graph, targets, saturated, stop_reason) =
        saturate(egraph, targets, &originals, limits, &deadline.leaving(0.2));
    let saturation = start.elapsed() - setup;
    let timings = || Timings {
        setup,
        saturation,
        extraction: start.elapsed() - setup - saturation,
    };
    let roots: Vec<Id> = targets[..roots.len()].to_vec();
    let let_classes: Vec<(Symbol, Id)> = let_classes
        .iter()
        .zip(&targets[roots.len()..])
        .map(|((name, _), class)| (name.clone(), *class))
        .collect();
    let candidates: Vec<Id> = targets[roots.len() + let_classes.len()..].to_vec();

    let mut taken: BTreeSet<String> = table.keys().cloned().collect();
    taken.extend(lets.iter().map(|(name, _)| name.clone()));
    for decl in table.values() {
        for dim in [&decl.shape.rows, &decl.shape.cols] {
            taken.extend(dim.symbols().into_iter().map(|size| size.to_string()));
        }
    }
    for expr in &exprs {
        collect_names(expr, &mut taken);
    }

    let fallback = || SimplifiedMany {
        displays: exprs.clone(),
        computes: exprs.clone(),
        wheres: vec![],
        compute_wheres: vec![],
        saturated,
        stop_reason: stop_reason.clone(),
        timings: timings(),
    };

    // Display. First the names chosen before extraction, each a leaf in its class so
    // that extraction works around it: the lets, in order, then what repeats in the
    // input, smallest first. Each body is extracted before its own name exists.
    let mut prenamed: Vec<(Symbol, Id, bool)> = let_classes
        .iter()
        .map(|(name, class)| (name.clone(), *class, true))
        .collect();
    // Fresh names are placeholders until it is known which survive; the survivors
    // are then named in order of use (z, u, v, …).
    for (k, class) in candidates.into_iter().enumerate() {
        prenamed.push((format!("⟨{k}⟩"), class, false));
    }
    let egraph = saturated_graph;
    // A name chosen before extraction is a leaf that extraction prices as one symbol, so
    // the form chosen around it may be larger, once the name is written out or defined,
    // than the best without it: one used once is written out in place below (`−U − U`
    // as `−2U`, printed `−2(½x/s)` where `−x/s` is shorter), and one used twice may
    // hide a shorter form without it (`ζ/(ζ + 1)` with ζ = exp(t), where σ(t) is). So
    // the display is extracted again without the names used once, and then with the
    // lets alone, and the attempt that shows the fewest nodes (display and definitions)
    // is kept.
    let extract = |prenamed: &[(Symbol, Id, bool)]| {
        extract_display(&egraph, prenamed, &table, &roots, deadline)
    };
    let mut best = extract(&prenamed);
    let without_once: Vec<(Symbol, Id, bool)> = prenamed
        .iter()
        .filter(|(_, class, from_let)| *from_let || !best.once.contains(&egraph.find(*class)))
        .cloned()
        .collect();
    let lets_only: Vec<(Symbol, Id, bool)> = prenamed
        .iter()
        .filter(|(_, _, from_let)| *from_let)
        .cloned()
        .collect();
    let mut retries = vec![];
    if without_once.len() < prenamed.len() {
        retries.push(without_once.as_slice());
    }
    if lets_only.len() < without_once.len() {
        retries.push(lets_only.as_slice());
    }
    for retry in retries {
        if deadline.passed() {
            break;
        }
        let this = extract(retry);
        // The earlier attempt wins a tie.
        if this.shown < best.shown {
            best = this;
        }
    }
    let DisplayExtraction {
        mut arena,
        root_tops,
        definitions,
        names,
        is_let,
        mut shapes,
        ..
    } = best;
    for node in &mut arena.nodes {
        node.class = egraph.find(node.class);
    }
    let mut all_definitions: HashMap<Id, usize> = definitions
        .into_iter()
        .map(|(class, body)| (egraph.find(class), body))
        .collect();
    let mut names: HashMap<Id, egg::Symbol> = names
        .into_iter()
        .map(|(class, name)| (egraph.find(class), name))
        .collect();
    // Then whatever still repeats in the extracted forms.
    for (k, (class, body)) in cse::name_repeats(&arena, &root_tops, &all_definitions, deadline)
        .into_iter()
        .enumerate()
    {
        names.insert(class, egg::Symbol::from(format!("⟨r{k}⟩").as_str()));
        all_definitions.insert(class, body);
    }
    // A fresh name used once, or for a trivial body (`K⁻¹` once `K` is a name), is
    // written out in place; a let keeps its name.
    let uses = cse::count_uses(&arena, &root_tops, &all_definitions);
    let sizes_in_arena = arena.tree_sizes();
    let mut inline: HashMap<Id, usize> = HashMap::new();
    for (class, name) in &names {
        let trivial = all_definitions
            .get(class)
            .is_some_and(|body| cse::trivial(sizes_in_arena[*body]));
        if !is_let.contains(name.as_str()) && (trivial || uses.get(class).copied().unwrap_or(0) < 2)
        {
            if let Some(body) = all_definitions.get(class) {
                inline.insert(*class, *body);
            }
        }
    }
    for class in inline.keys() {
        names.remove(class);
        all_definitions.remove(class);
    }
    arena.inline(&inline);
    let root_tops: Vec<usize> = root_tops
        .iter()
        .map(|top| {
            inline
                .get(&arena.nodes[*top].class)
                .copied()
                .unwrap_or(*top)
        })
        .collect();
    let (order, uncut) = cse::dependency_order(&arena, &root_tops, &all_definitions);
    let mut fresh_names = cse::FreshNames::new(taken);
    for class in &order {
        let Some(name) = names.get(class) else {
            continue;
        };
        if is_let.contains(name.as_str()) {
            continue;
        }
        let shape = egraph[*class].data.shape.clone();
        let fresh = fresh_names.fresh(&shape);
        shapes.insert(fresh.clone(), shape);
        names.insert(*class, egg::Symbol::from(fresh.as_str()));
    }

    let mut displays = vec![];
    let mut collected = false;
    for (root, top) in roots.iter().zip(&root_tops) {
        let top_is_body = !names.contains_key(&egraph.find(*root));
        match rec_to_expr(&arena.to_rec(*top, &names, top_is_body, |_| true), &shapes) {
            Ok(expr) => {
                let (flat, like) = factor::flat_sums_collecting(&expr);
                collected |= like;
                displays.push(flat);
            }
            Err(_) => return fallback(),
        }
    }
    let mut wheres = vec![];
    for class in &order {
        let (Some(name), Some(body)) = (names.get(class), all_definitions.get(class)) else {
            return fallback();
        };
        let cut = |used: Id| !uncut.contains(&(*class, used));
        match rec_to_expr(&arena.to_rec(*body, &names, true, cut), &shapes) {
            Ok(expr) => {
                let (flat, like) = factor::flat_sums_collecting(&expr);
                collected |= like;
                wheres.push((name.as_str().to_string(), flat));
            }
            Err(_) => return fallback(),
        }
    }
    if collected {
        write_out_names_used_once(&mut displays, &mut wheres, &is_let);
    }
    let displays: Vec<Expr> = displays.into_iter().map(lang::zero_as_num).collect();

    // Compute: the same names, defined in the same order, each body extracted before
    // its own and any later name exists, so no definition can refer to itself.
    let mut shapes_compute: VarShapes = table
        .iter()
        .map(|(name, decl)| (name.clone(), decl.shape.clone()))
        .collect();
    let mut choices = Choices::new(&egraph, FlopCost::new(&egraph, sizes));
    let mut compute_wheres = vec![];
    for class in &order {
        let Some(name) = names.get(class) else {
            continue;
        };
        let Some(expr) = choices
            .rec(*class)
            .and_then(|rec| rec_to_expr(&rec, &shapes_compute).ok())
        else {
            return fallback();
        };
        compute_wheres.push((
            name.as_str().to_string(),
            chain::rebracket_until(&expr, sizes, deadline),
        ));
        shapes_compute.insert(name.as_str().to_string(), egraph[*class].data.shape.clone());
        choices.name(*class, Mat::Symbol(*name));
    }
    // Acyclic by construction above, and checked: a name defined through itself would
    // print `where` lines that define nothing.
    if !cse::defined_in_order(&wheres) || !cse::defined_in_order(&compute_wheres) {
        return fallback();
    }
    let mut computes = vec![];
    for root in &roots {
        let Some(expr) = choices
            .rec(*root)
            .and_then(|rec| rec_to_expr(&rec, &shapes_compute).ok())
        else {
            return fallback();
        };
        computes.push(lang::zero_as_num(chain::rebracket_until(
            &expr, sizes, deadline,
        )));
    }
    // And every name used is defined: a placeholder is never printed.
    if !cse::names_defined(&displays, &wheres, &table)
        || !cse::names_defined(&computes, &compute_wheres, &table)
    {
        return fallback();
    }

    SimplifiedMany {
        displays,
        computes,
        wheres,
        compute_wheres,
        saturated,
        stop_reason,
        timings: timings(),
    }
}

/// Writes out in place every fresh `where` name that `displays` and the other bodies use
/// once only, and drops those they no longer use, as extraction does for the names it
/// gives: collecting like terms after extraction (`−U − U` is `−2U`) can leave such
/// names. The lets (`is_let`) keep theirs. `wheres` stay in definition order.
fn write_out_names_used_once(
    displays: &mut [Expr],
    wheres: &mut Vec<(Symbol, Expr)>,
    is_let: &BTreeSet<String>,
) {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (name, _) in wheres.iter().filter(|(name, _)| !is_let.contains(name)) {
        let mut count = 0;
        for expr in displays.iter().chain(wheres.iter().map(|(_, body)| body)) {
            count += occurrences(expr, name, &mut HashMap::new());
        }
        uses.insert(name.as_str(), count);
    }
    let once: BTreeSet<String> = uses
        .iter()
        .filter(|(_, count)| **count < 2)
        .map(|(name, _)| name.to_string())
        .collect();
    if once.is_empty() {
        return;
    }
    // In definition order, each body written out with the earlier ones.
    let mut written: HashMap<String, Rc<Expr>> = HashMap::new();
    let mut kept: Vec<(Symbol, Expr)> = vec![];
    let write_out = |expr: &Expr, written: &HashMap<String, Rc<Expr>>| {
        let expr = written_out(&Rc::new(expr.clone()), written, &mut HashMap::new());
        factor::flat_sums(&expr)
    };
    for (name, body) in std::mem::take(wheres) {
        let body = write_out(&body, &written);
        if once.contains(&name) {
            written.insert(name, Rc::new(body));
        } else {
            kept.push((name, body));
        }
    }
    *wheres = kept;
    for display in displays.iter_mut() {
        *display = write_out(display, &written);
    }
}

/// `expr` with the names of `written` replaced by their bodies, a coefficient on a name
/// going to the body's first factor (`2U` with `U = AᵀZ/η` is `2AᵀZ/η`).
fn written_out(
    expr: &Rc<Expr>,
    written: &HashMap<String, Rc<Expr>>,
    memo: &mut HashMap<*const Expr, Rc<Expr>>,
) -> Rc<Expr> {
    let key = Rc::as_ptr(expr);
    if let Some(done) = memo.get(&key) {
        return done.clone();
    }
    let body = |e: &Expr| match &e.kind {
        ExprKind::Var(name) => written.get(name).cloned(),
        _ => None,
    };
    let res = match &expr.kind {
        ExprKind::Var(_) => body(expr).unwrap_or_else(|| expr.clone()),
        ExprKind::Mul(k, named) if matches!(k.kind, ExprKind::Num(_)) => match body(named) {
            Some(body) => factor::scaled_first(k.clone(), &body),
            None => expr.map_children(|child| written_out(child, written, memo)),
        },
        _ => expr.map_children(|child| written_out(child, written, memo)),
    };
    memo.insert(key, res.clone());
    res
}

/// How many times `name` occurs in the tree of `expr` (shared subtrees counted at each
/// place, each looked into once), at most 2.
fn occurrences(expr: &Expr, name: &str, memo: &mut HashMap<*const Expr, usize>) -> usize {
    let key = expr as *const Expr;
    if let Some(count) = memo.get(&key) {
        return *count;
    }
    let count = match &expr.kind {
        ExprKind::Var(var) => usize::from(var == name),
        _ => expr
            .children()
            .iter()
            .map(|child| occurrences(child, name, memo))
            .sum::<usize>()
            .min(2),
    };
    memo.insert(key, count);
    count
}

/// One extraction of the display with `prenamed` as leaves: the arena, its roots, the
/// names' bodies by class, the names, which of them are lets, the shapes of variables and
/// names, the nodes shown (display and the definitions it uses), and the fresh names
/// used once.
struct DisplayExtraction {
    arena: Arena,
    root_tops: Vec<usize>,
    definitions: HashMap<Id, usize>,
    names: HashMap<Id, egg::Symbol>,
    is_let: BTreeSet<String>,
    shapes: VarShapes,
    shown: u64,
    once: Vec<Id>,
}

/// Extracts the display of `roots` from `egraph`, each of `prenamed` (name, class,
/// whether a let) a leaf in its class, its body extracted before its own name exists.
fn extract_display(
    egraph: &EGraph,
    prenamed: &[(Symbol, Id, bool)],
    table: &BTreeMap<Symbol, VarDecl>,
    roots: &[Id],
    deadline: &Deadline,
) -> DisplayExtraction {
    let mut choices = Choices::new(egraph, DisplayCost::new(egraph));
    let mut arena = Arena::default();
    let mut definitions: HashMap<Id, usize> = HashMap::new();
    let mut names: HashMap<Id, egg::Symbol> = HashMap::new();
    let mut is_let: BTreeSet<String> = BTreeSet::new();
    let mut shapes: VarShapes = table
        .iter()
        .map(|(name, decl)| (name.clone(), decl.shape.clone()))
        .collect();
    for (name, class, from_let) in prenamed {
        let class = egraph.find(*class);
        // Past the time limit only the lets are still named: naming is what extraction
        // spends its time on.
        if names.contains_key(&class) || (!*from_let && deadline.passed()) {
            continue;
        }
        let body = arena.extract(egraph, &mut choices, class);
        // A repeat that the lets already made small (`K⁻¹`) stays unnamed.
        if !*from_let && cse::trivial(arena.tree_sizes()[body]) {
            continue;
        }
        let symbol = egg::Symbol::from(name.as_str());
        shapes.insert(name.clone(), egraph[class].data.shape.clone());
        choices.name(class, Mat::Symbol(symbol));
        definitions.insert(class, body);
        names.insert(class, symbol);
        if *from_let {
            is_let.insert(name.clone());
        }
    }
    let root_tops: Vec<usize> = roots
        .iter()
        .map(|root| arena.extract(egraph, &mut choices, *root))
        .collect();
    let uses = cse::count_uses(&arena, &root_tops, &definitions);
    let once: Vec<Id> = names
        .iter()
        .filter(|(class, name)| {
            !is_let.contains(name.as_str()) && uses.get(*class).copied().unwrap_or(0) < 2
        })
        .map(|(class, _)| *class)
        .collect();
    let sizes = arena.tree_sizes();
    let shown = root_tops.iter().map(|top| sizes[*top]).sum::<u64>()
        + definitions
            .iter()
            .filter(|(class, _)| uses.get(*class).is_some_and(|n| *n > 0))
            .map(|(_, body)| sizes[*body])
            .sum::<u64>();
    DisplayExtraction {
        arena,
        root_tops,
        definitions,
        names,
        is_let,
        shapes,
        shown,
        once,
    }
}

/// Unions each pair of `hints` in `egraph`, adding both sides (shared nodes once);
/// past `deadline` the nodes not yet added, and the pairs that need them, are left out.
fn add_hints(egraph: &mut EGraph, hints: &[(Rc<Expr>, Rc<Expr>)], deadline: &Deadline) {
    let mut rec: egg::RecExpr<Mat> = egg::RecExpr::default();
    let mut memo = HashMap::new();
    let pairs: Vec<(Id, Id)> = hints
        .iter()
        .map(|(a, b)| {
            (
                lang::add_expr(a, &mut rec, &mut memo),
                lang::add_expr(b, &mut rec, &mut memo),
            )
        })
        .collect();
    let mut classes: Vec<Id> = Vec::with_capacity(rec.as_ref().len());
    for node in rec.as_ref() {
        if deadline.passed() {
            break;
        }
        let enode = node
            .clone()
            .map_children(|child| classes[usize::from(child)]);
        classes.push(egraph.add(enode));
    }
    for (a, b) in pairs {
        if let (Some(a), Some(b)) = (classes.get(usize::from(a)), classes.get(usize::from(b))) {
            egraph.union(*a, *b);
        }
    }
}

/// Matches a rule may make in one iteration before the scheduler bans it for a while.
/// egg's default (1 000) bans the commutativity and associativity rules so often that
/// saturation spends iterations re-running them; 10 000 reaches the same forms sooner.
const MATCH_LIMIT: usize = 10_000;

/// Most saturation rounds; each after the first restarts from the best forms found.
const ROUNDS: usize = 3;

/// Runs the rules on `egraph` within `limits`, ending by `deadline`, and returns the
/// e-graph, the classes of `targets` in it, whether saturation completed, and why it
/// stopped.
///
/// A round stopped by a limit is followed by a fresh e-graph holding only the best
/// display form of each target (and the `originals`, the inputs, unioned with theirs):
/// alternatives explored in bulk (associativity, commutativity, distribution) no longer
/// crowd out the rewrites that matter. The time limit covers all rounds together; the
/// iteration and node limits hold per round.
fn saturate(
    mut egraph: EGraph,
    mut targets: Vec<Id>,
    originals: &[egg::RecExpr<Mat>],
    limits: &Limits,
    deadline: &Deadline,
) -> (EGraph, Vec<Id>, bool, String) {
    let rules = rules::rules_for(&egraph);
    let mut last = (false, "not run".to_string());
    let mut previous_bests: Option<Vec<egg::RecExpr<Mat>>> = None;
    for round in 0..ROUNDS {
        // Each round may take all the time left. The iteration, node and patience limits
        // are what stop a round, so that the result does not depend on the machine's
        // load; the time limit is the backstop against hostile inputs. A share of a third
        // per round let the time limit stop the GP-LVM's first round (about 50 ms alone,
        // 190 ms at load 5) on a loaded machine, and its form then depended on the load.
        let budget = deadline.remaining();
        let runner = Runner::default()
            .with_egraph(egraph)
            .with_iter_limit(limits.iterations)
            .with_node_limit(limits.nodes)
            .with_time_limit(budget)
            .with_scheduler(BackoffScheduler::default().with_initial_match_limit(MATCH_LIMIT))
            .with_hook(plateau_stop(&targets, limits.patience))
            .run(rules.iter().copied());
        last = describe_stop(runner.stop_reason.as_ref());
        // An e-graph over the node limit before any rewrite (the input alone is that
        // large) would be as large again after a restart, which holds the inputs: the
        // restart's extraction took 350 ms of a 500 ms limit at 3 500 factors.
        let full_from_the_start = matches!(runner.stop_reason, Some(StopReason::NodeLimit(_)))
            && runner.iterations.iter().all(|it| it.applied.is_empty());
        egraph = runner.egraph;
        if last.0 || round + 1 == ROUNDS || deadline.passed() || full_from_the_start {
            break;
        }
        let bests: Vec<egg::RecExpr<Mat>> = {
            let mut choices = Choices::new(&egraph, DisplayCost::new(&egraph));
            let Some(bests) = targets.iter().map(|target| choices.rec(*target)).collect() else {
                break;
            };
            bests
        };
        // A restart from the same forms would run the same way again.
        if previous_bests.as_ref() == Some(&bests) {
            break;
        }
        let mut fresh = EGraph::new(egraph.analysis.fresh());
        targets = bests.iter().map(|rec| fresh.add_expr(rec)).collect();
        // The inputs come along, equal to their best forms, so that the structure the
        // names rely on (the repeated `WᵀWx − x`) is not lost with the restart.
        for (target, original) in targets.iter().zip(originals) {
            let id = fresh.add_expr(original);
            fresh.union(*target, id);
        }
        fresh.rebuild();
        egraph = fresh;
        previous_bests = Some(bests);
    }
    let targets = targets.iter().map(|target| egraph.find(*target)).collect();
    (egraph, targets, last.0, last.1)
}

/// A runner hook that stops the run once `patience` iterations in a row have not
/// lowered the total display cost of the `targets`.
fn plateau_stop(
    targets: &[Id],
    patience: usize,
) -> impl FnMut(&mut Runner<Mat, MatAnalysis>) -> Result<(), String> + 'static {
    let targets = targets.to_vec();
    let mut lowest = usize::MAX;
    let mut unchanged = 0;
    move |runner| {
        let egraph = &runner.egraph;
        let mut choices = Choices::new(egraph, DisplayCost::new(egraph));
        let total = targets.iter().fold(0usize, |sum, target| {
            choices.settle(*target);
            let cost = choices
                .cost(*target)
                .map_or(usize::MAX / 4, |cost| cost.total);
            sum.saturating_add(cost)
        });
        if total < lowest {
            lowest = total;
            unchanged = 0;
        } else {
            unchanged += 1;
        }
        if unchanged >= patience {
            Err(format!("no smaller form in {patience} iterations"))
        } else {
            Ok(())
        }
    }
}

fn describe_stop(reason: Option<&StopReason>) -> (bool, String) {
    match reason {
        Some(StopReason::Saturated) => (true, "saturated".to_string()),
        Some(StopReason::IterationLimit(n)) => (false, format!("iteration limit ({n})")),
        Some(StopReason::NodeLimit(n)) => (false, format!("node limit ({n})")),
        Some(StopReason::TimeLimit(t)) => (false, format!("time limit ({t:.3} s)")),
        Some(StopReason::Other(text)) => (false, text.clone()),
        None => (false, "not run".to_string()),
    }
}

/// The `lets` with every use of an earlier name replaced by its (expanded) body.
fn expand_lets(lets: &[(Symbol, Expr)]) -> Vec<(Symbol, Expr)> {
    let mut res: Vec<(Symbol, Expr)> = vec![];
    for (name, body) in lets {
        let expanded = substitute(body, &res, &mut HashMap::new());
        res.push((name.clone(), expanded.as_ref().clone()));
    }
    res
}

/// `expr` with the variables named in `lets` replaced by their bodies.
fn substitute(
    expr: &Expr,
    lets: &[(Symbol, Expr)],
    memo: &mut HashMap<*const Expr, Rc<Expr>>,
) -> Rc<Expr> {
    let names: HashMap<&str, &Expr> = lets
        .iter()
        .map(|(name, body)| (name.as_str(), body))
        .collect();
    substitute_rc(&Rc::new(expr.clone()), &names, memo)
}

/// [`substitute`] on a shared node: a subtree that mentions no let comes back as the
/// same `Rc`, found in one pass (shared nodes once), not by searching each subtree.
fn substitute_rc(
    expr: &Rc<Expr>,
    lets: &HashMap<&str, &Expr>,
    memo: &mut HashMap<*const Expr, Rc<Expr>>,
) -> Rc<Expr> {
    let key = Rc::as_ptr(expr);
    if let Some(done) = memo.get(&key) {
        return done.clone();
    }
    let res = match &expr.kind {
        ExprKind::Var(name) => match lets.get(name.as_str()) {
            Some(body) => Rc::new((*body).clone()),
            None => expr.clone(),
        },
        _ => expr.map_children(|child| substitute_rc(child, lets, memo)),
    };
    memo.insert(key, res.clone());
    res
}

/// Adds the shape of every variable of `expr` that `table` does not know yet.
fn collect_var_shapes(expr: &Expr, table: &mut BTreeMap<Symbol, VarDecl>) {
    // Shared subtrees once: expanded lets are DAGs whose trees can be exponential.
    for node in expr.distinct_nodes() {
        if let ExprKind::Var(name) | ExprKind::Differential(name) = &node.kind {
            if !table.contains_key(name) && node.shape != Shape::unknown() {
                table.insert(
                    name.clone(),
                    VarDecl {
                        shape: node.shape.clone(),
                        props: Default::default(),
                    },
                );
            }
        }
    }
}

/// Adds every name `expr` uses (variables, functions, size symbols) to `taken`.
fn collect_names(expr: &Expr, taken: &mut BTreeSet<String>) {
    for node in expr.distinct_nodes() {
        match &node.kind {
            ExprKind::Var(name)
            | ExprKind::Differential(name)
            | ExprKind::Apply(name, _)
            | ExprKind::Grad(name, _) => {
                taken.insert(name.clone());
            }
            ExprKind::Size(size) => {
                taken.insert(size.to_string());
            }
            _ => {}
        }
        for dim in [&node.shape.rows, &node.shape.cols] {
            taken.extend(dim.symbols().into_iter().map(|size| size.to_string()));
        }
    }
}
