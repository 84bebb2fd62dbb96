//! Drawings of the computation graph: Graphviz DOT, and SVG laid out in-process.
//!
//! Both draw each node once (shared subexpressions are one node, a DAG), operations as
//! boxes labelled `z₃ = z₄x` with their shape, variables as ellipses, constants as dashed
//! boxes, and edges in the direction values flow (operand → user), the output on top.
//!
//! The SVG layout is a plain layered one: each node sits on the layer of its longest path
//! from the output, nodes in a layer are ordered by the mean position of their users in
//! the layer above (the barycentre heuristic), and edges are straight lines.

use super::render::unicode;
use super::{Explanation, Role};

/// The lines of node `index`'s label: definition, shape and, when asked, its adjoint.
fn label_lines(explanation: &Explanation, index: usize, with_adjoints: bool) -> Vec<String> {
    let mut lines = vec![explanation.label(index)];
    let Some(node) = explanation.nodes.get(index) else {
        return lines;
    };
    lines.push(node.shape().to_string());
    if with_adjoints {
        if let Some(step) = explanation.step_of(index) {
            let output = explanation
                .nodes
                .first()
                .map(|n| n.name.as_str())
                .unwrap_or("L");
            lines.push(format!(
                "∂{output}/∂{} = {}",
                node.name,
                unicode(&step.adjoint)
            ));
        }
    }
    lines
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The computation graph as Graphviz DOT; with `with_adjoints`, every node's label also
/// carries its adjoint ∂L/∂zᵢ.
pub fn to_dot(explanation: &Explanation, with_adjoints: bool) -> String {
    let mut out = String::from("digraph computation {\n");
    out.push_str("  rankdir=BT;\n");
    out.push_str("  node [fontname=\"Helvetica\", fontsize=11];\n");
    for (i, node) in explanation.nodes.iter().enumerate() {
        let label = label_lines(explanation, i, with_adjoints)
            .iter()
            .map(|l| dot_escape(l))
            .collect::<Vec<_>>()
            .join("\\n");
        let style = match node.role {
            Role::Output => "shape=box, style=\"rounded,bold\"",
            Role::Intermediate => "shape=box, style=rounded",
            Role::Variable => "shape=ellipse, style=filled, fillcolor=\"#fde9c9\"",
            Role::Constant => "shape=box, style=dashed",
        };
        out.push_str(&format!("  n{i} [{style}, label=\"{label}\"];\n"));
    }
    for (i, node) in explanation.nodes.iter().enumerate() {
        for &c in &node.children {
            out.push_str(&format!("  n{c} -> n{i};\n"));
        }
    }
    out.push_str("}\n");
    out
}

fn xml_escape(s: &str) -> String {
    let mut res = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => res.push_str("&amp;"),
            '<' => res.push_str("&lt;"),
            '>' => res.push_str("&gt;"),
            '"' => res.push_str("&quot;"),
            '\'' => res.push_str("&apos;"),
            _ => res.push(c),
        }
    }
    res
}

const CHAR_WIDTH: f64 = 7.4;
const LINE_HEIGHT: f64 = 16.0;
const PADDING: f64 = 10.0;
const GAP_X: f64 = 28.0;
const GAP_Y: f64 = 48.0;
const MARGIN: f64 = 20.0;

struct Placed {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

/// The computation graph as a standalone SVG document, laid out in-process (no Graphviz
/// needed); with `with_adjoints`, every node also carries its adjoint.
pub fn to_svg(explanation: &Explanation, with_adjoints: bool) -> String {
    let count = explanation.nodes.len();
    let labels: Vec<Vec<String>> = (0..count)
        .map(|i| label_lines(explanation, i, with_adjoints))
        .collect();

    // Layers: the longest path from the output. Nodes are stored users-first, so one pass
    // in index order sees every user before its operands.
    let mut layer = vec![0usize; count];
    for (i, node) in explanation.nodes.iter().enumerate() {
        for &c in &node.children {
            if c < count {
                layer[c] = layer[c].max(layer[i] + 1);
            }
        }
    }
    let n_layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, node) in explanation.nodes.iter().enumerate() {
        for &c in &node.children {
            if c < count {
                users[c].push(i);
            }
        }
    }

    // Order within layers by the barycentre of the users' positions.
    let mut slot = vec![0.0f64; count];
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); n_layers];
    for (i, &l) in layer.iter().enumerate() {
        layers[l].push(i);
    }
    for members in layers.iter_mut() {
        let mut keyed: Vec<(f64, usize)> = members
            .iter()
            .map(|&i| {
                let key = if users[i].is_empty() {
                    i as f64
                } else {
                    users[i].iter().map(|&u| slot[u]).sum::<f64>() / users[i].len() as f64
                };
                (key, i)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *members = keyed.into_iter().map(|(_, i)| i).collect();
        for (k, &i) in members.iter().enumerate() {
            slot[i] = k as f64;
        }
    }

    // Sizes and positions.
    let size = |i: usize| -> (f64, f64) {
        let widest = labels[i]
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1);
        (
            widest as f64 * CHAR_WIDTH + 2.0 * PADDING,
            labels[i].len() as f64 * LINE_HEIGHT + PADDING,
        )
    };
    let layer_widths: Vec<f64> = layers
        .iter()
        .map(|members| {
            members.iter().map(|&i| size(i).0).sum::<f64>()
                + GAP_X * members.len().saturating_sub(1) as f64
        })
        .collect();
    let layer_heights: Vec<f64> = layers
        .iter()
        .map(|members| members.iter().map(|&i| size(i).1).fold(0.0, f64::max))
        .collect();
    let total_width = layer_widths.iter().copied().fold(0.0, f64::max) + 2.0 * MARGIN;
    let mut placed: Vec<Placed> = (0..count)
        .map(|_| Placed {
            x: 0.0,
            y: 0.0,
            width: 0.0,
            height: 0.0,
        })
        .collect();
    let mut y = MARGIN;
    for (l, members) in layers.iter().enumerate() {
        let mut x = (total_width - layer_widths[l]) / 2.0;
        for &i in members {
            let (width, height) = size(i);
            placed[i] = Placed {
                x,
                y: y + (layer_heights[l] - height) / 2.0,
                width,
                height,
            };
            x += width + GAP_X;
        }
        y += layer_heights[l] + GAP_Y;
    }
    let total_height = y - GAP_Y + MARGIN;

    let mut out = String::new();
    out.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" viewBox=\"0 0 {:.0} {:.0}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
        total_width, total_height, total_width, total_height
    ));
    out.push_str("  <defs>\n    <marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\n      <path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/>\n    </marker>\n  </defs>\n");
    out.push_str("  <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    for (i, node) in explanation.nodes.iter().enumerate() {
        for &c in &node.children {
            let (Some(from), Some(to)) = (placed.get(c), placed.get(i)) else {
                continue;
            };
            out.push_str(&format!(
                "  <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#555\" stroke-width=\"1.2\" marker-end=\"url(#arrow)\"/>\n",
                from.x + from.width / 2.0,
                from.y,
                to.x + to.width / 2.0,
                to.y + to.height
            ));
        }
    }
    for (i, node) in explanation.nodes.iter().enumerate() {
        let p = &placed[i];
        let shape = match node.role {
            Role::Variable => format!(
                "  <ellipse cx=\"{:.1}\" cy=\"{:.1}\" rx=\"{:.1}\" ry=\"{:.1}\" fill=\"#fde9c9\" stroke=\"#a86b00\"/>\n",
                p.x + p.width / 2.0,
                p.y + p.height / 2.0,
                p.width / 2.0 + 6.0,
                p.height / 2.0 + 2.0
            ),
            Role::Constant => format!(
                "  <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"white\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n",
                p.x, p.y, p.width, p.height
            ),
            Role::Output | Role::Intermediate => format!(
                "  <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"5\" fill=\"{}\" stroke=\"#2b4a7a\" stroke-width=\"{}\"/>\n",
                p.x,
                p.y,
                p.width,
                p.height,
                if node.role == Role::Output { "#dbe7fb" } else { "#eef3fc" },
                if node.role == Role::Output { "2" } else { "1" }
            ),
        };
        out.push_str(&shape);
        for (k, line) in labels[i].iter().enumerate() {
            let colour = if k == 0 { "#111" } else { "#555" };
            out.push_str(&format!(
                "  <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{colour}\">{}</text>\n",
                p.x + p.width / 2.0,
                p.y + PADDING / 2.0 + LINE_HEIGHT * (k as f64 + 0.75),
                xml_escape(line)
            ));
        }
    }
    out.push_str("</svg>\n");
    out
}
