//! Field types as written. The derive cannot resolve types, so these only
//! recognise the spellings users write (`u32`, `Vec<T>`, `[T; N]`, ...); what they
//! miss is still caught by trait bounds in the generated code. Also prints a type
//! back the way its user wrote it, for error messages.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type};

/// The last path segment's identifier and generic arguments, for a plain path type.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

/// The name of a simple path type (`u32`, `Vec`, `Option`).
pub fn simple_name(ty: &Type) -> Option<String> {
    last_segment(ty).map(|s| s.ident.to_string())
}

/// The single generic type argument of `Wrapper<T>` when the type is spelled `name<...>`.
fn generic_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let seg = last_segment(ty)?;
    if seg.ident != name {
        return None;
    }
    match &seg.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

/// `Vec<T>` → `T`.
pub fn vec_elem(ty: &Type) -> Option<&Type> {
    generic_arg(ty, "Vec")
}

/// `WithTmp<T>` → `T`.
pub fn with_tmp_inner(ty: &Type) -> Option<&Type> {
    generic_arg(ty, "WithTmp")
}

/// `Option<T>` → `T`.
pub fn option_inner(ty: &Type) -> Option<&Type> {
    generic_arg(ty, "Option")
}

/// `[T; N]` → (`T`, `N`).
pub fn array_parts(ty: &Type) -> Option<(&Type, &syn::Expr)> {
    match ty {
        Type::Array(a) => Some((&a.elem, &a.len)),
        Type::Group(g) => array_parts(&g.elem),
        Type::Paren(p) => array_parts(&p.elem),
        _ => None,
    }
}

/// Integer types QEMU has VMState encodings for.
pub fn is_integer(ty: &Type) -> bool {
    matches!(
        simple_name(ty).as_deref(),
        Some("u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64")
    ) && last_segment(ty).is_some_and(|s| s.arguments.is_empty())
}

/// Types a varray/vbuffer count may have (QEMU's VARRAY_UINT8/UINT16/UINT32/INT32).
pub fn is_count_type(ty: &Type) -> bool {
    matches!(
        simple_name(ty).as_deref(),
        Some("u8" | "u16" | "u32" | "i32")
    ) && last_segment(ty).is_some_and(|s| s.arguments.is_empty())
}

/// Integers, bools and (nested) arrays of them: fixed-size values with no
/// version-dependent content, decodable straight from a byte slice.
pub fn is_plain_type(ty: &Type) -> bool {
    if let Some((elem, _)) = array_parts(ty) {
        return is_plain_type(elem);
    }
    is_integer(ty)
        || (simple_name(ty).as_deref() == Some("bool")
            && last_segment(ty).is_some_and(|s| s.arguments.is_empty()))
}

/// Whether the type is `u8`.
pub fn is_u8(ty: &Type) -> bool {
    simple_name(ty).as_deref() == Some("u8")
}

/// Whether the type is `u64`.
pub fn is_u64(ty: &Type) -> bool {
    simple_name(ty).as_deref() == Some("u64")
}

/// Whether the type is `i32`.
pub fn is_i32(ty: &Type) -> bool {
    simple_name(ty).as_deref() == Some("i32")
}

/// Whether the type is `()`.
pub fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// A reason a type can never be a VMState field, for types we can recognise.
pub fn unsupported_reason(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Reference(_) => {
            return Some(
                "a reference cannot be loaded into; store the value itself (or a `Box<T>`)",
            )
        }
        Type::Ptr(_) => return Some("raw pointers have no wire encoding"),
        Type::Slice(_) => return Some("unsized slices have no fixed length on the wire"),
        Type::Tuple(t) if !t.elems.is_empty() => {
            return Some("tuples have no VMState encoding; use a nested struct")
        }
        Type::BareFn(_) | Type::TraitObject(_) | Type::ImplTrait(_) => {
            return Some("functions and trait objects have no wire encoding")
        }
        _ => {}
    }
    match simple_name(ty).as_deref() {
        Some("usize" | "isize") => {
            Some("its size depends on the host; use u32 or u64 (or i32/i64)")
        }
        Some("f32" | "f64") => {
            Some("floating point has no VMState encoding; store the bits in u32/u64")
        }
        Some("char") => Some("char has no VMState encoding; use u32"),
        Some("String" | "str") => {
            Some("strings have no VMState encoding; use a byte buffer with `vbuffer(len = ..)`")
        }
        Some("HashMap" | "BTreeMap" | "HashSet" | "BTreeSet") => {
            Some("maps and sets have no VMState encoding; use a `list` of structs")
        }
        _ => None,
    }
}

/// A type as a user would write it: `&'a [u8; 16]`, `Vec<u32>`, `(i32, i32)`.
pub fn type_string(ty: &syn::Type) -> String {
    let mut out = String::new();
    write_tokens(&mut out, ty.to_token_stream());
    out
}

fn write_tokens(out: &mut String, tokens: TokenStream) {
    // Whether the next word needs a space before it (after `mut`, `dyn`, a lifetime...).
    let mut space_next = false;
    let mut in_lifetime = false;
    for tt in tokens {
        let needs_space = std::mem::take(&mut space_next);
        match tt {
            TokenTree::Ident(id) => {
                let s = id.to_string();
                if needs_space || out.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    out.push(' ');
                }
                out.push_str(&s);
                space_next =
                    in_lifetime || matches!(s.as_str(), "mut" | "dyn" | "impl" | "const" | "as");
                in_lifetime = false;
            }
            TokenTree::Punct(p) => {
                let c = p.as_char();
                match c {
                    ',' | ';' => {
                        out.push(c);
                        out.push(' ');
                    }
                    '+' | '=' => {
                        out.push(' ');
                        out.push(c);
                        out.push(' ');
                    }
                    '\'' => {
                        if needs_space {
                            out.push(' ');
                        }
                        out.push(c);
                        in_lifetime = true;
                    }
                    _ => {
                        if needs_space && c != '>' {
                            out.push(' ');
                        }
                        out.push(c);
                    }
                }
            }
            TokenTree::Literal(l) => {
                if needs_space {
                    out.push(' ');
                }
                out.push_str(&l.to_string());
            }
            TokenTree::Group(g) => {
                if needs_space {
                    out.push(' ');
                }
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(out, g.stream());
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push_str(close);
            }
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> Type {
        syn::parse_str(s).unwrap()
    }

    #[test]
    fn prints_types_like_rustfmt() {
        let printed = |s: &str| type_string(&ty(s));
        assert_eq!(printed("& 'a [u8 ; 16]"), "&'a [u8; 16]");
        assert_eq!(printed("Vec < u32 >"), "Vec<u32>");
        assert_eq!(printed("(i32 , i32)"), "(i32, i32)");
        assert_eq!(printed("Option<Box<T>>"), "Option<Box<T>>");
        assert_eq!(printed("&mut [u8]"), "&mut [u8]");
        assert_eq!(printed("std::vec::Vec<u8>"), "std::vec::Vec<u8>");
        assert_eq!(printed("Box<dyn Fn(u8) + Send>"), "Box<dyn Fn(u8) + Send>");
        assert_eq!(printed("*const u8"), "*const u8");
    }

    #[test]
    fn recognises_shapes() {
        assert!(vec_elem(&ty("Vec<u8>")).is_some());
        assert!(vec_elem(&ty("std::vec::Vec<Foo>")).is_some());
        assert!(vec_elem(&ty("[u8; 4]")).is_none());
        assert!(array_parts(&ty("[u32; N]")).is_some());
        assert!(is_integer(&ty("u16")));
        assert!(!is_integer(&ty("usize")));
        assert!(is_count_type(&ty("i32")));
        assert!(!is_count_type(&ty("u64")));
        assert!(with_tmp_inner(&ty("vmstate_runtime::WithTmp<T>")).is_some());
        assert!(unsupported_reason(&ty("usize")).is_some());
        assert!(unsupported_reason(&ty("(u8, u8)")).is_some());
        assert!(unsupported_reason(&ty("()")).is_none());
        assert!(is_unit(&ty("()")));
    }
}
