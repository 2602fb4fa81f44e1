//! Runtime values of the labeling engine and the string interner: strings are compared as ids
//! (the policy's literals interned once, a batch's data strings per batch), sets are sorted ids.

use rustc_hash::FxHashMap;
use std::ops::Deref;
use std::sync::Arc;

/// A sequence that is either borrowed from a decoded record or shared (cheap to clone).
#[derive(Clone, Debug)]
pub enum Seq<'a, T> {
    Borrowed(&'a [T]),
    Shared(Arc<[T]>),
}

impl<T> Deref for Seq<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Seq::Borrowed(s) => s,
            Seq::Shared(s) => s,
        }
    }
}

impl<T: PartialEq> PartialEq for Seq<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T> From<Vec<T>> for Seq<'_, T> {
    fn from(v: Vec<T>) -> Self {
        Seq::Shared(v.into())
    }
}

impl<'a, T> Seq<'a, T> {
    /// A view of the same elements, borrowed for `'b`.
    pub fn view<'b>(&'b self) -> Seq<'b, T> {
        Seq::Borrowed(self)
    }
}

/// A value during evaluation. Borrowed from a decoded record where it can be.
#[derive(Clone, Debug, PartialEq)]
pub enum Val<'a> {
    Num(f64),
    Bool(bool),
    /// An interned string.
    Str(u32),
    /// An enum value, by its position in its enum.
    Enum(u32),
    /// A set (sorted, no duplicates) or list of interned strings or enum positions.
    Ids(Seq<'a, u32>, Kind),
    /// A list of numbers.
    Nums(Seq<'a, f64>),
    /// An optional field with no value.
    Missing,
    /// No value: the expression abstains (an explicit `abstain`, or a division by zero).
    Abstain,
    /// A `text` field: carried, never read.
    Text,
}

/// Whether an id collection is a set (sorted, deduplicated) or a list (as given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Set,
    List,
}

impl Val<'_> {
    pub fn num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// The same value, borrowing any sequence from `self`.
    pub fn view(&self) -> Val<'_> {
        match self {
            Val::Ids(ids, k) => Val::Ids(ids.view(), *k),
            Val::Nums(ns) => Val::Nums(ns.view()),
            Val::Num(n) => Val::Num(*n),
            Val::Bool(b) => Val::Bool(*b),
            Val::Str(s) => Val::Str(*s),
            Val::Enum(e) => Val::Enum(*e),
            Val::Missing => Val::Missing,
            Val::Abstain => Val::Abstain,
            Val::Text => Val::Text,
        }
    }
}

/// Sorts and deduplicates ids into a set.
pub fn to_set(mut ids: Vec<u32>) -> Vec<u32> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Not yet computed.
const UNKNOWN: u32 = u32::MAX;

/// Strings by id: the policy's literals first (ids `0..base`), then this batch's.
#[derive(Clone, Debug)]
pub struct Interner<'p> {
    base: &'p BaseStrings,
    extra: FxHashMap<Box<str>, u32>,
    extra_text: Vec<Box<str>>,
    /// `lower(s)` by id, computed once ([`UNKNOWN`] until then).
    lowered: Vec<u32>,
}

/// The policy's interned literals, shared read-only by every batch.
#[derive(Clone, Debug, Default)]
pub struct BaseStrings {
    ids: FxHashMap<Box<str>, u32>,
    text: Vec<Box<str>>,
}

impl BaseStrings {
    pub fn new(strings: &[String]) -> Self {
        let mut base = BaseStrings::default();
        for s in strings {
            let id = u32::try_from(base.text.len()).unwrap_or(u32::MAX);
            base.ids.entry(s.as_str().into()).or_insert(id);
            base.text.push(s.as_str().into());
        }
        base
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

impl<'p> Interner<'p> {
    pub fn new(base: &'p BaseStrings) -> Self {
        Interner {
            base,
            extra: FxHashMap::default(),
            extra_text: Vec::new(),
            lowered: Vec::new(),
        }
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.base.ids.get(s) {
            return *id;
        }
        if let Some(id) = self.extra.get(s) {
            return *id;
        }
        let id = u32::try_from(self.base.text.len() + self.extra_text.len()).unwrap_or(u32::MAX);
        self.extra.insert(s.into(), id);
        self.extra_text.push(s.into());
        id
    }

    pub fn text(&self, id: u32) -> &str {
        let i = id as usize;
        match self.base.text.get(i) {
            Some(t) => t,
            None => self
                .extra_text
                .get(i - self.base.text.len())
                .map_or("", |t| t),
        }
    }

    /// The id of the lower-case form of a string.
    pub fn lower(&mut self, id: u32) -> u32 {
        if let Some(&l) = self.lowered.get(id as usize)
            && l != UNKNOWN
        {
            return l;
        }
        let text = self.text(id);
        let l = if text.chars().any(char::is_uppercase) {
            let lowered = text.to_lowercase();
            self.intern(&lowered)
        } else {
            id
        };
        let i = id as usize;
        if i >= self.lowered.len() {
            self.lowered.resize(i + 1, UNKNOWN);
        }
        if let Some(slot) = self.lowered.get_mut(i) {
            *slot = l;
        }
        l
    }

    /// Forgets the batch's strings (the policy's stay), so memory does not grow with the input.
    pub fn clear(&mut self) {
        self.extra.clear();
        self.extra_text.clear();
        self.lowered.clear();
    }
}
