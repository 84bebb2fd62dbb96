//! An entry as the variable (SPEC §4): `--wrt 'X[m,n]'`, also written `Xₘₙ`, `x[i]` or
//! `xᵢ`, answers ∂f/∂Xₘₙ in index notation, as SymPy's `expr.diff(X[m, n])` does.
//!
//! - A scalar f: the (m, n) entry of its simplified gradient, written out: sums and
//!   scalars distribute, transposes move into the indices and I is a delta
//!   (`tr(AX)` → `Aₙₘ`, `xᵀAx` by `x[i]` → `((A + Aᵀ)x)ᵢ`).
//! - A matrix F: the entries ∂Fᵢⱼ/∂Xₘₙ with Kronecker deltas ([`super::index`]), F's
//!   indices named apart from the user's.
//!
//! Either way, [`check`] evaluates what is printed at every (m, n) and compares it with
//! central finite differences of f (of each Fᵢⱼ) in that one entry.

use std::rc::Rc;

use super::index::{self, IndexForm};
use crate::expr::{build, Expr, Shape, Symbol};
use crate::numeric::{self, CheckConfig, Comparison, Verdict};
use crate::parse::SUBSCRIPT_LETTERS;
use crate::shape::Typed;

/// A variable written with the indices of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The variable as written (`X`, `W₁`, `W_1`).
    pub name: String,
    /// The index names, one per dimension of size other than 1: `m`, `n`.
    pub indices: Vec<String>,
}

fn subscript_letter(c: char) -> Option<char> {
    SUBSCRIPT_LETTERS
        .iter()
        .find(|(sub, _)| *sub == c)
        .map(|(_, letter)| *letter)
}

impl Entry {
    /// Reads `X[m,n]`, `x[i]`, `Xₘₙ` or `xᵢ`: `None` when `written` names no entry (a
    /// plain variable), `Some(Err(message))` when it is a malformed one. Identifiers end
    /// in subscript digits at most, so trailing subscript letters are always indices.
    ///
    /// # Examples
    /// ```
    /// use matcalc::forms::entry::Entry;
    /// let entry = Entry::parse("X[m,n]").unwrap().unwrap();
    /// assert_eq!((entry.name.as_str(), entry.indices.len()), ("X", 2));
    /// assert_eq!(Entry::parse("Xₘₙ"), Entry::parse("X[m, n]"));
    /// assert_eq!(Entry::parse("W₁"), None);
    /// assert!(Entry::parse("X[1,2]").unwrap().is_err());
    /// ```
    pub fn parse(written: &str) -> Option<Result<Entry, String>> {
        let written = written.trim();
        if let Some(open) = written.find('[') {
            let name = written[..open].trim();
            let Some(inside) = written[open + 1..].strip_suffix(']') else {
                return Some(Err(format!(
                    "`{written}`: an entry is written `X[m,n]`, with a closing `]`"
                )));
            };
            let indices: Vec<String> = inside
                .split(',')
                .map(|index| index.trim().to_string())
                .collect();
            return Some(Entry::checked(name, indices, written));
        }
        let name = written.trim_end_matches(|c| subscript_letter(c).is_some());
        if name.len() == written.len() {
            return None;
        }
        let indices = written[name.len()..]
            .chars()
            .filter_map(subscript_letter)
            .map(String::from)
            .collect();
        Some(Entry::checked(name, indices, written))
    }

    fn checked(name: &str, indices: Vec<String>, written: &str) -> Result<Entry, String> {
        if name.is_empty() {
            return Err(format!(
                "`{written}`: the variable's name is missing before the indices"
            ));
        }
        for index in &indices {
            let mut chars = index.chars();
            let letter = chars.next().filter(|c| c.is_ascii_lowercase());
            if letter.is_none() || chars.next().is_some() {
                return Err(format!(
                    "`{written}`: each index is one lower-case letter (`{name}[m,n]`), not `{index}`; \
                     a numbered entry is one value of a symbolic one"
                ));
            }
        }
        for (position, index) in indices.iter().enumerate() {
            if indices[..position].contains(index) {
                return Err(format!(
                    "`{written}`: the index `{index}` is repeated; name each dimension's index apart"
                ));
            }
        }
        Ok(Entry {
            name: name.to_string(),
            indices,
        })
    }

    /// `X[m,n]`, as the result names it.
    pub fn written(&self, name: &str) -> String {
        format!("{name}[{}]", self.indices.join(","))
    }

    /// The names of the variable's row and column indices for a variable shaped `shape`
    /// (a size-1 dimension has none: `x[i]` of a column vector), or why they do not fit.
    pub fn names_for(&self, name: &str, shape: &Shape) -> Result<(String, String), String> {
        let dims = [&shape.rows, &shape.cols];
        let wanted = dims.iter().filter(|dim| !dim.is_one()).count();
        let example = match wanted {
            0 => format!("it is a scalar, with no indices: use --wrt {name}"),
            1 => format!("it is a vector ({shape}): give one index, `{name}[i]`"),
            _ => format!("it is a matrix ({shape}): give two indices, `{name}[m,n]`"),
        };
        if self.indices.len() != wanted {
            return Err(format!(
                "`{}` has {} {} but {name} has {wanted}: {example}",
                self.written(name),
                self.indices.len(),
                if self.indices.len() == 1 {
                    "index"
                } else {
                    "indices"
                },
            ));
        }
        let mut given = self.indices.iter();
        let mut next = |dim: &crate::expr::Dim| {
            if dim.is_one() {
                "_".to_string()
            } else {
                given.next().cloned().unwrap_or_default()
            }
        };
        let rows = next(dims[0]);
        let cols = next(dims[1]);
        Ok((rows, cols))
    }
}

/// The entry form of a scalar f's gradient `gradient` (as displayed, `where` names and
/// all): entry (m, n) of it, with `names` the variable's index names.
pub fn of_gradient(typed: &Typed, wrt: &str, gradient: &Expr, names: (&str, &str)) -> IndexForm {
    index::entry_of(typed, wrt, &Rc::new(gradient.clone()), names)
}

/// The check of an entry form: on random instances, the printed form evaluated at every
/// value of its indices (each `where` name evaluated first, in order) against central
/// finite differences of f, or of each entry of F, in that one entry of `wrt`.
pub fn check(
    typed: &Typed,
    wrt: &str,
    form: &IndexForm,
    wheres: &[(Symbol, Expr)],
    config: &CheckConfig,
) -> Verdict {
    let f = Rc::new(typed.expr.clone());
    let f_shape = typed.expr.shape.clone();
    // Entry (i, j) of F is tr(EᵀF) for E the unit matrix at (i, j), put in as a value.
    let unit_name = "𝔼".to_string();
    let unit = build::var(&unit_name, f_shape.clone());
    let entry_of_f = build::trace(build::mul(build::transpose(unit), f.clone()));
    numeric::check_on_random_instances(
        config,
        &format!("the entry form {}", form.lhs(crate::print::Style::Unicode)),
        "finite differences in each entry",
        |rng| numeric::draw_instance(typed, rng),
        |instance| {
            for (name, body) in wheres {
                let value = numeric::evaluate(body, instance)?;
                instance.values.insert(name.clone(), value);
            }
            let claimed = form.evaluate(instance)?;
            let expected = if f_shape.is_scalar() {
                let gradient =
                    numeric::finite_difference_gradient(&f, wrt, instance, config.tolerance)?;
                transpose_vec(&gradient)
            } else {
                let (p, q) = (instance.dim(&f_shape.rows)?, instance.dim(&f_shape.cols)?);
                let mut jacobian = nalgebra::DMatrix::zeros(p * q, claimed.ncols());
                for at in 0..p * q {
                    let mut e = nalgebra::DMatrix::zeros(p, q);
                    e[(at % p, at / p)] = 1.0;
                    instance.values.insert(unit_name.clone(), e);
                    let gradient = numeric::finite_difference_gradient(
                        &entry_of_f,
                        wrt,
                        instance,
                        config.tolerance,
                    )?;
                    if gradient.len() != jacobian.ncols() {
                        return Err(numeric::EvalError::Missing(
                            "the entry form's layout".into(),
                        ));
                    }
                    jacobian.row_mut(at).copy_from_slice(gradient.as_slice());
                }
                instance.values.remove(&unit_name);
                jacobian
            };
            Ok(Comparison { claimed, expected })
        },
    )
}

/// vec(G)ᵀ: the gradient laid out as one row of the Jacobian in vec(X).
fn transpose_vec(gradient: &nalgebra::DMatrix<f64>) -> nalgebra::DMatrix<f64> {
    nalgebra::DMatrix::from_row_slice(1, gradient.len(), gradient.as_slice())
}

/// The names of a `--wrt` list, split at the commas outside brackets: `W,X[m,n]` is
/// `W` and `X[m,n]`.
///
/// # Examples
/// ```
/// use matcalc::forms::entry::split_wrt;
/// assert_eq!(split_wrt("W₁, b₁,X[m, n]"), ["W₁", "b₁", "X[m, n]"]);
/// ```
pub fn split_wrt(list: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                names.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    names.push(current);
    names
        .into_iter()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect()
}
