//! Semantic checks: turns parsed attributes into the checked [`model`](crate::model),
//! reporting every problem found (not just the first), each at the attribute or
//! type that causes it (`since = 3` as a whole, the field's type, the `len` field
//! name inside `varray(..)`), never at the `#[derive]`.

use darling::ast::Data;
use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;

use crate::attr::{ContainerAttrs, FieldAttrs, LenAttr};
use crate::diag::{self, error, error_at, type_string, AttrKeys, Errors, Keys};
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

/// Checks the parsed input. `errors` holds what the syntactic pre-pass found; the
/// result is an error if it or any check here found something.
pub fn check<'a>(
    input: &'a ContainerAttrs,
    keys: &AttrKeys,
    errors: Errors,
) -> Result<Checked<'a>, Errors> {
    match &input.data {
        Data::Enum(variants) => check_enum(input, &keys.container, variants, errors),
        Data::Struct(fields) => check_struct(input, keys, &fields.fields, errors),
    }
}

/// The tokens of `key ...` in an attribute, or (should the key not be found) the
/// span darling recorded for its value.
fn at(keys: &Keys, key: &str, fallback: Span) -> TokenStream {
    match keys.get(key) {
        Some(tokens) => tokens.clone(),
        None => {
            let mut t = TokenStream::new();
            t.extend([proc_macro2::TokenTree::Ident(proc_macro2::Ident::new(
                "x", fallback,
            ))]);
            t
        }
    }
}

fn check_enum<'a>(
    input: &'a ContainerAttrs,
    keys: &Keys,
    variants: &'a [crate::attr::VariantAttrs],
    mut acc: Errors,
) -> Result<Checked<'a>, Errors> {
    for (key, present) in [
        ("name", input.name.as_ref().map(|v| v.span())),
        ("version", input.version.as_ref().map(|v| v.span())),
        (
            "minimum_version",
            input.minimum_version.as_ref().map(|v| v.span()),
        ),
        ("priority", input.priority.as_ref().map(|v| v.span())),
        ("pre_save", input.pre_save.as_ref().map(|v| v.span())),
        ("post_save", input.post_save.as_ref().map(|v| v.span())),
        ("pre_load", input.pre_load.as_ref().map(|v| v.span())),
        ("post_load", input.post_load.as_ref().map(|v| v.span())),
    ] {
        if let Some(span) = present {
            acc.push(error(
                at(keys, key, span),
                format!(
                    "`{key}` has no meaning on an enum: an enum deriving VmState is a field type, \
                     encoded as its #[repr] integer (put `{key}` on the struct that contains it)"
                ),
            ));
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
        acc.push(error(
            &input.ident,
            format!(
                "enum `{}` needs an integer representation to derive VmState: add #[repr(u8)] \
                 (or u16, u32, u64, i8, i16, i32, i64); its discriminant is what goes on the wire",
                input.ident
            ),
        ));
        return Err(acc);
    };
    if variants.is_empty() {
        // rustc itself rejects `#[repr(u8)]` on an enum without variants (E0084);
        // nothing to add, but no impl either (it could not match on `self`).
        return Err(acc);
    }
    if acc.is_empty() {
        Ok(Checked::Enum(ReprEnum {
            ident: &input.ident,
            generics: &input.generics,
            repr,
            variants: variants.iter().map(|v| &v.ident).collect(),
        }))
    } else {
        Err(acc)
    }
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
    keys: &AttrKeys,
    fields: &'a [FieldAttrs],
    mut acc: Errors,
) -> Result<Checked<'a>, Errors> {
    let ckeys = &keys.container;
    let version = input.version.as_ref().map_or(0, |v| **v);
    let minimum_version = input.minimum_version.as_ref().map_or(version, |v| **v);
    // With an unknown container key (`verison = 3`?), `version` may not be what the
    // user meant: comparisons against it would only add follow-up errors.
    let version_known = !ckeys.had_unknown();
    if let Some(min) = &input.minimum_version {
        if **min > version && version_known {
            let version_note = if input.version.is_none() {
                " (`version` is not given and defaults to 0)"
            } else {
                ""
            };
            acc.push(error(
                at(ckeys, "minimum_version", min.span()),
                format!(
                    "`minimum_version = {}` is above `version = {version}`{version_note}: no stream \
                     could ever be loaded; `minimum_version` is the oldest version `load` accepts \
                     and must be at most `version`",
                    **min
                ),
            ));
        }
    }
    let name = input
        .name
        .as_ref()
        .map_or_else(|| input.ident.to_string(), |n| (**n).clone());
    if let Some(n) = &input.name {
        if n.is_empty() || n.len() > 255 {
            acc.push(error(
                at(ckeys, "name", n.span()),
                format!(
                    "`name` must be 1 to 255 bytes long (it travels as a counted string); \
                     this one is {} bytes",
                    n.len()
                ),
            ));
        }
    }
    let priority = match &input.priority {
        Some(p) if !PRIORITIES.contains(&p.to_string().as_str()) => {
            let hint = diag::closest(&p.to_string(), PRIORITIES.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            acc.push(error(
                p,
                format!(
                    "unknown priority `{p}`; {hint}expected a `MigrationPriority` variant: {}",
                    PRIORITIES.join(", ")
                ),
            ));
            syn::Ident::new("Default", p.span())
        }
        Some(p) => p.clone(),
        None => syn::Ident::new("Default", Span::call_site()),
    };

    let no_keys = Keys::default();
    let mut out_fields = Vec::new();
    let mut subsections = Vec::new();
    for (index, f) in fields.iter().enumerate() {
        let Some(ident) = f.ident.as_ref() else {
            continue; // named structs only (checked before darling runs)
        };
        let fkeys = keys.fields.get(index).unwrap_or(&no_keys);
        // Mistakes inside `varray(..)`, `subsection(..)`... (kept by the parser so
        // that the checks below still run).
        for nested in [&f.varray, &f.vbuffer, &f.bitmap]
            .into_iter()
            .flatten()
            .flat_map(|l| &l.errors)
            .chain(f.subsection.iter().flat_map(|s| &s.errors))
        {
            acc.push(nested.clone());
        }
        let kinds = kind_keys(f);
        for extra in kinds.iter().skip(1) {
            acc.push(error(
                at(fkeys, extra.0, extra.1),
                format!(
                    "`{}` cannot be combined with `{}` on field `{ident}`: each decides how the \
                     field travels; keep one",
                    extra.0, kinds[0].0
                ),
            ));
        }
        let kind_key = kinds.first().map(|k| k.0);
        let modifiers = modifier_keys(f);
        if let Some(kind @ ("skip" | "subsection")) = kind_key {
            for (m, span) in &modifiers {
                let why = match (kind, *m) {
                    ("skip", _) => "a skipped field is never on the wire".to_string(),
                    (_, "since" | "test") => {
                        "a subsection is sent when its `needed` function says so; \
                         decide there (`subsection(needed = path)`)"
                            .to_string()
                    }
                    (_, "max") => "a subsection has no count to bound".to_string(),
                    _ => "put the check in the subsection type's own hooks".to_string(),
                };
                acc.push(error(
                    at(fkeys, m, *span),
                    format!("`{m}` cannot be combined with `{kind}` on field `{ident}`: {why}"),
                ));
            }
        }
        if let (Some(since), Some(test)) = (&f.since, &f.test) {
            if !matches!(kind_key, Some("skip" | "subsection")) {
                let test = quote::quote!(#test).to_string().replace(' ', "");
                acc.push(error(
                    at(fkeys, "since", since.span()),
                    format!(
                        "`since` and `test` on field `{ident}`: with a test, the test alone decides \
                         whether the field is on the wire and `since` would be ignored (as in \
                         QEMU); check the version inside `{test}` and remove `since`"
                    ),
                ));
            }
        }
        if let Some(since) = &f.since {
            if **since > version
                && version_known
                && kind_key != Some("skip")
                && kind_key != Some("subsection")
            {
                acc.push(error(
                    at(fkeys, "since", since.span()),
                    format!(
                        "`since = {}` on field `{ident}` is above the struct's `version = {version}`: \
                         the field would never be saved; bump `version` when adding a field",
                        **since
                    ),
                ));
            }
        }
        let max = f.max.as_ref().map(|m| **m);
        if let Some(m) = &f.max {
            if !matches!(
                kind_key,
                Some("varray" | "vbuffer" | "bitmap" | "list" | "skip" | "subsection")
            ) {
                acc.push(error(
                    at(fkeys, "max", m.span()),
                    format!(
                        "`max` on field `{ident}` has nothing to bound: it limits the count read \
                         from the stream for `varray`, `vbuffer`, `bitmap` and `list`"
                    ),
                ));
            }
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
                        &format!(
                            "`with_tmp` needs the marker type `WithTmp<T>` (T: VmStateTmp<Self>); \
                             declare the field as `WithTmp<{}>`",
                            type_string(ty)
                        ),
                    ));
                    FieldKind::Skip
                }
            },
            Some("unused") => FieldKind::Unused(f.unused.as_ref().map_or(0, |u| **u)),
            Some(key @ ("varray" | "vbuffer")) => {
                let buffer = key == "vbuffer";
                let len_attr = if buffer { &f.vbuffer } else { &f.varray };
                let len_attr = len_attr.as_ref().expect("kind key present");
                let Some(len) = len_count(&mut acc, fkeys, key, len_attr) else {
                    continue;
                };
                check_len_field(&mut acc, fields, index, ident, len, key);
                let elem_error = |acc: &mut Errors| {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`vbuffer` is a byte buffer and needs `Vec<u8>` or `[u8; N]`; for other \
                         element types use `varray(len = ..)`",
                    ));
                };
                if let Some(elem) = types::vec_elem(ty) {
                    if buffer && !types::is_u8(elem) {
                        elem_error(&mut acc);
                    }
                    let max = max.unwrap_or_else(|| {
                        acc.push(error(
                            at(fkeys, key, len_attr.span()),
                            format!(
                                "`{key}` on the Vec field `{ident}` needs `max = N`: the count \
                                 comes from the stream and must be bounded before anything is \
                                 allocated; add e.g. `{key}(len = {}), max = 256`",
                                len
                            ),
                        ));
                        0
                    });
                    FieldKind::VarVec {
                        elem,
                        len,
                        max,
                        buffer,
                    }
                } else if let Some((elem, n)) = types::array_parts(ty) {
                    if buffer && !types::is_u8(elem) {
                        elem_error(&mut acc);
                    }
                    FieldKind::VarArray {
                        elem,
                        n,
                        len,
                        max,
                        buffer,
                    }
                } else {
                    acc.push(type_error(
                        ident,
                        ty,
                        &format!(
                            "`{key}` needs a `Vec<T>` or an array `[T; N]` to hold the elements \
                             its count field `{}` announces",
                            len
                        ),
                    ));
                    FieldKind::Skip
                }
            }
            Some("bitmap") => {
                let len_attr = f.bitmap.as_ref().expect("kind key present");
                let Some(len) = len_count(&mut acc, fkeys, "bitmap", len_attr) else {
                    continue;
                };
                check_len_field(&mut acc, fields, index, ident, len, "bitmap");
                if !types::vec_elem(ty).is_some_and(types::is_u64) {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`bitmap` needs a `Vec<u64>` (64 bits per word, as QEMU's bitmaps)",
                    ));
                }
                let max = max.unwrap_or_else(|| {
                    acc.push(error(
                        at(fkeys, "bitmap", len_attr.span()),
                        format!(
                            "`bitmap` on field `{ident}` needs `max = N`, the largest number of \
                             bits the stream may announce; add e.g. `bitmap(len = {}), max = 4096`",
                            len
                        ),
                    ));
                    0
                });
                FieldKind::Bitmap { len, max }
            }
            Some("list") => match types::vec_elem(ty) {
                Some(elem) => {
                    let max = max.unwrap_or_else(|| {
                        acc.push(error(
                            at(fkeys, "list", f.list.span()),
                            format!(
                                "`list` on field `{ident}` needs `max = N`, the largest number of \
                                 elements the stream may hold; add e.g. `list, max = 64`"
                            ),
                        ));
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
                        "`equal` compares integers and needs one of u8, u16, u32, u64, i8, i16, \
                         i32, i64",
                    ));
                }
                FieldKind::Equal
            }
            Some("positive_le") => {
                if !types::is_i32(ty) {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`positive_le` needs an `i32` field (QEMU's VMSTATE_INT32_POSITIVE_LE \
                         checks 0 <= incoming <= current)",
                    ));
                }
                FieldKind::PositiveLe
            }
            Some("timer") => {
                if !types::option_inner(ty).is_some_and(types::is_u64) {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`timer` needs an `Option<u64>` field: the expiry in ns, `None` when the \
                         timer is not armed",
                    ));
                }
                FieldKind::Timer
            }
            Some("buffer") => {
                if !types::array_parts(ty).is_some_and(|(e, _)| types::is_u8(e)) {
                    acc.push(type_error(
                        ident,
                        ty,
                        "`buffer` describes a byte array and needs a `[u8; N]` field",
                    ));
                }
                FieldKind::Buffer
            }
            // An unknown key was removed from this field (`skp`? `varay`?): what the
            // plain type supports is beside the point.
            _ if fkeys.had_unknown() => FieldKind::Skip,
            _ => {
                if let Some(reason) = types::unsupported_reason(ty) {
                    acc.push(unsupported_type_error(ident, ty, reason));
                } else if types::vec_elem(ty).is_some() {
                    acc.push(unsupported_type_error(
                        ident,
                        ty,
                        "a `Vec` needs to say how its length travels: add \
                         `varray(len = count_field), max = N`, `vbuffer(len = count_field), max = N` \
                         or `list, max = N`",
                    ));
                } else if types::option_inner(ty).is_some()
                    && types::simple_name(types::option_inner(ty).expect("checked")).as_deref()
                        != Some("Box")
                {
                    acc.push(unsupported_type_error(
                        ident,
                        ty,
                        "`Option<T>` is only supported as `Option<Box<T>>` (an element of an array \
                         of pointers) or as `Option<u64>` with `timer`",
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
            wire_name: f.rename.clone().unwrap_or_else(|| ident.to_string()),
            ty,
            kind,
            since: f.since.as_ref().map_or(0, |s| **s),
            test: f.test.as_ref(),
            validate: f.validate.as_ref(),
        });
    }

    if !acc.is_empty() {
        return Err(acc);
    }
    Ok(Checked::Struct(Container {
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

/// The count field named by `varray(len = ..)` and friends; reports a missing `len`.
fn len_count<'a>(
    acc: &mut Errors,
    fkeys: &Keys,
    key: &str,
    len_attr: &'a darling::util::SpannedValue<LenAttr>,
) -> Option<&'a syn::Ident> {
    // With a mistake inside the parentheses (`length = n`?) that is already reported.
    if len_attr.len.is_none() && len_attr.errors.is_empty() {
        acc.push(error(
            at(fkeys, key, len_attr.span()),
            format!(
                "`{key}` needs the name of the earlier field that holds the count: \
                 `{key}(len = count_field)`"
            ),
        ));
    }
    len_attr.len.as_ref()
}

/// A field whose type does not fit its attribute.
fn type_error(ident: &syn::Ident, ty: &syn::Type, reason: &str) -> syn::Error {
    error(
        ty,
        format!("field `{ident}` has type `{}`: {reason}", type_string(ty)),
    )
}

/// A field whose type can never be migrated: also lists what can.
fn unsupported_type_error(ident: &syn::Ident, ty: &syn::Type, reason: &str) -> syn::Error {
    error(
        ty,
        format!(
            "unsupported type `{}` for field `{ident}`: {reason}\n\
             note: {SUPPORTED}",
            type_string(ty)
        ),
    )
}

/// The count field of a varray/vbuffer/bitmap must exist, come earlier, be on the
/// wire, and have a count type.
fn check_len_field(
    acc: &mut Errors,
    fields: &[FieldAttrs],
    index: usize,
    ident: &syn::Ident,
    len: &syn::Ident,
    key: &str,
) {
    let what = format!("`{key}(len = {len})` on field `{ident}`");
    let pos = fields
        .iter()
        .position(|f| f.ident.as_ref().is_some_and(|i| i == len));
    match pos {
        None => {
            let names: Vec<String> = fields[..index]
                .iter()
                .filter_map(|f| f.ident.as_ref())
                .map(|i| i.to_string())
                .collect();
            let hint = diag::closest(&len.to_string(), names.iter().map(String::as_str))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_else(|| {
                    " (the count must be an earlier field of this struct)".to_string()
                });
            acc.push(error_at(
                len.span(),
                format!("{what}: there is no field named `{len}`{hint}"),
            ));
        }
        Some(p) if p >= index => acc.push(error_at(
            len.span(),
            format!(
                "{what}: the count field `{len}` must come before `{ident}`: the loader reads \
                 the count first; move `{len}` above `{ident}`"
            ),
        )),
        Some(p) => {
            let f = &fields[p];
            if f.skip.is_present() || f.subsection.is_some() {
                acc.push(error_at(
                    len.span(),
                    format!(
                        "{what}: the count field `{len}` is not on the wire (it is {}), so the \
                         loader could not know the count",
                        if f.skip.is_present() {
                            "`skip`"
                        } else {
                            "a subsection"
                        }
                    ),
                ));
            } else if !types::is_count_type(&f.ty) {
                acc.push(error_at(
                    len.span(),
                    format!(
                        "{what}: the count field `{len}` has type `{}`; a count must be u8, u16, \
                         u32 or i32 (QEMU's VARRAY_UINT8/UINT16/UINT32/INT32)",
                        type_string(&f.ty)
                    ),
                ));
            }
        }
    }
}
