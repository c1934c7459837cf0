//! The `save` method: pre_save, fields at the current version, needed subsections,
//! post_save (which also runs when a field fails, as in QEMU).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::ctxt::user_span;

use crate::ast::{Container, Field, FieldKind};

/// Which method is generated: `save`, or `save_described` (the same bytes, with
/// every field's size and nested body reported to a `DescribeSink`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Save,
    Described,
}

pub fn save_fn(c: &Container, mode: Mode) -> TokenStream {
    let name = &c.name;
    let version = c.version;
    let fields = match mode {
        Mode::Save => save_fields(&c.fields),
        Mode::Described => c
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| save_field_described(f, i))
            .collect(),
    };
    let subsections = c.subsections.iter().map(|s| {
        let ident = s.ident;
        let ty = s.ty;
        let save = match mode {
            Mode::Save => quote_spanned! {user_span(ty)=>
                ::vmstate_runtime::__private::save_subsection::<#ty, __B>(&self.#ident, __w)?;
            },
            Mode::Described => quote_spanned! {user_span(ty)=>
                ::vmstate_runtime::__private::save_subsection_described::<#ty, __B>(&self.#ident, __w, __sink)?;
            },
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
        #fields
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
    // The same checks open both methods: a missing trait impl is then reported
    // once (rustc merges identical diagnostics), not once per method.
    let type_checks = crate::describe::type_checks(c);
    match mode {
        Mode::Save => {
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
        Mode::Described => quote! {
            fn save_described<__B: ::vmstate_runtime::__private::BufMut>(
                &self,
                __w: &mut ::vmstate_runtime::wire::Writer<__B>,
                __sink: &mut dyn ::vmstate_runtime::vmstate::DescribeSink,
            ) -> ::vmstate_runtime::Result<()> {
                #type_checks
                #[allow(unused)]
                const __VERSION: u32 = #version;
                #pre_save
                __sink.begin_vmsd(<Self as ::vmstate_runtime::VmState>::DESCRIPTION);
                let __described: ::vmstate_runtime::Result<()> = (|| { #body })();
                __sink.end_vmsd();
                __described
            }
        },
    }
}

/// One field in `save_described`: the same bytes as `save`, between the sink's
/// begin_field/end_field, with nested struct bodies reported too. A field a test
/// leaves out is not described (as in QEMU).
fn save_field_described(f: &Field, index: usize) -> TokenStream {
    let Some(stmt) = write_stmt(f, Mode::Described) else {
        return quote! {};
    };
    // A variable array's element count is only known now.
    let count = match &f.kind {
        FieldKind::VarVec {
            len, buffer: false, ..
        }
        | FieldKind::VarArray {
            len, buffer: false, ..
        } => quote!(::core::option::Option::Some((self.#len as i64).max(0) as usize)),
        _ => quote!(::core::option::Option::None),
    };
    let described = quote! {
        {
            let __start = __w.position();
            ::vmstate_runtime::__private::begin_described_field(
                __sink,
                <Self as ::vmstate_runtime::VmState>::DESCRIPTION,
                #index,
                #count,
            );
            #stmt
            __sink.end_field(__w.position() - __start);
        }
    };
    with_test(f, described)
}

fn save_field(f: &Field) -> TokenStream {
    match write_stmt(f, Mode::Save) {
        Some(stmt) => with_test(f, stmt),
        None => quote! {},
    }
}

/// On save the version is the current one, so `since` never excludes a field
/// (checked at compile time); only a test can.
fn with_test(f: &Field, stmt: TokenStream) -> TokenStream {
    match f.test {
        Some(test) => {
            let check = quote_spanned! {user_span(test)=>
                let __test: fn(&Self, u32) -> bool = #test;
            };
            quote! {{ #check if __test(self, __VERSION) { #stmt } }}
        }
        None => stmt,
    }
}

/// The statement writing one field (`None` for skipped fields).
fn write_stmt(f: &Field, mode: Mode) -> Option<TokenStream> {
    let ident = f.ident;
    let name = &f.wire_name;
    let ty = f.ty;
    let write = match &f.kind {
        FieldKind::Skip => return None,
        FieldKind::Plain | FieldKind::Buffer if mode == Mode::Described => {
            quote_spanned! {user_span(ty)=>
                <#ty as ::vmstate_runtime::VmStateField>::save_field_described(&self.#ident, __w, __sink)
            }
        }
        FieldKind::Plain | FieldKind::Buffer | FieldKind::Equal | FieldKind::PositiveLe => {
            quote_spanned! {user_span(ty)=>
                <#ty as ::vmstate_runtime::VmStateField>::save_field(&self.#ident, __w)
            }
        }
        FieldKind::VarVec { len, elem, max, .. } if mode == Mode::Described => {
            quote_spanned! {user_span(elem)=>
                ::vmstate_runtime::__private::save_varray_vec_described::<#elem, __B>(&self.#ident, self.#len as i64, #max, __w, __sink)
            }
        }
        FieldKind::VarVec { len, elem, max, .. } => quote_spanned! {user_span(elem)=>
            ::vmstate_runtime::__private::save_varray_vec::<#elem, __B>(&self.#ident, self.#len as i64, #max, __w)
        },
        FieldKind::VarArray { len, elem, max, .. } => {
            let max = match max {
                Some(m) => quote!(#m),
                None => quote!(usize::MAX),
            };
            if mode == Mode::Described {
                quote_spanned! {user_span(elem)=>
                    ::vmstate_runtime::__private::save_varray_array_described::<#elem, __B>(&self.#ident, self.#len as i64, #max, __w, __sink)
                }
            } else {
                quote_spanned! {user_span(elem)=>
                    ::vmstate_runtime::__private::save_varray_array::<#elem, __B>(&self.#ident, self.#len as i64, #max, __w)
                }
            }
        }
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
    Some(quote! {
        #write.map_err(|__e| __e.in_field(#name, __w.position()))?;
    })
}

/// All field statements, with runs of two or more plain fields written after one
/// room check (instead of one per field).
fn save_fields(fields: &[Field]) -> TokenStream {
    crate::ast::by_runs(fields, save_run, save_field)
        .into_iter()
        .collect()
}

fn save_run(run: &[Field]) -> TokenStream {
    let sizes = run.iter().map(|f| {
        let ty = f.ty;
        quote!(<#ty as ::vmstate_runtime::PlainField>::WIRE_SIZE)
    });
    let puts = run.iter().map(|f| {
        let ident = f.ident;
        let ty = f.ty;
        quote! {
            <#ty as ::vmstate_runtime::PlainField>::put_plain(&self.#ident, __buf);
        }
    });
    // Without room for the whole run (a full fixed-size buffer), the per-field
    // code runs instead and reports exactly which field did not fit.
    let fallback = run.iter().map(save_field);
    quote! {
        {
            let __n: usize = 0 #( + #sizes )*;
            if __w.has_room(__n) {
                let __buf = __w.get_mut();
                #( #puts )*
            } else {
                #( #fallback )*
            }
        }
    }
}
