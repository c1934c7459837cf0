//! The `save_with` method, the one save path: pre_save, fields at the current
//! version, needed subsections, post_save (which also runs when a field fails, as in
//! QEMU). It is generic over the describe sink: `save` passes the runtime's no-op
//! sink (QEMU's NULL vmdesc), so every sink call folds away; `save_described` passes
//! the vmdesc recorder. Each field is generated once.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::paths::Paths;
use crate::ast::{Container, Field, FieldKind};
use crate::ctxt::user_span;

pub fn save_fn(c: &Container, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let name = &c.name;
    let version = c.version;
    let fields = save_fields(&c.fields, paths);
    let subsections = c.subsections.iter().map(|s| {
        let ident = s.ident;
        let ty = s.ty;
        let sp = paths.at(user_span(ty));
        let save = quote_spanned! {user_span(ty)=>
            #sp::save_subsection::<#ty, __B, __S>(&self.#ident, __w, __sink)?;
        };
        match s.needed {
            Some(path) => {
                let check = quote_spanned! {user_span(path)=>
                    let __needed: fn(&Self) -> #p::bool = #path;
                };
                quote! {{ #check if __needed(self) { #save } }}
            }
            None => save,
        }
    });
    let pre_save = c.hooks.pre_save.map(|hook| {
        let check = quote_spanned! {user_span(hook)=>
            let __hook: fn(&Self) -> #p::Result<(), _> = #hook;
        };
        quote! {
            #check
            #p::hook("pre_save", __hook(self))
                .map_err(|__e| __e.with_offset(__w.position()).in_vmsd(#name))?;
        }
    });
    let post_save = c.hooks.post_save.map(|hook| {
        let check = quote_spanned! {user_span(hook)=>
            let __post: fn(&Self) -> #p::Result<(), _> = #hook;
        };
        quote! {
            #check
            let __result = __result.and(
                #p::hook("post_save", __post(self)).map_err(|__e| __e.with_offset(__w.position())),
            );
        }
    });
    let type_checks = super::description::type_checks(c, paths);
    quote! {
        #[inline]
        fn save_with<__B: #p::BufMut, __S: #p::DescribeSink + ?#p::Sized>(
            &self,
            __w: &mut #p::Writer<__B>,
            __sink: &mut __S,
        ) -> #p::Result<(), #p::Error> {
            #type_checks
            #[allow(unused)]
            const __VERSION: #p::u32 = #version;
            #pre_save
            let __desc = <Self as #p::VmState>::DESCRIPTION;
            #p::begin_vmsd(__sink, __desc);
            let __result: #p::Result<(), #p::Error> = (|| {
                #fields
                #( #subsections )*
                #p::Result::Ok(())
            })();
            #post_save
            #p::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd(#name))
        }
    }
}

/// All field statements, with runs of two or more plain fields written after one
/// room check (instead of one per field) when nothing is being described.
fn save_fields(fields: &[Field], paths: &Paths) -> TokenStream {
    // Each field's index in the description (runs and single fields alternate).
    let next = std::cell::Cell::new(0);
    let take = |n: usize| next.replace(next.get() + n);
    crate::ast::by_runs(
        fields,
        |run| save_run(run, take(run.len()), paths),
        |f| save_field(f, take(1), paths),
    )
    .into_iter()
    .collect()
}

fn save_run(run: &[Field], first: usize, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let sizes = run.iter().map(|f| {
        let ty = f.ty;
        quote!(<#ty as #p::PlainField>::WIRE_SIZE)
    });
    let puts = run.iter().map(|f| {
        let ident = f.ident;
        let ty = f.ty;
        quote!(<#ty as #p::PlainField>::put_plain(&self.#ident, __buf);)
    });
    // While describing, or without room for the whole run (a full fixed-size
    // buffer), the per-field code runs instead: it reports each field to the sink,
    // and exactly which field did not fit.
    let per_field = run
        .iter()
        .enumerate()
        .map(|(i, f)| save_field(f, first + i, paths));
    quote! {
        if !#p::is_recording(__sink) && __w.has_room(0 #( + #sizes )*) {
            let __buf = __w.get_mut();
            #( #puts )*
        } else {
            #( #per_field )*
        }
    }
}

/// One field (`index` in the description): its bytes, reported to the sink as a
/// field of this body. A field a test leaves out is not described (as in QEMU).
fn save_field(f: &Field, index: usize, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let ident = f.ident;
    let stmt = match &f.kind {
        FieldKind::Skip => return quote! {},
        // The common case, through the type's own encoding.
        FieldKind::Plain | FieldKind::Buffer => {
            let ty = f.ty;
            let sp = paths.at(user_span(ty));
            quote_spanned! {user_span(ty)=>
                #sp::save_value::<#ty, __B, __S>(&self.#ident, __w, __sink, __desc, #index)?;
            }
        }
        _ => {
            let write = write_expr(f, paths);
            // A variable array's element count is only known now.
            let count = match &f.kind {
                FieldKind::VarVec {
                    len, buffer: false, ..
                }
                | FieldKind::VarArray {
                    len, buffer: false, ..
                } => quote!(#p::Option::Some(self.#len as #p::i64)),
                _ => quote!(#p::Option::None),
            };
            quote! {
                #p::save_field(__w, __sink, __desc, #index, #count, |__w, __sink| #write)?;
            }
        }
    };
    match f.test {
        // On save the version is the current one, so `since` never excludes a
        // field (checked at compile time); only a test can.
        Some(test) => {
            let check = quote_spanned! {user_span(test)=>
                let __test: fn(&Self, #p::u32) -> #p::bool = #test;
            };
            quote! {{ #check if __test(self, __VERSION) { #stmt } }}
        }
        None => stmt,
    }
}

/// The expression writing a field of an attribute-selected encoding to `__w`.
fn write_expr(f: &Field, paths: &Paths) -> TokenStream {
    let ident = f.ident;
    let ty = f.ty;
    let span_of = |t: &syn::Type| (user_span(t), paths.at(user_span(t)));
    let p = paths.private();
    match &f.kind {
        FieldKind::Skip | FieldKind::Plain | FieldKind::Buffer => {
            unreachable!("saved by save_field")
        }
        FieldKind::Equal | FieldKind::PositiveLe => {
            let (s, sp) = span_of(ty);
            quote_spanned! {s=> <#ty as #sp::VmStateField>::save_field(&self.#ident, __w) }
        }
        FieldKind::VarVec { len, elem, max, .. } => {
            let (s, sp) = span_of(elem);
            quote_spanned! {s=>
                #sp::save_varray_vec::<#elem, __B, __S>(&self.#ident, self.#len as #sp::i64, #max, __w, __sink)
            }
        }
        FieldKind::VarArray { len, elem, max, .. } => {
            let (s, sp) = span_of(elem);
            let max = match max {
                Some(m) => quote!(#m),
                None => quote!(#p::usize::MAX),
            };
            quote_spanned! {s=>
                #sp::save_varray_array::<#elem, __B, __S>(&self.#ident, self.#len as #sp::i64, #max, __w, __sink)
            }
        }
        FieldKind::Bitmap { len, .. } => {
            quote!(#p::save_bitmap(&self.#ident, self.#len as #p::i64, __w))
        }
        FieldKind::List { elem, .. } => {
            let (s, sp) = span_of(elem);
            quote_spanned! {s=> #sp::save_list::<#elem, __B>(&self.#ident, __w) }
        }
        FieldKind::Unused(n) => quote!(__w.write_zeros(#n)),
        FieldKind::Timer => quote!(#p::save_timer(&self.#ident, __w)),
        FieldKind::WithTmp(tmp) => {
            let (s, sp) = span_of(tmp);
            quote_spanned! {s=> #sp::save_tmp::<#tmp, Self, __B>(self, __w) }
        }
    }
}
