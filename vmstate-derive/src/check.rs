//! Semantic checks: turns parsed attributes into the checked [`model`](crate::model),
//! reporting every problem found (not just the first), each at the span of the
//! attribute or type that causes it.

use darling::ast::Data;
use darling::Error;
use proc_macro2::Span;
use syn::spanned::Spanned;

use crate::attr::{ContainerAttrs, FieldAttrs, LenAttr};
use crate::model::{Container, Field, FieldKind, Hooks, ReprEnum, Subsection};
use crate::types;

/// The result of checking one derive input.
pub enum Checked<'a> {
    Struct(Container<'a>),
    Enum(ReprEnum<'a>),
}

const PRIORITIES: &[&str] = &[
    "Low",
    "Default",
    "Iommu",
    "PciBus",
    "VirtioMem",
    "Apic",
    "GicV3Its",
    "GicV3",
];

const SUPPORTED: &str = "supported field types: bool, u8, u16, u32, u64, i8, i16, i32, i64, \
[T; N], Vec<T> with `varray`/`vbuffer`/`list`, Box<T>, Option<Box<T>>, \
nested types deriving VmState, and enums deriving VmState with an integer #[repr]";

pub fn check(input: &ContainerAttrs) -> darling::Result<Checked<'_>> {
    match &input.data {
        Data::Enum(variants) => check_enum(input, variants),
        Data::Struct(fields) => check_struct(input, &fields.fields),
    }
}

fn check_enum<'a>(
    input: &'a ContainerAttrs,
    variants: &'a [crate::attr::VariantAttrs],
) -> darling::Result<Checked<'a>> {
    let mut acc = Error::accumulator();
    for (key, present) in [
        ("version", input.version.as_ref().map(|v| v.span())),
        (
            "minimum_version",
            input.minimum_version.as_ref().map(|v| v.span()),
        ),
        ("name", input.name.as_ref().map(|v| v.span())),
        ("priority", input.priority.as_ref().map(|v| v.span())),
        ("pre_save", input.pre_save.as_ref().map(|v| v.span())),
        ("post_save", input.post_save.as_ref().map(|v| v.span())),
        ("pre_load", input.pre_load.as_ref().map(|v| v.span())),
        ("post_load", input.post_load.as_ref().map(|v| v.span())),
    ] {
        if let Some(span) = present {
            acc.push(
                Error::custom(format!(
                    "`{key}` has no meaning on an enum: an enum is a field type, encoded as its #[repr] integer"
                ))
                .with_span(&span),
            );
        }
    }
    let mut repr = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let _ = attr.parse_nested_meta(|meta| {
            if let Some(id) = meta.path.get_ident() {
                if matches!(
                    id.to_string().as_str(),
                    "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64"
                ) {
                    repr = Some(id.clone());
                }
            }
            Ok(())
        });
    }
    let Some(repr) = repr else {
        acc.push(
            Error::custom(
                "an enum deriving VmState needs an integer representation: add #[repr(u8)] \
                 (or u16, u32, u64, i8, i16, i32, i64); its discriminant is what goes on the wire",
            )
            .with_span(&input.ident),
        );
        acc.finish()?;
        unreachable!("accumulator holds an error");
    };
    if variants.is_empty() {
        acc.push(
            Error::custom("an enum deriving VmState needs at least one variant")
                .with_span(&input.ident),
        );
    }
    acc.finish_with(Checked::Enum(ReprEnum {
        ident: &input.ident,
        generics: &input.generics,
        repr,
        variants: variants.iter().map(|v| &v.ident).collect(),
    }))
}

/// Keys that pick how a field travels; at most one per field.
fn kind_keys(f: &FieldAttrs) -> Vec<(&'static str, Span)> {
    let mut keys = Vec::new();
    let mut push = |name, span: Option<Span>| {
        if let Some(s) = span {
            keys.push((name, s));
        }
    };
    push("subsection", f.subsection.as_ref().map(|v| v.span()));
    push(
        "with_tmp",
        f.with_tmp.is_present().then(|| f.with_tmp.span()),
    );
    push("skip", f.skip.is_present().then(|| f.skip.span()));
    push("unused", f.unused.as_ref().map(|v| v.span()));
    push("varray", f.varray.as_ref().map(|v| v.span()));
    push("vbuffer", f.vbuffer.as_ref().map(|v| v.span()));
    push("bitmap", f.bitmap.as_ref().map(|v| v.span()));
    push("list", f.list.is_present().then(|| f.list.span()));
    push("equal", f.equal.is_present().then(|| f.equal.span()));
    push(
        "positive_le",
        f.positive_le.is_present().then(|| f.positive_le.span()),
    );
    push("timer", f.timer.is_present().then(|| f.timer.span()));
    push("buffer", f.buffer.is_present().then(|| f.buffer.span()));
    keys
}

/// Keys that modify presence or bounds.
fn modifier_keys(f: &FieldAttrs) -> Vec<(&'static str, Span)> {
    let mut keys = Vec::new();
    if let Some(v) = &f.since {
        keys.push(("since", v.span()));
    }
    if let Some(p) = &f.test {
        keys.push(("test", p.span()));
    }
    if let Some(p) = &f.validate {
        keys.push(("validate", p.span()));
    }
    if let Some(v) = &f.max {
        keys.push(("max", v.span()));
    }
    keys
}

fn check_struct<'a>(
    input: &'a ContainerAttrs,
    fields: &'a [FieldAttrs],
) -> darling::Result<Checked<'a>> {
    let mut acc = Error::accumulator();

    let version = input.version.as_ref().map_or(0, |v| **v);
    let minimum_version = input.minimum_version.as_ref().map_or(version, |v| **v);
    if let Some(min) = &input.minimum_version {
        if **min > version {
            acc.push(
                Error::custom(format!(
                    "`minimum_version = {}` is above `version = {version}`: no stream could ever load",
                    **min
                ))
                .with_span(&min.span()),
            );
        }
    }
    let name = input
        .name
        .as_ref()
        .map_or_else(|| input.ident.to_string(), |n| (**n).clone());
    if let Some(n) = &input.name {
        if n.is_empty() || n.len() > 255 {
            acc.push(
                Error::custom(
                    "`name` must be 1 to 255 bytes long (it travels as a counted string)",
                )
                .with_span(&n.span()),
            );
        }
    }
    let priority = match &input.priority {
        Some(p) if !PRIORITIES.contains(&p.to_string().as_str()) => {
            acc.push(
                Error::custom(format!(
                    "unknown priority `{p}`; expected one of: {}",
                    PRIORITIES.join(", ")
                ))
                .with_span(p),
            );
            syn::Ident::new("Default", p.span())
        }
        Some(p) => p.clone(),
        None => syn::Ident::new("Default", Span::call_site()),
    };

    let mut out_fields = Vec::new();
    let mut subsections = Vec::new();
    for (index, f) in fields.iter().enumerate() {
        let Some(ident) = f.ident.as_ref() else {
            continue; // named structs only (darling enforces it)
        };
        let kinds = kind_keys(f);
        for extra in kinds.iter().skip(1) {
            acc.push(
                Error::custom(format!(
                    "`{}` cannot be combined with `{}` on field `{ident}`",
                    extra.0, kinds[0].0
                ))
                .with_span(&extra.1),
            );
        }
        let kind_key = kinds.first().map(|k| k.0);
        let modifiers = modifier_keys(f);
        if matches!(kind_key, Some("skip") | Some("subsection")) {
            let why = if kind_key == Some("skip") {
                "a skipped field is never on the wire"
            } else {
                "a subsection's presence is decided by `needed`"
            };
            for (m, span) in &modifiers {
                acc.push(
                    Error::custom(format!(
                        "`{m}` cannot be combined with `{}` on field `{ident}`: {why}",
                        kind_key.unwrap_or_default()
                    ))
                    .with_span(span),
                );
            }
        }
        if let (Some(since), Some(test)) = (&f.since, &f.test) {
            let _ = since;
            acc.push(
                Error::custom(format!(
                    "`test` and `since` on field `{ident}`: a test decides presence on its own \
                     and the version would be ignored (as in QEMU); keep one"
                ))
                .with_span(&test.span()),
            );
        }
        if let Some(since) = &f.since {
            if **since > version {
                acc.push(
                    Error::custom(format!(
                        "`since = {}` on field `{ident}` is above the container's `version = {version}`; \
                         bump `version` when adding a field",
                        **since
                    ))
                    .with_span(&since.span()),
                );
            }
        }
        let max = f.max.as_ref().map(|m| **m);
        if f.max.is_some() && !matches!(kind_key, Some("varray" | "vbuffer" | "bitmap" | "list")) {
            acc.push(
                Error::custom(format!(
                    "`max` on field `{ident}` has nothing to bound: it applies to `varray`, `vbuffer`, `bitmap` and `list`"
                ))
                .with_span(&f.max.as_ref().map(|m| m.span()).unwrap_or_else(Span::call_site)),
            );
        }

        if let Some(sub) = &f.subsection {
            subsections.push(Subsection {
                ident,
                ty: &f.ty,
                needed: sub.needed.as_ref(),
            });
            continue;
        }

        let ty = &f.ty;
        let kind = match kind_key {
            Some("skip") => FieldKind::Skip,
            Some("with_tmp") => match types::with_tmp_inner(ty) {
                Some(inner) => FieldKind::WithTmp(inner),
                None => {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`with_tmp` needs a field of type `WithTmp<T>` (T: VmStateTmp<Self>)",
                    ));
                    FieldKind::Skip
                }
            },
            Some("unused") => FieldKind::Unused(f.unused.as_ref().map_or(0, |u| **u)),
            Some("varray") | Some("vbuffer") => {
                let buffer = kind_key == Some("vbuffer");
                let len_attr = if buffer { &f.vbuffer } else { &f.varray };
                let len_attr = len_attr.as_ref().expect("kind key present");
                check_len_field(
                    &mut acc,
                    fields,
                    index,
                    ident,
                    len_attr,
                    kind_key.unwrap_or_default(),
                );
                let key = kind_key.unwrap_or_default();
                if let Some(elem) = types::vec_elem(ty) {
                    if buffer && !types::is_u8(elem) {
                        acc.push(type_error(
                            ident,
                            ty,
                            "`vbuffer` needs `Vec<u8>` or `[u8; N]`",
                        ));
                    }
                    let max = max.unwrap_or_else(|| {
                        acc.push(
                            Error::custom(format!(
                                "`{key}` on the Vec field `{ident}` needs `max = N`: the count comes from the stream and must be bounded before anything is allocated"
                            ))
                            .with_span(&len_attr.span()),
                        );
                        0
                    });
                    FieldKind::VarVec {
                        elem,
                        len: &len_attr.len,
                        max,
                        buffer,
                    }
                } else if let Some((elem, n)) = types::array_parts(ty) {
                    if buffer && !types::is_u8(elem) {
                        acc.push(type_error(
                            ident,
                            ty,
                            "`vbuffer` needs `Vec<u8>` or `[u8; N]`",
                        ));
                    }
                    FieldKind::VarArray {
                        elem,
                        n,
                        len: &len_attr.len,
                        max,
                        buffer,
                    }
                } else {
                    acc.push(type_error(
                        ident,
                        ty,
                        &format!("`{key}` needs a `Vec<T>` or an array `[T; N]`"),
                    ));
                    FieldKind::Skip
                }
            }
            Some("bitmap") => {
                let len_attr = f.bitmap.as_ref().expect("kind key present");
                check_len_field(&mut acc, fields, index, ident, len_attr, "bitmap");
                if !types::vec_elem(ty).is_some_and(types::is_u64) {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`bitmap` needs a `Vec<u64>` (64 bits per word)",
                    ));
                }
                let max = max.unwrap_or_else(|| {
                    acc.push(
                        Error::custom(format!("`bitmap` on field `{ident}` needs `max = N` (the largest number of bits)"))
                            .with_span(&len_attr.span()),
                    );
                    0
                });
                FieldKind::Bitmap {
                    len: &len_attr.len,
                    max,
                }
            }
            Some("list") => match types::vec_elem(ty) {
                Some(elem) => {
                    let max = max.unwrap_or_else(|| {
                        acc.push(
                            Error::custom(format!("`list` on field `{ident}` needs `max = N` (the largest number of elements)"))
                                .with_span(&f.list.span()),
                        );
                        0
                    });
                    FieldKind::List { elem, max }
                }
                None => {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`list` needs a `Vec<T>` where T derives VmState",
                    ));
                    FieldKind::Skip
                }
            },
            Some("equal") => {
                if !types::is_integer(ty) {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`equal` needs an integer field (u8..u64, i8..i64)",
                    ));
                }
                FieldKind::Equal
            }
            Some("positive_le") => {
                if !types::is_i32(ty) {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`positive_le` needs an `i32` field (QEMU INT32_POSITIVE_LE)",
                    ));
                }
                FieldKind::PositiveLe
            }
            Some("timer") => {
                if !types::option_inner(ty).is_some_and(types::is_u64) {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`timer` needs an `Option<u64>` field (expiry in ns; None = not armed)",
                    ));
                }
                FieldKind::Timer
            }
            Some("buffer") => {
                if !types::array_parts(ty).is_some_and(|(e, _)| types::is_u8(e)) {
                    acc.push(type_error(ident, ty, "`buffer` needs a `[u8; N]` field"));
                }
                FieldKind::Buffer
            }
            _ => {
                if let Some(reason) = types::unsupported_reason(ty) {
                    acc.push(type_error(ident, ty, reason));
                } else if types::vec_elem(ty).is_some() {
                    acc.push(type_error(
                        ident,
                        ty,
                        "a `Vec` needs to say how its length travels: `varray(len = field)`, \
                         `vbuffer(len = field)` or `list`, with `max = N`",
                    ));
                } else if types::option_inner(ty).is_some()
                    && types::simple_name(types::option_inner(ty).expect("checked")).as_deref()
                        != Some("Box")
                {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`Option<T>` is only supported as `Option<Box<T>>` (array of pointers) \
                         or as `Option<u64>` with `timer`",
                    ));
                } else if types::is_unit(ty) && f.validate.is_none() {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`()` carries nothing; use it with `unused = N` or `validate = path`",
                    ));
                }
                if types::is_unit(ty) {
                    FieldKind::Unused(0)
                } else {
                    FieldKind::Plain
                }
            }
        };
        out_fields.push(Field {
            ident,
            ty,
            kind,
            since: f.since.as_ref().map_or(0, |s| **s),
            test: f.test.as_ref(),
            validate: f.validate.as_ref(),
        });
    }

    acc.finish_with(Checked::Struct(Container {
        ident: &input.ident,
        generics: &input.generics,
        name,
        version,
        minimum_version,
        priority,
        hooks: Hooks {
            pre_save: input.pre_save.as_ref(),
            post_save: input.post_save.as_ref(),
            pre_load: input.pre_load.as_ref(),
            post_load: input.post_load.as_ref(),
        },
        fields: out_fields,
        subsections,
    }))
}

fn type_error(ident: &syn::Ident, ty: &syn::Type, reason: &str) -> Error {
    let ty_str = quote::quote!(#ty).to_string().replace(' ', "");
    Error::custom(format!(
        "field `{ident}` has type `{ty_str}`: {reason}\n({SUPPORTED})"
    ))
    .with_span(ty)
}

/// The count field of a varray/vbuffer/bitmap must exist, come earlier, be on the
/// wire, and have a count type.
fn check_len_field(
    acc: &mut darling::error::Accumulator,
    fields: &[FieldAttrs],
    index: usize,
    ident: &syn::Ident,
    len_attr: &darling::util::SpannedValue<LenAttr>,
    key: &str,
) {
    let len = &len_attr.len;
    let pos = fields
        .iter()
        .position(|f| f.ident.as_ref().is_some_and(|i| i == len));
    match pos {
        None => {
            let hint = fields
                .iter()
                .filter_map(|f| f.ident.as_ref())
                .map(|i| i.to_string())
                .filter(|c| strsim_close(c, &len.to_string()))
                .map(|c| format!("; did you mean `{c}`?"))
                .next()
                .unwrap_or_default();
            acc.push(
                Error::custom(format!(
                    "`{key}(len = {len})` on field `{ident}`: there is no field named `{len}`{hint}"
                ))
                .with_span(len),
            );
        }
        Some(p) if p >= index => acc.push(
            Error::custom(format!(
                "`{key}(len = {len})` on field `{ident}`: the count field `{len}` must come before `{ident}` \
                 (the loader reads the count first)"
            ))
            .with_span(len),
        ),
        Some(p) => {
            let f = &fields[p];
            if f.skip.is_present() || f.subsection.is_some() {
                acc.push(
                    Error::custom(format!(
                        "`{key}(len = {len})` on field `{ident}`: the count field `{len}` is not on the wire"
                    ))
                    .with_span(len),
                );
            } else if !types::is_count_type(&f.ty) {
                let ty = &f.ty;
                let ty_str = quote::quote!(#ty).to_string().replace(' ', "");
                acc.push(
                    Error::custom(format!(
                        "`{key}(len = {len})` on field `{ident}`: the count field `{len}` has type `{ty_str}`; \
                         a count must be u8, u16, u32 or i32"
                    ))
                    .with_span(len),
                );
            }
        }
    }
}

/// A cheap "looks like a typo" test: same length ±1 and at most two differing chars.
fn strsim_close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    // Levenshtein distance, bounded.
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    #[test]
    fn typo_distance() {
        assert!(super::strsim_close("queue_len", "queu_len"));
        assert!(!super::strsim_close("queue_len", "status"));
    }
}
