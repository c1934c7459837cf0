//! The `save` method: pre_save, fields at the current version, needed subsections,
//! post_save (which also runs when a field fails, as in QEMU).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::diag::user_span;

use crate::model::{Container, Field, FieldKind};

pub fn save_fn(c: &Container) -> TokenStream {
    let name = &c.name;
    let version = c.version;
    let fields = c.fields.iter().map(save_field);
    let subsections = c.subsections.iter().map(|s| {
        let ident = s.ident;
        let ty = s.ty;
        let save = quote_spanned! {user_span(ty)=>
            ::vmstate_runtime::__private::save_subsection::<#ty, __B>(&self.#ident, __w)?;
        };
        match s.needed {
            Some(path) => {
                let check = quote_spanned! {user_span(path)=>
                    let __needed: fn(&Self) -> bool = #path;
                };
                quote! {{ #check if __needed(self) { #save } }}
            }
            None => save,
        }
    });
    let pre_save = c.hooks.pre_save.map(|p| {
        let check = quote_spanned! {user_span(p)=>
            let __hook: fn(&Self) -> ::vmstate_runtime::__private::Result<(), _> = #p;
        };
        quote! {
            #check
            ::vmstate_runtime::__private::hook("pre_save", __hook(self))
                .map_err(|__e| __e.with_offset(__w.position()).in_vmsd(#name))?;
        }
    });
    let body = quote! {
        #( #fields )*
        #( #subsections )*
        ::vmstate_runtime::__private::Result::Ok(())
    };
    let body = match c.hooks.post_save {
        None => quote! {
            let __result: ::vmstate_runtime::Result<()> = (|| { #body })();
            __result.map_err(|__e| __e.in_vmsd(#name))
        },
        Some(p) => {
            let check = quote_spanned! {user_span(p)=>
                let __post: fn(&Self) -> ::vmstate_runtime::__private::Result<(), _> = #p;
            };
            quote! {
                let __result: ::vmstate_runtime::Result<()> = (|| { #body })();
                #check
                let __post_result = ::vmstate_runtime::__private::hook("post_save", __post(self))
                    .map_err(|__e| __e.with_offset(__w.position()));
                __result.and(__post_result).map_err(|__e| __e.in_vmsd(#name))
            }
        }
    };
    let type_checks = crate::describe::type_checks(c);
    quote! {
        #[inline]
        fn save<__B: ::vmstate_runtime::__private::BufMut>(
            &self,
            __w: &mut ::vmstate_runtime::wire::Writer<__B>,
        ) -> ::vmstate_runtime::Result<()> {
            #type_checks
            #[allow(unused)]
            const __VERSION: u32 = #version;
            #pre_save
            #body
        }
    }
}

fn save_field(f: &Field) -> TokenStream {
    let ident = f.ident;
    let name = ident.to_string();
    let ty = f.ty;
    let write = match &f.kind {
        FieldKind::Skip => return quote! {},
        FieldKind::Plain | FieldKind::Buffer | FieldKind::Equal | FieldKind::PositiveLe => {
            quote_spanned! {user_span(ty)=>
                <#ty as ::vmstate_runtime::VmStateField>::save_field(&self.#ident, __w)
            }
        }
        FieldKind::VarVec { len, elem, .. } => quote_spanned! {user_span(elem)=>
            ::vmstate_runtime::__private::save_varray_vec::<#elem, __B>(&self.#ident, self.#len as i64, __w)
        },
        FieldKind::VarArray { len, elem, .. } => quote_spanned! {user_span(elem)=>
            ::vmstate_runtime::__private::save_varray_array::<#elem, __B>(&self.#ident, self.#len as i64, __w)
        },
        FieldKind::Bitmap { len, .. } => quote! {
            ::vmstate_runtime::__private::save_bitmap(&self.#ident, self.#len as i64, __w)
        },
        FieldKind::List { elem, .. } => quote_spanned! {user_span(elem)=>
            ::vmstate_runtime::__private::save_list::<#elem, __B>(&self.#ident, __w)
        },
        FieldKind::Unused(n) => quote! { __w.write_zeros(#n) },
        FieldKind::Timer => quote! {
            ::vmstate_runtime::__private::save_timer(&self.#ident, __w)
        },
        FieldKind::WithTmp(tmp) => quote_spanned! {user_span(tmp)=>
            ::vmstate_runtime::__private::save_tmp::<#tmp, Self, __B>(self, __w)
        },
    };
    let stmt = quote! {
        #write.map_err(|__e| __e.in_field(#name, __w.position()))?;
    };
    match f.test {
        // On save the version is the current one, so `since` never excludes a field
        // (checked at compile time); only a test can.
        Some(test) => {
            let check = quote_spanned! {user_span(test)=>
                let __test: fn(&Self, u32) -> bool = #test;
            };
            quote! {{ #check if __test(self, __VERSION) { #stmt } }}
        }
        None => stmt,
    }
}
