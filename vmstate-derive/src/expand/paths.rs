//! Every path the generated code names: one prefix, the runtime's `__private`
//! module, built here from the runtime crate's path (`::vmstate_runtime` unless
//! `#[vmstate(crate = "...")]` names a re-export).
//!
//! Each output is one `const _: () = { ... };` block that opens with
//! `use <runtime>::__private as __vmstate;` (the [`Paths::import`]); inside it every
//! path is `__vmstate::Item` (the [`Paths::private`] prefix). Generated code names
//! nothing else: no `::core`, no `Result` or `Option` from the caller's scope. That
//! keeps it correct in a module that shadows prelude or `std` items, and lets a VMM
//! that re-exports the runtime point the derive at it.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;

/// The prefix of every generated path.
pub struct Paths {
    /// `<runtime>::__private`.
    module: TokenStream,
    /// The local name it is imported as.
    private: TokenStream,
}

impl Paths {
    /// Paths through `runtime` (the runtime crate, or a module re-exporting it).
    pub fn new(runtime: &syn::Path) -> Self {
        Paths {
            module: quote!(#runtime::__private),
            private: quote!(__vmstate),
        }
    }

    /// The import that opens every output block.
    pub fn import(&self) -> TokenStream {
        let module = &self.module;
        let private = &self.private;
        quote!(use #module as #private;)
    }

    /// The paths of `::vmstate_runtime` itself (the default, and the only choice for
    /// the stand-in impls emitted after errors).
    pub fn default_runtime() -> Self {
        Self::new(&syn::parse_quote!(::vmstate_runtime))
    }

    /// The local name of `<runtime>::__private`, for `#p::Item`.
    pub fn private(&self) -> &TokenStream {
        &self.private
    }

    /// The prefix with every token at `span`, for use inside `quote_spanned!`: an
    /// unsatisfied bound on `<T as #p::VmStateField>` is then reported at the
    /// user's `T`, as the rest of the spanned expression is.
    pub fn at(&self, span: Span) -> TokenStream {
        respan(self.private.clone(), span)
    }
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tt = TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reexported_runtime_is_imported_under_the_same_local_name() {
        let paths = Paths::new(&syn::parse_quote!(::my_vmm::migration));
        assert_eq!(
            paths.import().to_string(),
            quote!(
                use ::my_vmm::migration::__private as __vmstate;
            )
            .to_string()
        );
        assert_eq!(paths.private().to_string(), "__vmstate");
        let span = Span::call_site();
        assert_eq!(paths.at(span).to_string(), "__vmstate");
    }
}
