//! What can derive VmState at all: structs with named fields, and enums of unit
//! variants. Each other shape is reported at the offending tokens, never at the
//! `#[derive]`.

use crate::ctxt::Ctxt;

/// Reports unions, tuple and unit structs and enum variants with data; whether the
/// shape is supported.
pub fn check(cx: &Ctxt, input: &syn::DeriveInput) -> bool {
    let ident = &input.ident;
    match &input.data {
        syn::Data::Union(u) => {
            let u_tok = u.union_token;
            cx.error_spanned_by(
                quote::quote!(#u_tok #ident),
                "`#[derive(VmState)]` does not support unions: the loader could not tell which \
                 member is on the wire; migrate the raw bytes instead (e.g. a struct with a \
                 `[u8; N]` field) and convert them in `pre_save`/`post_load`",
            );
            false
        }
        syn::Data::Struct(s) => match &s.fields {
            syn::Fields::Named(_) => true,
            syn::Fields::Unnamed(fields) => {
                cx.error_spanned_by(
                    fields,
                    format!(
                        "`#[derive(VmState)]` needs named fields: each field's name is its name in \
                         the VMState description and in error messages; write \
                         `struct {ident} {{ name: Type, .. }}`"
                    ),
                );
                false
            }
            syn::Fields::Unit => {
                let s_tok = s.struct_token;
                cx.error_spanned_by(
                    quote::quote!(#s_tok #ident),
                    format!(
                        "`#[derive(VmState)]` needs a struct with named fields; a device without \
                         migrated fields is written `struct {ident} {{}}`"
                    ),
                );
                false
            }
        },
        syn::Data::Enum(e) => {
            let mut ok = true;
            for v in &e.variants {
                if !matches!(v.fields, syn::Fields::Unit) {
                    ok = false;
                    cx.error_spanned_by(
                        &v.fields,
                        format!(
                            "variant `{}` carries data: an enum deriving VmState travels as its \
                             #[repr] integer discriminant, so all its variants must be unit \
                             variants (keep data in a struct deriving VmState)",
                            v.ident
                        ),
                    );
                }
            }
            ok
        }
    }
}
