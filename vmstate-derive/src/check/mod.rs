//! The checks: turn the read attributes into the checked [IR](crate::ast),
//! reporting every problem found (not just the first), each at the attribute or
//! type that causes it (`since = 3` as a whole, the field's type, the `len` field
//! name inside `varray(..)`), never at the `#[derive]`. One module per concern.

mod container;
mod field;
mod kind;
mod len_field;
mod repr_enum;
mod subsection;

use crate::ast;
use crate::attr::{self, Data};
use crate::ctxt::Ctxt;
use crate::types::type_string;

/// Checks a read input: the IR when neither reading nor checking reported an error.
pub fn check<'a>(cx: &Ctxt, input: &'a attr::Input<'a>) -> Option<ast::Input<'a>> {
    let checked = match &input.data {
        Data::Enum { repr, variants } => {
            repr_enum::check(cx, input, repr.as_ref(), variants).map(ast::Input::Enum)
        }
        Data::Struct(fields) => container::check(cx, input, fields).map(ast::Input::Struct),
    };
    checked.filter(|_| !cx.has_errors())
}

/// The runtime path: `crate = "..."`, else `::vmstate_runtime`.
fn runtime(input: &attr::Input) -> syn::Path {
    input
        .container
        .runtime
        .as_ref()
        .map_or_else(|| syn::parse_quote!(::vmstate_runtime), |p| p.value.clone())
}

/// A field whose type does not fit its attribute.
fn type_error(cx: &Ctxt, ident: &syn::Ident, ty: &syn::Type, reason: &str) {
    cx.error_spanned_by(
        ty,
        format!("field `{ident}` has type `{}`: {reason}", type_string(ty)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;

    /// Reads and checks `input`; the IR's runtime path, or the errors.
    fn runtime_of(input: syn::DeriveInput) -> Result<String, Vec<String>> {
        let cx = Ctxt::new();
        let read = attr::Input::from_ast(&cx, &input);
        let runtime = read
            .as_ref()
            .and_then(|r| check(&cx, r))
            .map(|checked| match checked {
                ast::Input::Struct(c) => c.runtime,
                ast::Input::Enum(e) => e.runtime,
            })
            .map(|p| p.to_token_stream().to_string().replace(' ', ""));
        match (cx.check(), runtime) {
            (Ok(()), Some(r)) => Ok(r),
            (errors, _) => Err(errors
                .err()
                .into_iter()
                .flatten()
                .map(|e| e.to_string())
                .collect()),
        }
    }

    #[test]
    fn runtime_path_defaults_and_can_be_renamed() {
        let plain = syn::parse_quote! { struct S { x: u8 } };
        assert_eq!(runtime_of(plain).unwrap(), "::vmstate_runtime");
        let renamed = syn::parse_quote! {
            #[vmstate(crate = "my_vmm::vmstate")]
            struct S { x: u8 }
        };
        assert_eq!(runtime_of(renamed).unwrap(), "my_vmm::vmstate");
        let on_enum = syn::parse_quote! {
            #[vmstate(crate = ::my_vmm::vmstate)]
            #[repr(u8)]
            enum E { A = 0 }
        };
        assert_eq!(runtime_of(on_enum).unwrap(), "::my_vmm::vmstate");
    }

    /// Every key of the symbol table goes through the attribute pass and the checks
    /// (each builder's accessor matches the key's kind).
    #[test]
    fn every_key_is_read() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[vmstate(name = "dev", version = 2, minimum_version = 1, priority = Iommu,
                      pre_save = a, post_save = b, pre_load = c, post_load = d,
                      crate = "rt")]
            struct Dev {
                n: u8,
                #[vmstate(since = 1, rename = "a.b", validate = ok)] a: u8,
                #[vmstate(test = t)] b: u8,
                #[vmstate(subsection(needed = s))] c: Sub,
                #[vmstate(with_tmp)] d: WithTmp<Tmp>,
                #[vmstate(skip)] e: u8,
                #[vmstate(unused = 4)] f: (),
                #[vmstate(varray(len = n), max = 4)] g: Vec<u8>,
                #[vmstate(vbuffer(len = n), max = 4)] h: Vec<u8>,
                #[vmstate(bitmap(len = n), max = 64)] i: Vec<u64>,
                #[vmstate(list, max = 4)] j: Vec<Sub>,
                #[vmstate(equal)] k: u32,
                #[vmstate(positive_le)] l: i32,
                #[vmstate(timer)] m: Option<u64>,
                #[vmstate(buffer)] o: [u8; 4],
            }
        };
        // Every key of the table is written above.
        let mut attrs: Vec<&syn::Attribute> = input.attrs.iter().collect();
        if let syn::Data::Struct(s) = &input.data {
            attrs.extend(s.fields.iter().flat_map(|f| &f.attrs));
        }
        let mut written = Vec::new();
        for attr in attrs {
            let items = attr
                .parse_args_with(
                    syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
                )
                .unwrap();
            written.extend(items.iter().map(|m| m.path().to_token_stream().to_string()));
        }
        for key in crate::symbol::KEYS {
            assert!(
                written.iter().any(|w| w == key.name),
                "`{}` is not exercised",
                key.name
            );
        }
        assert_eq!(runtime_of(input).unwrap(), "rt");
    }

    #[test]
    fn errors_of_both_stages_are_reported_together() {
        let input = syn::parse_quote! {
            #[vmstate(verison = 2, crate = 5)]
            struct S {
                #[vmstate(since = 1, since = 2)] x: u8,
                y: f64,
            }
        };
        let errors = runtime_of(input).unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].contains("did you mean `version`?"));
        assert!(errors[1].starts_with("`crate` takes the path"));
        assert!(errors[2].contains("given twice on field `x`"));
        assert!(errors[3].starts_with("unsupported type `f64`"));
    }
}
