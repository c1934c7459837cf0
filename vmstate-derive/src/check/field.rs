//! One field: which keys may go together, and what its keys say about versions;
//! then what the field is (a subsection, or a body field of some kind).

use super::{kind, subsection};
use crate::ast::{Field, Subsection};
use crate::attr::FieldAttrs;
use crate::ctxt::Ctxt;
use crate::symbol::{Role, Sym};

/// The struct's `version`, and whether it is what the user meant (no container key
/// was unreadable).
#[derive(Clone, Copy)]
pub struct Versions {
    pub version: u32,
    pub known: bool,
}

/// What a checked field is.
pub enum Part<'a> {
    Body(Field<'a>),
    Subsection(Subsection<'a>),
}

/// Checks field `index` of `fields`; `None` when there is nothing to build (after
/// an error that makes the field's kind unknown).
pub fn check<'a>(
    cx: &Ctxt,
    fields: &'a [FieldAttrs<'a>],
    index: usize,
    versions: Versions,
) -> Option<Part<'a>> {
    let f = &fields[index];
    let ident = f.ident?; // named structs only (checked by the shape check)
    let travel = f.keys.with_role(Role::Travel);
    if let Some(((first, _), extras)) = travel.split_first() {
        for (extra, tokens) in extras {
            cx.error_spanned_by(
                tokens,
                format!(
                    "`{}` cannot be combined with `{}` on field `{ident}`: each decides how the \
                     field travels; keep one",
                    extra.name(),
                    first.name()
                ),
            );
        }
    }
    let kind_key = travel.first().map(|k| k.0);
    let off_wire = matches!(kind_key, Some(Sym::Skip | Sym::Subsection));
    if let Some(kind @ (Sym::Skip | Sym::Subsection)) = kind_key {
        for (m, tokens) in f.keys.with_role(Role::Modifier) {
            let why = match kind {
                Sym::Skip => "a skipped field is never on the wire",
                _ => subsection::why_no_modifier(m),
            };
            cx.error_spanned_by(
                tokens,
                format!(
                    "`{}` cannot be combined with `{}` on field `{ident}`: {why}",
                    m.name(),
                    kind.name()
                ),
            );
        }
    }
    if let (Some(since), Some(test)) = (&f.since, &f.test) {
        if !off_wire {
            let test = &test.value;
            let test = quote::quote!(#test).to_string().replace(' ', "");
            cx.error_spanned_by(
                &since.tokens,
                format!(
                    "`since` and `test` on field `{ident}`: with a test, the test alone decides \
                     whether the field is on the wire and `since` would be ignored (as in \
                     QEMU); check the version inside `{test}` and remove `since`"
                ),
            );
        }
    }
    if let Some(since) = &f.since {
        if **since > versions.version && versions.known && !off_wire {
            cx.error_spanned_by(
                &since.tokens,
                format!(
                    "`since = {}` on field `{ident}` is above the struct's `version = {}`: \
                     the field would never be saved; bump `version` when adding a field",
                    **since, versions.version
                ),
            );
        }
    }
    if let Some(m) = &f.max {
        if !matches!(
            kind_key,
            Some(
                Sym::Varray | Sym::Vbuffer | Sym::Bitmap | Sym::List | Sym::Skip | Sym::Subsection
            )
        ) {
            cx.error_spanned_by(
                &m.tokens,
                format!(
                    "`max` on field `{ident}` has nothing to bound: it limits the count read \
                     from the stream for `varray`, `vbuffer`, `bitmap` and `list`"
                ),
            );
        }
    }

    if let Some(sub) = &f.subsection {
        return Some(Part::Subsection(subsection::build(ident, f, sub)));
    }
    let kind = kind::check(cx, fields, index, ident, kind_key)?;
    Some(Part::Body(Field {
        ident,
        wire_name: f
            .rename
            .as_ref()
            .map_or_else(|| ident.to_string(), |r| r.value.clone()),
        ty: f.ty,
        kind,
        since: f.since.as_ref().map_or(0, |s| **s),
        test: f.test.as_ref().map(|t| &t.value),
        validate: f.validate.as_ref().map(|v| &v.value),
    }))
}
