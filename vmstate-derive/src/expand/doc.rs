//! The wire-format page of a derived type: Markdown emitted as the doc comment of
//! its `impl VmState`, which rustdoc shows on the type's own page (under "Trait
//! Implementations"), so every deriving type documents its wire format with no
//! extra step.
//!
//! The derive sees types as written, not resolved: sizes and offsets are given
//! where the spelling fixes them (integers, `bool`, arrays of them with literal
//! lengths, the fixed-size encodings), and otherwise name the type whose encoding
//! decides. The resolved layout (nested structs expanded, a worked byte example
//! from `Default`) is the device catalog's Markdown, rendered from `DESCRIPTION`
//! at run time.

use crate::ast::{Container, Field, FieldKind, ReprEnum};
use crate::types::{array_parts, is_integer, simple_name, type_string};

/// The Markdown page for `c`.
pub fn wire_format_doc(c: &Container) -> String {
    let mut out = String::new();
    let min = if c.minimum_version == c.version {
        String::new()
    } else {
        format!("; loads versions {} to {}", c.minimum_version, c.version)
    };
    out.push_str(&format!(
        "# Wire format of vmsd \"{}\"\n\nVersion {} (minimum version {}{min}). Fields in \
         wire order, big-endian, no padding or tags between them.\n\n",
        escape(&c.name),
        c.version,
        c.minimum_version,
    ));
    out.push_str(
        "| # | field | Rust type | wire encoding | size | since / test | offset |\n\
         |---|---|---|---|---|---|---|\n",
    );
    // The byte offset of the next field while every earlier one is always present
    // at the current version: the types of unknown size before it, plus bytes.
    let mut offset: Option<(Vec<String>, usize)> = Some((Vec::new(), 0));
    let mut skipped = Vec::new();
    let mut row = 0;
    for f in &c.fields {
        if matches!(f.kind, FieldKind::Skip) {
            skipped.push(format!("`{}`", f.ident));
            continue;
        }
        row += 1;
        let (encoding, size) = encoding(f);
        let cond = condition(f);
        let at = match &offset {
            Some((types, bytes)) if types.is_empty() => bytes.to_string(),
            Some((types, bytes)) if types.len() <= 2 => {
                let mut parts: Vec<String> =
                    types.iter().map(|t| format!("size of `{t}`")).collect();
                if *bytes > 0 {
                    parts.push(bytes.to_string());
                }
                parts.join(" + ")
            }
            _ => "—".to_string(),
        };
        out.push_str(&format!(
            "| {row} | `{}` | `{}` | {encoding} | {} | {cond} | {at} |\n",
            escape(&f.wire_name),
            escape(&type_string(f.ty)),
            size.map_or_else(|| "see the type".to_string(), |s| format!("{s} B")),
        ));
        offset = match (offset, size, f.test.is_some(), &f.kind) {
            (_, _, true, _) => None,
            (Some((types, o)), Some(s), false, _) => Some((types, o + s)),
            // Only a type's own encoding has one size: the named type's.
            (Some((mut types, o)), None, false, FieldKind::Plain)
                if array_parts(f.ty).is_none() =>
            {
                types.push(escape(&type_string(f.ty)));
                Some((types, o))
            }
            _ => None,
        };
    }
    if row == 0 {
        out.push_str("| | *(no fields on the wire)* | | | | | |\n");
    }
    if let Some((_, total)) = offset.as_ref().filter(|(t, _)| t.is_empty()) {
        out.push_str(&format!(
            "\nFields total: {total} bytes at the current version.\n"
        ));
    }
    if !skipped.is_empty() {
        out.push_str(&format!("\nNot migrated: {}.\n", skipped.join(", ")));
    }
    if c.subsections.is_empty() {
        out.push_str("\nNo subsections.\n");
    } else {
        out.push_str(
            "\nSubsections, after the fields in this order, each as `0x05`, its vmsd name \
             (length byte + bytes), its be32 version and its body:\n\n\
             | subsection field | type (its vmsd) | sent when |\n|---|---|---|\n",
        );
        for s in &c.subsections {
            let when = match s.needed {
                Some(p) => format!("`{}` returns true", escape(&path_string(p))),
                None => "always".to_string(),
            };
            out.push_str(&format!(
                "| `{}` | `{}` | {when} |\n",
                s.ident,
                escape(&type_string(s.ty))
            ));
        }
    }
    let hooks: Vec<String> = [
        ("pre_save", c.hooks.pre_save),
        ("post_save", c.hooks.post_save),
        ("pre_load", c.hooks.pre_load),
        ("post_load", c.hooks.post_load),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.map(|p| format!("{k} `{}`", escape(&path_string(p)))))
    .collect();
    if !hooks.is_empty() {
        out.push_str(&format!("\nHooks: {}.\n", hooks.join(", ")));
    }
    out.push_str(
        "\nThe resolved layout (nested structs expanded) is `DESCRIPTION.layout_table()`; \
         device models list theirs, with a worked byte example, in the `vmstate-devices` \
         wire-format catalog.",
    );
    out
}

/// The page for a `#[repr]` enum: one integer, the variant's discriminant.
pub fn enum_doc(e: &ReprEnum) -> String {
    let e_repr = &e.repr;
    let repr: syn::Type = syn::parse_quote!(#e_repr);
    let (encoding, size) = plain(&repr);
    let variants: Vec<String> = e.variants.iter().map(|v| format!("`{v}`")).collect();
    format!(
        "# Wire format\n\nOne `{}` ({encoding}{}): the discriminant of the variant, one of {}. \
         Any other value fails to load.",
        e.repr,
        size.map_or_else(String::new, |s| format!(", {s} B")),
        variants.join(", ")
    )
}

/// Wire encoding and fixed size in bytes (when the spelling fixes it).
fn encoding(f: &Field) -> (String, Option<usize>) {
    match &f.kind {
        FieldKind::Plain => plain(f.ty),
        FieldKind::Buffer => {
            let size = array_parts(f.ty).and_then(|(_, n)| literal(n));
            ("opaque bytes".into(), size)
        }
        FieldKind::Equal => {
            let (enc, size) = plain(f.ty);
            (format!("{enc}, must equal the destination's"), size)
        }
        FieldKind::PositiveLe => ("be32, 0 ≤ incoming ≤ current".into(), Some(4)),
        FieldKind::VarVec {
            elem,
            len,
            max,
            buffer,
        } => (varray(elem, len, &max.to_string(), *buffer), None),
        FieldKind::VarArray {
            elem,
            n,
            len,
            max,
            buffer,
        } => {
            let max = max.map_or_else(|| expr_string(n), |m| m.to_string());
            (varray(elem, len, &max, *buffer), None)
        }
        FieldKind::Bitmap { len, max } => {
            (format!("be64 words holding `{len}` bits (max {max})"), None)
        }
        FieldKind::List { elem, max } => (
            format!(
                "list of `{}`: `0x01` + body per element, then `0x00` (max {max})",
                escape(&type_string(elem))
            ),
            None,
        ),
        FieldKind::Unused(n) => ("unused: zeros, ignored on load".into(), Some(*n)),
        FieldKind::Timer => ("timer: be64 expiry, -1 when stopped".into(), Some(8)),
        FieldKind::WithTmp(tmp) => (
            format!(
                "the fields of `{}` (a temporary view)",
                escape(&type_string(tmp))
            ),
            None,
        ),
        FieldKind::Skip => ("not migrated".into(), Some(0)),
    }
}

fn varray(elem: &syn::Type, len: &syn::Ident, max: &str, buffer: bool) -> String {
    let what = if buffer {
        "bytes".to_string()
    } else {
        format!("elements of `{}`", escape(&type_string(elem)))
    };
    format!("`{len}` {what} (max {max})")
}

/// The encoding of a type through its `VmStateField` impl, as far as the spelling says.
fn plain(ty: &syn::Type) -> (String, Option<usize>) {
    if let Some((elem, n)) = array_parts(ty) {
        let (enc, size) = plain(elem);
        let count = literal(n);
        let count_text = count.map_or_else(|| expr_string(n), |c| c.to_string());
        return (
            format!("{count_text} × {enc}"),
            size.zip(count).map(|(s, c)| s * c),
        );
    }
    if is_integer(ty) {
        let name = simple_name(ty).unwrap_or_default();
        let bits: usize = name[1..].parse().unwrap_or(0);
        let enc = if bits == 8 {
            name.clone()
        } else {
            format!("{}be{bits}", if name.starts_with('i') { "s" } else { "" })
        };
        return (enc, Some(bits / 8));
    }
    if simple_name(ty).as_deref() == Some("bool") {
        return ("bool (0 or 1)".into(), Some(1));
    }
    (format!("`{}`'s encoding", escape(&type_string(ty))), None)
}

/// "since N", "if `test`", or both.
fn condition(f: &Field) -> String {
    let mut parts = Vec::new();
    if f.since != 0 {
        parts.push(format!("since {}", f.since));
    }
    if let Some(t) = f.test {
        parts.push(format!("if `{}`", escape(&path_string(t))));
    }
    if f.validate.is_some() {
        parts.push("validated".to_string());
    }
    if parts.is_empty() {
        "—".to_string()
    } else {
        parts.join(", ")
    }
}

/// An integer literal's value.
fn literal(e: &syn::Expr) -> Option<usize> {
    match e {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse().ok(),
        syn::Expr::Group(g) => literal(&g.expr),
        syn::Expr::Paren(p) => literal(&p.expr),
        _ => None,
    }
}

fn expr_string(e: &syn::Expr) -> String {
    format!(
        "`{}`",
        escape(&quote::ToTokens::to_token_stream(e).to_string())
    )
}

fn path_string(p: &syn::Path) -> String {
    let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
    let lead = if p.leading_colon.is_some() { "::" } else { "" };
    format!("{lead}{}", segs.join("::"))
}

/// Keeps a table cell a cell: `|` would end it.
fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn doc_of(input: proc_macro2::TokenStream) -> String {
        let input: syn::DeriveInput = syn::parse2(input).unwrap();
        let cx = crate::ctxt::Ctxt::new();
        let attrs = crate::attr::Input::from_ast(&cx, &input).expect("readable attributes");
        let doc = match crate::check::check(&cx, &attrs) {
            Some(crate::ast::Input::Struct(c)) => Some(wire_format_doc(&c)),
            _ => None,
        };
        cx.check().expect("valid input");
        doc.expect("a struct")
    }

    #[test]
    fn table_rows_sizes_and_offsets() {
        let doc = doc_of(quote! {
            #[vmstate(name = "timer", version = 2, minimum_version = 1)]
            struct T {
                count: u32,
                regs: [i16; 4],
                #[vmstate(since = 2)]
                mode: u8,
                #[vmstate(test = Self::has_x)]
                x: u64,
                after: bool,
                #[vmstate(skip)]
                cache: u64,
                #[vmstate(subsection(needed = Self::extra_needed))]
                extra: Extra,
            }
        });
        for want in [
            "vmsd \"timer\"",
            "Version 2 (minimum version 1; loads versions 1 to 2)",
            "| 1 | `count` | `u32` | be32 | 4 B | — | 0 |",
            "| 2 | `regs` | `[i16; 4]` | 4 × sbe16 | 8 B | — | 4 |",
            "| 3 | `mode` | `u8` | u8 | 1 B | since 2 | 12 |",
            "| 4 | `x` | `u64` | be64 | 8 B | if `Self::has_x` | 13 |",
            "| 5 | `after` | `bool` | bool (0 or 1) | 1 B | — | — |",
            "Not migrated: `cache`.",
            "| `extra` | `Extra` | `Self::extra_needed` returns true |",
        ] {
            assert!(doc.contains(want), "missing {want:?} in\n{doc}");
        }
        // A test-dependent field makes the total unknown.
        assert!(!doc.contains("Fields total"), "{doc}");
    }

    #[test]
    fn repr_enums_name_their_integer_and_variants() {
        let input: syn::DeriveInput = syn::parse2(quote! {
            #[repr(u16)]
            enum Mode { Off = 0, On = 1 }
        })
        .unwrap();
        let cx = crate::ctxt::Ctxt::new();
        let attrs = crate::attr::Input::from_ast(&cx, &input).expect("readable attributes");
        let doc = match crate::check::check(&cx, &attrs) {
            Some(crate::ast::Input::Enum(e)) => Some(enum_doc(&e)),
            _ => None,
        };
        cx.check().expect("valid input");
        let doc = doc.expect("an enum");
        assert!(doc.contains("One `u16` (be16, 2 B)"), "{doc}");
        assert!(doc.contains("one of `Off`, `On`"), "{doc}");
    }

    #[test]
    fn fixed_total_and_unknown_sizes() {
        let doc = doc_of(quote! {
            #[vmstate(name = "d", version = 1)]
            struct D {
                a: u16,
                #[vmstate(unused = 3)]
                pad: (),
                #[vmstate(timer)]
                t: Option<u64>,
            }
        });
        assert!(doc.contains("Fields total: 13 bytes"), "{doc}");
        assert!(doc.contains("No subsections."), "{doc}");
        let doc = doc_of(quote! {
            #[vmstate(name = "e", version = 1)]
            struct E {
                inner: Inner,
                q: [u8; QUEUE],
                len: u32,
                #[vmstate(varray(len = len), max = 16)]
                data: Vec<u32>,
            }
        });
        assert!(
            doc.contains("`Inner`'s encoding | see the type | — | 0 |"),
            "{doc}"
        );
        assert!(
            doc.contains(
                "| 2 | `q` | `[u8; QUEUE]` | `QUEUE` × u8 | see the type | — | size of `Inner` |"
            ),
            "{doc}"
        );
        assert!(
            doc.contains("| 3 | `len` | `u32` | be32 | 4 B | — | — |"),
            "{doc}"
        );
        assert!(doc.contains("`len` elements of `u32` (max 16)"), "{doc}");
    }
}
