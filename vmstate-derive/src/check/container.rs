//! The struct as a whole: its versions, its name, its hooks; each field is checked
//! by `field.rs`.

use super::field::{self, Part, Versions};
use crate::ast::{Container, Hooks};
use crate::attr::{FieldAttrs, Input};
use crate::ctxt::Ctxt;

/// Checks a struct and its fields: its IR, built even after errors (the caller
/// drops it then).
pub fn check<'a>(
    cx: &Ctxt,
    input: &'a Input<'a>,
    fields: &'a [FieldAttrs<'a>],
) -> Option<Container<'a>> {
    let attrs = &input.container;
    let version = attrs.version.as_ref().map_or(0, |v| **v);
    let minimum_version = attrs.minimum_version.as_ref().map_or(version, |v| **v);
    // With an unknown container key (`verison = 3`?), `version` may not be what the
    // user meant: comparisons against it would only add follow-up errors.
    let versions = Versions {
        version,
        known: !attrs.keys.uncertain,
    };
    if let Some(min) = &attrs.minimum_version {
        if **min > version && versions.known {
            let version_note = if attrs.version.is_none() {
                " (`version` is not given and defaults to 0)"
            } else {
                ""
            };
            cx.error_spanned_by(
                &min.tokens,
                format!(
                    "`minimum_version = {}` is above `version = {version}`{version_note}: no stream \
                     could ever be loaded; `minimum_version` is the oldest version `load` accepts \
                     and must be at most `version`",
                    **min
                ),
            );
        }
    }
    if let Some(n) = &attrs.name {
        if n.is_empty() || n.len() > 255 {
            cx.error_spanned_by(
                &n.tokens,
                format!(
                    "`name` must be 1 to 255 bytes long (it travels as a counted string); \
                     this one is {} bytes",
                    n.len()
                ),
            );
        }
    }

    let mut body = Vec::new();
    let mut subsections = Vec::new();
    for index in 0..fields.len() {
        match field::check(cx, fields, index, versions) {
            Some(Part::Body(f)) => body.push(f),
            Some(Part::Subsection(s)) => subsections.push(s),
            None => {}
        }
    }
    let hook = |h: &'a Option<crate::attr::Attr<syn::Path>>| h.as_ref().map(|a| &a.value);
    Some(Container {
        ident: input.ident,
        generics: input.generics,
        runtime: super::runtime(input),
        name: attrs
            .name
            .as_ref()
            .map_or_else(|| input.ident.to_string(), |n| n.value.clone()),
        version,
        minimum_version,
        // Not checked here: the generated code names the variant at the user's
        // token, and rustc reports an unknown one there (with a "similar name"
        // hint), so the derive holds no copy of the runtime's list.
        priority: attrs.priority.as_ref().map_or_else(
            || syn::Ident::new("Default", proc_macro2::Span::call_site()),
            |p| p.value.clone(),
        ),
        hooks: Hooks {
            pre_save: hook(&attrs.pre_save),
            post_save: hook(&attrs.post_save),
            pre_load: hook(&attrs.pre_load),
            post_load: hook(&attrs.post_load),
        },
        fields: body,
        subsections,
    })
}
