//! On the Matrix Cookbook identities of `tests/cookbook.rs` (the same table, shared in
//! `tests/common/cookbook_table.rs`), the display form matcalc prints is never larger than
//! the Cookbook's closed form: the size of the display form plus its `where` bodies,
//! in [`Expr::size`] nodes, is at most the size of the closed form.
//!
//! Differentials write `dX` as the placeholder `V`, one node like the `dX` we print.
//! The symmetric rows (≈138–141) are kept: their closed forms are matcalc's own
//! convention, the symmetric gradient ½(G + Gᵀ), and our display must not be larger.

use matcalc::session::{Options, Session};
use matcalc::Expr;

#[path = "common/cookbook_table.rs"]
mod cookbook_table;
use cookbook_table::{Identity, IDENTITIES};

/// The sizes of our display form (with its `where` bodies) and of the closed form, and
/// our display as printed.
struct Sizes {
    ours: usize,
    cookbook: usize,
    printed: String,
}

fn sizes(identity: &Identity) -> Sizes {
    let mut session = Session::new();
    session
        .declare(identity.decls)
        .unwrap_or_else(|e| panic!("{}: declarations: {}", identity.name, e.render()));
    let options = Options {
        order: identity.order,
        ..Options::standard()
    };
    let results = session
        .derivative(identity.expr, &[identity.wrt], &options)
        .unwrap_or_else(|e| panic!("{}: derivative: {}", identity.name, e.render()));
    let result = &results[0];
    let closed = session
        .typed(identity.closed_form)
        .unwrap_or_else(|e| panic!("{}: closed form: {}", identity.name, e.render()));
    let form = &result.form;
    let ours = form.display.size()
        + form
            .wheres
            .iter()
            .map(|(_, body)| body.size())
            .sum::<usize>();
    Sizes {
        ours,
        cookbook: Expr::size(&closed.expr),
        printed: result.to_text(matcalc::print::Style::Unicode),
    }
}

#[test]
fn cookbook_display_table_has_at_least_40_identities() {
    assert!(IDENTITIES.len() >= 40, "{} identities", IDENTITIES.len());
}

#[test]
fn cookbook_display_is_never_larger_than_the_closed_form() {
    let mut larger = vec![];
    let mut listing = String::new();
    for identity in IDENTITIES {
        let sizes = sizes(identity);
        listing += &format!(
            "{}\n  cookbook ({}): {}\n  ours ({}): {}\n",
            identity.name,
            sizes.cookbook,
            identity.closed_form,
            sizes.ours,
            sizes.printed.trim_end().replace('\n', "\n  ")
        );
        if sizes.ours > sizes.cookbook {
            larger.push(format!(
                "{}: ours {} > cookbook {} ({}): {}",
                identity.name,
                sizes.ours,
                sizes.cookbook,
                identity.closed_form,
                sizes.printed.trim_end()
            ));
        }
    }
    insta::with_settings!({snapshot_path => "../snapshots/simplify", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!("cookbook_displays", listing);
    });
    assert!(larger.is_empty(), "{}", larger.join("\n"));
}
