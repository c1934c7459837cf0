//! The `load` method: version checks, pre_load, the fields present in the stream's
//! version, subsections in any order, post_load.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::ctxt::user_span;

use crate::ast::{Container, Field, FieldKind};

pub fn load_fn(c: &Container) -> TokenStream {
    let name = &c.name;
    let fields = load_fields(&c.fields);
    let pre_load = c.hooks.pre_load.map(|p| {
        let check = quote_spanned! {user_span(p)=>
            let __hook: fn(&mut Self) -> ::vmstate_runtime::__private::Result<(), _> = #p;
        };
        quote! {
            #check
            ::vmstate_runtime::__private::hook("pre_load", __hook(self))
                .map_err(|__e| __e.with_offset(__r.position()))?;
        }
    });
    let post_load = c.hooks.post_load.map(|p| {
        let check = quote_spanned! {user_span(p)=>
            let __hook: fn(&mut Self, u32) -> ::vmstate_runtime::__private::Result<(), _> = #p;
        };
        quote! {
            #check
            ::vmstate_runtime::__private::hook("post_load", __hook(self, __version))
                .map_err(|__e| __e.with_offset(__r.position()))?;
        }
    });
    let sub_names = c.subsections.iter().map(|s| {
        let ty = s.ty;
        quote!(<#ty as ::vmstate_runtime::VmState>::DESCRIPTION.name)
    });
    let matchers = c.subsections.iter().enumerate().map(|(i, s)| {
        let ident = s.ident;
        let ty = s.ty;
        quote_spanned! {user_span(ty)=>
            #i => ::vmstate_runtime::__private::load_subsection::<#ty, __B>(&mut self.#ident, __h, __r)?,
        }
    });
    let type_checks = crate::describe::type_checks(c);
    quote! {
        #[inline]
        fn load<__B: ::vmstate_runtime::__private::Buf>(
            &mut self,
            __r: &mut ::vmstate_runtime::wire::Reader<__B>,
            __version: u32,
        ) -> ::vmstate_runtime::Result<()> {
            #type_checks
            let __result: ::vmstate_runtime::Result<()> = (|| {
                ::vmstate_runtime::__private::load_prologue(
                    <Self as ::vmstate_runtime::VmState>::DESCRIPTION,
                    __version,
                )
                .map_err(|__e| __e.with_offset(__r.position()))?;
                #pre_load
                #fields
                // Subsections: any subset, any order; a header with our prefix that
                // names none of ours is an error (QEMU: -ENOENT).
                let __subsections: &[&'static str] = &[ #( #sub_names ),* ];
                while let ::core::option::Option::Some(__h) =
                    ::vmstate_runtime::__private::next_subsection(#name, __subsections, __r)?
                {
                    match __h.index {
                        #( #matchers )*
                        _ => return ::vmstate_runtime::__private::Result::Err(
                            ::vmstate_runtime::Error::invalid("subsection index out of range"),
                        ),
                    }
                }
                #post_load
                ::vmstate_runtime::__private::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd(#name))
        }
    }
}

fn load_field(f: &Field) -> TokenStream {
    let ident = f.ident;
    let name = &f.wire_name;
    let ty = f.ty;
    let read = match &f.kind {
        FieldKind::Skip => return quote! {},
        FieldKind::Plain | FieldKind::Buffer => quote_spanned! {user_span(ty)=>
            <#ty as ::vmstate_runtime::VmStateField>::load_field(&mut self.#ident, __r)
        },
        FieldKind::Equal => quote_spanned! {user_span(ty)=>
            ::vmstate_runtime::__private::load_equal(&self.#ident, __r)
        },
        FieldKind::PositiveLe => quote! {
            ::vmstate_runtime::__private::load_positive_le(&mut self.#ident, __r)
        },
        FieldKind::VarVec { len, max, elem, .. } => quote_spanned! {user_span(elem)=>
            ::vmstate_runtime::__private::load_varray_vec::<#elem, __B>(&mut self.#ident, self.#len as i64, #max, __r)
        },
        FieldKind::VarArray {
            len, max, n, elem, ..
        } => {
            let max = match max {
                Some(m) => quote!(#m),
                None => quote!((#n) as usize),
            };
            quote_spanned! {user_span(elem)=>
                ::vmstate_runtime::__private::load_varray_array::<#elem, __B>(&mut self.#ident, self.#len as i64, #max, __r)
            }
        }
        FieldKind::Bitmap { len, max } => quote! {
            ::vmstate_runtime::__private::load_bitmap(&mut self.#ident, self.#len as i64, #max, __r)
        },
        FieldKind::List { max, elem } => quote_spanned! {user_span(elem)=>
            ::vmstate_runtime::__private::load_list::<#elem, __B>(&mut self.#ident, #max, __r)
        },
        FieldKind::Unused(n) => quote! { __r.skip(#n) },
        FieldKind::Timer => quote! {
            ::vmstate_runtime::__private::load_timer(&mut self.#ident, __r)
        },
        FieldKind::WithTmp(tmp) => quote_spanned! {user_span(tmp)=>
            ::vmstate_runtime::__private::load_tmp::<#tmp, Self, __B>(self, __r)
        },
    };
    let validate = f.validate.map(|v| {
        let check = quote_spanned! {user_span(v)=>
            let __validate: fn(&Self, u32) -> bool = #v;
        };
        let path = quote!(#v).to_string().replace(' ', "");
        quote! {
            #check
            if !__validate(self, __version) {
                return ::vmstate_runtime::__private::Result::Err(
                    ::vmstate_runtime::__private::validation_failed(#path, __r.position())
                        .in_field(#name, __r.position()),
                );
            }
        }
    });
    let stmt = quote! {
        #read.map_err(|__e| __e.in_field(#name, __r.position()))?;
        #validate
    };
    match (f.test, f.since) {
        (Some(test), _) => {
            let check = quote_spanned! {user_span(test)=>
                let __test: fn(&Self, u32) -> bool = #test;
            };
            quote! {{ #check if __test(self, __version) { #stmt } }}
        }
        (None, 0) => stmt,
        (None, since) => quote! {
            if __version >= #since { #stmt }
        },
    }
}

/// All field statements, with runs of two or more plain fields decoded from one
/// contiguous slice (one bounds check for the run). The per-field code stays as the
/// fallback for input split across buffers and for precise error reports.
fn load_fields(fields: &[Field]) -> TokenStream {
    crate::ast::by_runs(fields, load_run, load_field)
        .into_iter()
        .collect()
}

fn load_run(run: &[Field]) -> TokenStream {
    let sizes: Vec<TokenStream> = run
        .iter()
        .map(|f| {
            let ty = f.ty;
            quote!(<#ty as ::vmstate_runtime::PlainField>::WIRE_SIZE)
        })
        .collect();
    let decodes = run.iter().zip(&sizes).map(|(f, size)| {
        let ident = f.ident;
        let ty = f.ty;
        quote! {
            __ok &= <#ty as ::vmstate_runtime::PlainField>::decode_into(
                &mut self.#ident, &__b[__o..__o + #size]);
            __o += #size;
        }
    });
    let fallback = run.iter().map(load_field);
    quote! {
        {
            let __n: usize = 0 #( + #sizes )*;
            let __fast = __r.consume_contiguous_if(__n, |__b| {
                let mut __ok = true;
                let mut __o = 0usize;
                #( #decodes )*
                let _ = __o;
                __ok
            });
            if !__fast {
                #( #fallback )*
            }
        }
    }
}
