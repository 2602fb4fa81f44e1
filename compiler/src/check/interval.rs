//! Interval arithmetic for score-range analysis: numbers as ranges with open or closed ends and
//! an "only whole numbers" flag (so `len(x) != 0` narrows to `len(x) >= 1`), and three-valued
//! truth for conditions, which is how shadowed grade bands and dead rules are decided.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    pub lo_open: bool,
    pub hi_open: bool,
    /// Every value is a whole number (lengths, ranks, integer literals).
    pub integer: bool,
}

impl Interval {
    pub const TOP: Interval = Interval {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
        lo_open: true,
        hi_open: true,
        integer: false,
    };

    pub const UNIT: Interval = Interval {
        lo: 0.0,
        hi: 1.0,
        lo_open: false,
        hi_open: false,
        integer: false,
    };

    pub fn point(v: f64) -> Interval {
        Interval {
            lo: v,
            hi: v,
            lo_open: false,
            hi_open: false,
            integer: v.fract() == 0.0,
        }
    }

    pub fn closed(lo: f64, hi: f64) -> Interval {
        Interval {
            lo,
            hi,
            lo_open: lo.is_infinite(),
            hi_open: hi.is_infinite(),
            integer: false,
        }
    }

    /// `[0, ∞)` of whole numbers: a length.
    pub fn count() -> Interval {
        Interval {
            lo: 0.0,
            hi: f64::INFINITY,
            lo_open: false,
            hi_open: true,
            integer: true,
        }
    }

    pub fn with_integer(mut self, integer: bool) -> Interval {
        self.integer = integer;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.lo > self.hi || (self.lo == self.hi && (self.lo_open || self.hi_open))
    }

    pub fn is_bounded(&self) -> bool {
        self.lo.is_finite() && self.hi.is_finite()
    }

    pub fn contains(&self, v: f64) -> bool {
        (v > self.lo || (v == self.lo && !self.lo_open))
            && (v < self.hi || (v == self.hi && !self.hi_open))
    }

    /// Whether every value of `self` lies in `other`.
    pub fn within(&self, other: &Interval) -> bool {
        if self.is_empty() {
            return true;
        }
        let lo_ok = self.lo > other.lo || (self.lo == other.lo && (!other.lo_open || self.lo_open));
        let hi_ok = self.hi < other.hi || (self.hi == other.hi && (!other.hi_open || self.hi_open));
        lo_ok && hi_ok
    }

    /// The smallest interval holding both.
    pub fn join(&self, other: &Interval) -> Interval {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let (lo, lo_open) = if self.lo < other.lo {
            (self.lo, self.lo_open)
        } else if other.lo < self.lo {
            (other.lo, other.lo_open)
        } else {
            (self.lo, self.lo_open && other.lo_open)
        };
        let (hi, hi_open) = if self.hi > other.hi {
            (self.hi, self.hi_open)
        } else if other.hi > self.hi {
            (other.hi, other.hi_open)
        } else {
            (self.hi, self.hi_open && other.hi_open)
        };
        Interval {
            lo,
            hi,
            lo_open,
            hi_open,
            integer: self.integer && other.integer,
        }
    }

    pub fn meet(&self, other: &Interval) -> Interval {
        let (lo, lo_open) = if self.lo > other.lo {
            (self.lo, self.lo_open)
        } else if other.lo > self.lo {
            (other.lo, other.lo_open)
        } else {
            (self.lo, self.lo_open || other.lo_open)
        };
        let (hi, hi_open) = if self.hi < other.hi {
            (self.hi, self.hi_open)
        } else if other.hi < self.hi {
            (other.hi, other.hi_open)
        } else {
            (self.hi, self.hi_open || other.hi_open)
        };
        Interval {
            lo,
            hi,
            lo_open,
            hi_open,
            integer: self.integer || other.integer,
        }
        .tighten()
    }

    /// For whole numbers, turns open ends into closed ones (`> 0` is `>= 1`).
    fn tighten(mut self) -> Interval {
        if self.integer {
            if self.lo.is_finite() {
                let c = if self.lo_open && self.lo.fract() == 0.0 {
                    self.lo + 1.0
                } else {
                    self.lo.ceil()
                };
                self.lo = c;
                self.lo_open = false;
            }
            if self.hi.is_finite() {
                let f = if self.hi_open && self.hi.fract() == 0.0 {
                    self.hi - 1.0
                } else {
                    self.hi.floor()
                };
                self.hi = f;
                self.hi_open = false;
            }
        }
        self
    }

    pub fn neg(&self) -> Interval {
        Interval {
            lo: -self.hi,
            hi: -self.lo,
            lo_open: self.hi_open,
            hi_open: self.lo_open,
            integer: self.integer,
        }
    }

    pub fn add(&self, other: &Interval) -> Interval {
        Interval {
            lo: self.lo + other.lo,
            hi: self.hi + other.hi,
            lo_open: self.lo_open || other.lo_open,
            hi_open: self.hi_open || other.hi_open,
            integer: self.integer && other.integer,
        }
        .sane()
    }

    pub fn sub(&self, other: &Interval) -> Interval {
        self.add(&other.neg())
    }

    pub fn mul(&self, other: &Interval) -> Interval {
        let ends = [(self.lo, self.lo_open), (self.hi, self.hi_open)];
        let others = [(other.lo, other.lo_open), (other.hi, other.hi_open)];
        let mut lo = (f64::INFINITY, false);
        let mut hi = (f64::NEG_INFINITY, false);
        for (a, ao) in ends {
            for (b, bo) in others {
                // 0 × ∞ stands for 0 × (a large finite value): 0.
                let p = if a == 0.0 || b == 0.0 { 0.0 } else { a * b };
                let exact_zero = (a == 0.0 && !ao) || (b == 0.0 && !bo);
                let open = if exact_zero { false } else { ao || bo };
                if p < lo.0 || (p == lo.0 && !open) {
                    lo = (p, open);
                }
                if p > hi.0 || (p == hi.0 && !open) {
                    hi = (p, open);
                }
            }
        }
        Interval {
            lo: lo.0,
            hi: hi.0,
            lo_open: lo.1,
            hi_open: hi.1,
            integer: self.integer && other.integer,
        }
        .sane()
    }

    /// Division; the caller has already reported a divisor that can be zero. Values near a zero
    /// divisor are unbounded.
    pub fn div(&self, other: &Interval) -> Interval {
        let divisor = if other.contains(0.0) {
            // The runtime abstains on an exact zero: what remains is the divisor without 0.
            if other.lo == 0.0 {
                Interval {
                    lo_open: true,
                    ..*other
                }
            } else if other.hi == 0.0 {
                Interval {
                    hi_open: true,
                    ..*other
                }
            } else {
                return Interval::TOP;
            }
        } else {
            *other
        };
        if divisor.is_empty() {
            return Interval::TOP;
        }
        // 1 / divisor, for a divisor entirely on one side of 0 (a 0 end is open by now).
        let recip = |v: f64| if v.is_infinite() { 0.0 } else { 1.0 / v };
        let (lo, lo_open, hi, hi_open) = if divisor.lo >= 0.0 {
            let hi = if divisor.lo == 0.0 {
                f64::INFINITY
            } else {
                recip(divisor.lo)
            };
            (recip(divisor.hi), divisor.hi_open, hi, divisor.lo_open)
        } else {
            let lo = if divisor.hi == 0.0 {
                f64::NEG_INFINITY
            } else {
                recip(divisor.hi)
            };
            (lo, divisor.hi_open, recip(divisor.lo), divisor.lo_open)
        };
        let inverse = Interval {
            lo,
            hi,
            lo_open,
            hi_open,
            integer: false,
        };
        let mut out = self.mul(&inverse);
        out.integer = false;
        out
    }

    pub fn abs(&self) -> Interval {
        if self.lo >= 0.0 {
            *self
        } else if self.hi <= 0.0 {
            self.neg()
        } else {
            let (hi, hi_open) = if -self.lo > self.hi {
                (-self.lo, self.lo_open)
            } else if self.hi > -self.lo {
                (self.hi, self.hi_open)
            } else {
                (self.hi, self.hi_open && self.lo_open)
            };
            Interval {
                lo: 0.0,
                hi,
                lo_open: false,
                hi_open,
                integer: self.integer,
            }
        }
    }

    pub fn min(&self, other: &Interval) -> Interval {
        self.neg().max(&other.neg()).neg()
    }

    pub fn max(&self, other: &Interval) -> Interval {
        let (lo, lo_open) = if self.lo > other.lo {
            (self.lo, self.lo_open)
        } else if other.lo > self.lo {
            (other.lo, other.lo_open)
        } else {
            (self.lo, self.lo_open && other.lo_open)
        };
        let (hi, hi_open) = if self.hi > other.hi {
            (self.hi, self.hi_open)
        } else if other.hi > self.hi {
            (other.hi, other.hi_open)
        } else {
            (self.hi, self.hi_open && other.hi_open)
        };
        Interval {
            lo,
            hi,
            lo_open,
            hi_open,
            integer: self.integer && other.integer,
        }
    }

    /// Replaces NaN ends (from ∞ − ∞) with the widest values.
    fn sane(mut self) -> Interval {
        if self.lo.is_nan() {
            self.lo = f64::NEG_INFINITY;
            self.lo_open = true;
        }
        if self.hi.is_nan() {
            self.hi = f64::INFINITY;
            self.hi_open = true;
        }
        self
    }

    /// The values of `self` for which `self OP c` holds, where OP is one of `< <= > >= == !=`.
    pub fn restrict(&self, op: Cmp, c: &Interval) -> Interval {
        let r = match op {
            Cmp::Lt => Interval {
                lo: f64::NEG_INFINITY,
                hi: c.hi,
                lo_open: true,
                hi_open: true,
                integer: false,
            },
            Cmp::Le => Interval {
                lo: f64::NEG_INFINITY,
                hi: c.hi,
                lo_open: true,
                hi_open: c.hi_open,
                integer: false,
            },
            Cmp::Gt => Interval {
                lo: c.lo,
                hi: f64::INFINITY,
                lo_open: true,
                hi_open: true,
                integer: false,
            },
            Cmp::Ge => Interval {
                lo: c.lo,
                hi: f64::INFINITY,
                lo_open: c.lo_open,
                hi_open: true,
                integer: false,
            },
            Cmp::Eq => *c,
            Cmp::Ne => {
                // Only a single excluded point at an end can be cut off.
                if c.lo == c.hi && !c.lo_open {
                    let v = c.lo;
                    if v == self.lo && v == self.hi {
                        return Interval {
                            lo_open: true,
                            ..*self
                        };
                    }
                    if v == self.lo {
                        return Interval {
                            lo_open: true,
                            ..*self
                        }
                        .tighten();
                    }
                    if v == self.hi {
                        return Interval {
                            hi_open: true,
                            ..*self
                        }
                        .tighten();
                    }
                }
                return *self;
            }
        };
        self.meet(&r)
    }

    /// Whether `self OP other` always, never or sometimes holds.
    pub fn compare(&self, op: Cmp, other: &Interval) -> Truth {
        if self.is_empty() || other.is_empty() {
            return Truth::Unknown;
        }
        let always_lt =
            self.hi < other.lo || (self.hi == other.lo && (self.hi_open || other.lo_open));
        let always_le = self.hi <= other.lo;
        let always_gt = other.always_less(self);
        let always_ge = other.hi <= self.lo;
        let single = |i: &Interval| i.lo == i.hi && !i.lo_open && !i.hi_open;
        match op {
            Cmp::Lt => truth(always_lt, always_ge),
            Cmp::Le => truth(always_le, always_gt),
            Cmp::Gt => truth(always_gt, always_le),
            Cmp::Ge => truth(always_ge, always_lt),
            Cmp::Eq => {
                if single(self) && single(other) && self.lo == other.lo {
                    Truth::True
                } else if always_lt || always_gt {
                    Truth::False
                } else {
                    Truth::Unknown
                }
            }
            Cmp::Ne => !self.compare(Cmp::Eq, other),
        }
    }

    fn always_less(&self, other: &Interval) -> bool {
        self.hi < other.lo || (self.hi == other.lo && (self.hi_open || other.lo_open))
    }
}

fn truth(always: bool, never: bool) -> Truth {
    if always {
        Truth::True
    } else if never {
        Truth::False
    } else {
        Truth::Unknown
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |v: f64| -> String {
            if v == f64::INFINITY {
                "∞".to_string()
            } else if v == f64::NEG_INFINITY {
                "-∞".to_string()
            } else {
                let s = format!("{:.4}", v);
                let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
                if s == "-0" { "0".to_string() } else { s }
            }
        };
        write!(
            f,
            "{}{}, {}{}",
            if self.lo_open { "(" } else { "[" },
            num(self.lo),
            num(self.hi),
            if self.hi_open { ")" } else { "]" }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Cmp {
    pub fn negate(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Ge,
            Cmp::Le => Cmp::Gt,
            Cmp::Gt => Cmp::Le,
            Cmp::Ge => Cmp::Lt,
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
        }
    }

    /// `a OP b` as `b OP' a`.
    pub fn flip(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            other => other,
        }
    }
}

/// Three-valued truth of a condition under what is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl std::ops::Not for Truth {
    type Output = Truth;

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

impl Truth {
    pub fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }

    pub fn or(self, other: Truth) -> Truth {
        !((!self).and(!other))
    }

    pub fn join(self, other: Truth) -> Truth {
        if self == other { self } else { Truth::Unknown }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_sum_of_unit_scores_stays_in_unit() {
        let s = Interval::point(0.8)
            .mul(&Interval::UNIT)
            .add(&Interval::point(0.2).mul(&Interval::UNIT));
        assert!(s.within(&Interval::UNIT), "{s}");
        let over = Interval::point(0.8)
            .mul(&Interval::UNIT)
            .add(&Interval::point(0.4).mul(&Interval::UNIT));
        assert!(!over.within(&Interval::UNIT));
        assert_eq!(over.hi, 1.2000000000000002_f64.min(over.hi));
    }

    #[test]
    fn whole_numbers_narrow_past_an_excluded_zero() {
        let len = Interval::count();
        let nonzero = len.restrict(Cmp::Ne, &Interval::point(0.0));
        assert_eq!((nonzero.lo, nonzero.lo_open), (1.0, false));
        let ratio = Interval::count().div(&nonzero);
        assert_eq!(ratio.lo, 0.0);
        assert!(ratio.hi.is_infinite());
    }

    #[test]
    fn open_ends_decide_thresholds() {
        let below = Interval::UNIT.restrict(Cmp::Lt, &Interval::point(0.5));
        assert_eq!(below.compare(Cmp::Ge, &Interval::point(0.5)), Truth::False);
        assert_eq!(
            below.compare(Cmp::Ge, &Interval::point(0.4)),
            Truth::Unknown
        );
        assert_eq!(
            Interval::UNIT.compare(Cmp::Gt, &Interval::point(1.0)),
            Truth::False
        );
        assert_eq!(
            Interval::UNIT.compare(Cmp::Le, &Interval::point(1.0)),
            Truth::True
        );
    }

    #[test]
    fn division_by_a_positive_range() {
        let q = Interval::UNIT.div(&Interval::closed(2.0, 4.0));
        assert!(q.within(&Interval::closed(0.0, 0.5)), "{q}");
    }

    #[test]
    fn abs_and_minmax() {
        let d = Interval::closed(-3.0, 2.0).abs();
        assert_eq!((d.lo, d.hi), (0.0, 3.0));
        let m = Interval::closed(0.0, 5.0).min(&Interval::point(1.0));
        assert_eq!((m.lo, m.hi), (0.0, 1.0));
    }
}
