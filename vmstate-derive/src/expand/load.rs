//! The `load` method: version checks, pre_load, the fields present in the stream's
//! version, subsections in any order, post_load.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::paths::Paths;
use crate::ast::{Container, Field, FieldKind};
use crate::ctxt::user_span;

pub fn load_fn(c: &Container, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let name = &c.name;
    let fields = load_fields(&c.fields, paths);
    let pre_load = c.hooks.pre_load.map(|hook| {
        let check = quote_spanned! {user_span(hook)=>
            let __hook: fn(&mut Self) -> #p::Result<(), _> = #hook;
        };
        quote! {
            #check
            #p::hook("pre_load", __hook(self)).map_err(|__e| __e.with_offset(__r.position()))?;
        }
    });
    let post_load = c.hooks.post_load.map(|hook| {
        let check = quote_spanned! {user_span(hook)=>
            let __hook: fn(&mut Self, #p::u32) -> #p::Result<(), _> = #hook;
        };
        quote! {
            #check
            #p::hook("post_load", __hook(self, __version))
                .map_err(|__e| __e.with_offset(__r.position()))?;
        }
    });
    let subsections = if c.subsections.is_empty() {
        // Still look: a subsection with our prefix that we do not know is an error.
        quote!(#p::no_subsections(#name, __r)?;)
    } else {
        let sub_names = c.subsections.iter().map(|s| {
            let ty = s.ty;
            quote!(<#ty as #p::VmState>::DESCRIPTION.name)
        });
        let arms = c.subsections.iter().enumerate().map(|(i, s)| {
            let ident = s.ident;
            let ty = s.ty;
            let sp = paths.at(user_span(ty));
            quote_spanned! {user_span(ty)=>
                #i => #sp::load_subsection::<#ty, __B>(&mut self.#ident, __h, __r)?,
            }
        });
        quote! {
            // Any subset, any order; a header with our prefix that names none of
            // ours is an error (QEMU: -ENOENT).
            let __subsections: &[&'static #p::str] = &[ #( #sub_names ),* ];
            while let #p::Option::Some(__h) = #p::next_subsection(#name, __subsections, __r)? {
                match __h.index {
                    #( #arms )*
                    _ => return #p::Result::Err(#p::subsection_index_out_of_range()),
                }
            }
        }
    };
    let type_checks = super::description::type_checks(c, paths);
    quote! {
        #[inline]
        fn load<__B: #p::Buf>(
            &mut self,
            __r: &mut #p::Reader<__B>,
            __version: #p::u32,
        ) -> #p::Result<(), #p::Error> {
            #type_checks
            let __result: #p::Result<(), #p::Error> = (|| {
                <Self as #p::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                #pre_load
                #fields
                #subsections
                #post_load
                #p::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd(#name))
        }
    }
}

fn load_field(f: &Field, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let ident = f.ident;
    let name = &f.wire_name;
    let ty = f.ty;
    let span_of = |t: &syn::Type| (user_span(t), paths.at(user_span(t)));
    let read = match &f.kind {
        FieldKind::Skip => return quote! {},
        FieldKind::Plain | FieldKind::Buffer => {
            let (s, sp) = span_of(ty);
            quote_spanned! {s=> #sp::load_value::<#ty, __B>(&mut self.#ident, __r, #name) }
        }
        FieldKind::Equal => {
            let (s, sp) = span_of(ty);
            quote_spanned! {s=> #sp::load_equal(&self.#ident, __r) }
        }
        FieldKind::PositiveLe => quote!(#p::load_positive_le(&mut self.#ident, __r)),
        FieldKind::VarVec { len, max, elem, .. } => {
            let (s, sp) = span_of(elem);
            quote_spanned! {s=>
                #sp::load_varray_vec::<#elem, __B>(&mut self.#ident, self.#len as #sp::i64, #max, __r)
            }
        }
        FieldKind::VarArray {
            len, max, n, elem, ..
        } => {
            let (s, sp) = span_of(elem);
            let max = match max {
                Some(m) => quote!(#m),
                None => quote!((#n) as #p::usize),
            };
            quote_spanned! {s=>
                #sp::load_varray_array::<#elem, __B>(&mut self.#ident, self.#len as #sp::i64, #max, __r)
            }
        }
        FieldKind::Bitmap { len, max } => {
            quote!(#p::load_bitmap(&mut self.#ident, self.#len as #p::i64, #max, __r))
        }
        FieldKind::List { max, elem } => {
            let (s, sp) = span_of(elem);
            quote_spanned! {s=> #sp::load_list::<#elem, __B>(&mut self.#ident, #max, __r) }
        }
        FieldKind::Unused(n) => quote!(__r.skip(#n)),
        FieldKind::Timer => quote!(#p::load_timer(&mut self.#ident, __r)),
        FieldKind::WithTmp(tmp) => {
            let (s, sp) = span_of(tmp);
            quote_spanned! {s=> #sp::load_tmp::<#tmp, Self, __B>(self, __r) }
        }
    };
    let validate = f.validate.map(|v| {
        let check = quote_spanned! {user_span(v)=>
            let __validate: fn(&Self, #p::u32) -> #p::bool = #v;
        };
        let path = quote!(#v).to_string().replace(' ', "");
        quote! {
            #check
            if !__validate(self, __version) {
                return #p::Result::Err(#p::validation_failed(#path, #name, __r.position()));
            }
        }
    });
    let stmt = match &f.kind {
        FieldKind::Plain | FieldKind::Buffer => quote!(#read?; #validate),
        _ => quote!(#p::in_field(#read, #name, __r)?; #validate),
    };
    match (f.test, f.since) {
        (Some(test), _) => {
            let check = quote_spanned! {user_span(test)=>
                let __test: fn(&Self, #p::u32) -> #p::bool = #test;
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
fn load_fields(fields: &[Field], paths: &Paths) -> TokenStream {
    crate::ast::by_runs(fields, |run| load_run(run, paths), |f| load_field(f, paths))
        .into_iter()
        .collect()
}

fn load_run(run: &[Field], paths: &Paths) -> TokenStream {
    let p = paths.private();
    let sizes = run.iter().map(|f| {
        let ty = f.ty;
        quote!(<#ty as #p::PlainField>::WIRE_SIZE)
    });
    let decodes = run.iter().map(|f| {
        let ident = f.ident;
        let ty = f.ty;
        quote!(__run.decode::<#ty>(&mut self.#ident);)
    });
    let fallback = run.iter().map(|f| load_field(f, paths));
    quote! {
        if !__r.consume_contiguous_if(0 #( + #sizes )*, |__b| {
            let mut __run = #p::PlainRun::new(__b);
            #( #decodes )*
            __run.ok()
        }) {
            #( #fallback )*
        }
    }
}
