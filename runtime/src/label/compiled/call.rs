//! Compiling a call of a policy function: its arguments into the parameters' slots, its body
//! compiled once per argument types, its declared range.

use super::*;

impl Compiler<'_> {
    /// A call of a function: the code that evaluates the arguments into the function's
    /// parameter slots (narrowing the selection to the rows where none abstained), the body
    /// compiled for the arguments' types, and the declared range. `None` for a call that cannot
    /// be compiled (an unknown function, or recursion, which the checker refuses).
    pub(super) fn call(
        &mut self,
        function: u32,
        args: &[Node],
        locals: &[Local],
        repr: Repr,
    ) -> Option<(Prelude, Body, Option<[f64; 2]>)> {
        let f = self.program.functions.get(function as usize)?;
        if self.compiling.contains(&function) {
            return None;
        }
        // Each argument is held as the plain representation its type allows.
        let shapes: Vec<(Ty, bool)> = args
            .iter()
            .map(|a| (self.ty(a, locals), self.may_miss(a, locals)))
            .collect();
        let kinds: Vec<SlotKind> = shapes.iter().map(|(t, m)| slot_kind(*t, *m)).collect();
        let codes: Vec<SlotCode> = args
            .iter()
            .zip(&kinds)
            .map(|(a, k)| self.slot_code(a, locals, *k))
            .collect();
        let params = match self.param_slots.get(&(function, kinds.clone())) {
            Some(p) => p.clone(),
            None => {
                let p: Vec<usize> = kinds.iter().map(|k| self.slots.next(*k)).collect();
                self.param_slots
                    .insert((function, kinds.clone()), p.clone());
                p
            }
        };
        let key = (function, shapes.clone(), repr);
        let body = match self.bodies.get(&key) {
            Some(b) => b.clone(),
            None => {
                let body_locals: Vec<Local> = shapes
                    .iter()
                    .zip(&kinds)
                    .zip(&params)
                    .map(|(((ty, may_miss), kind), slot)| Local {
                        slot: *slot,
                        ty: *ty,
                        kind: *kind,
                        may_miss: *may_miss,
                    })
                    .collect();
                self.compiling.push(function);
                let body = match repr {
                    Repr::Num => Body::Num(Arc::new(self.num(&f.body, &body_locals))),
                    Repr::Tri => Body::Tri(Arc::new(self.tri(&f.body, &body_locals))),
                    Repr::Id => Body::Id(Arc::new(self.id(&f.body, &body_locals))),
                    Repr::Val => Body::Val(Arc::new(self.val(&f.body, &body_locals))),
                };
                self.compiling.pop();
                self.bodies.insert(key, body.clone());
                body
            }
        };
        if !args.iter().any(|a| self.calls_into(a, function, 0)) {
            // No argument reaches this function again: each goes straight to its slot, for the
            // rows whose earlier arguments did not abstain.
            let prelude: Prelude = Box::new(move |e: &mut Env<'_, '_, '_>, live: &mut Vec<u32>| {
                for (code, &slot) in codes.iter().zip(&params) {
                    if live.is_empty() {
                        break;
                    }
                    e.set_slot(slot, code, live);
                    match code {
                        SlotCode::Num(_) => {
                            if let Some(s) = e.num_slots.get(slot) {
                                live.retain(|&r| !at(s, r as usize, NONE).is_nan());
                            }
                        }
                        SlotCode::Tri(_) => {
                            if let Some(s) = e.tri_slots.get(slot) {
                                live.retain(|&r| at(s, r as usize, None).is_some());
                            }
                        }
                        SlotCode::Id(_) => {
                            if let Some(s) = e.id_slots.get(slot) {
                                live.retain(|&r| at(s, r as usize, ABSENT_ID) != ABSENT_ID);
                            }
                        }
                        SlotCode::Val(_) => {
                            if let Some(s) = e.slots.get(slot) {
                                live.retain(|&r| {
                                    !matches!(s.get(r as usize), Some(Val::Abstain) | None)
                                });
                            }
                        }
                    }
                }
            });
            return Some((prelude, body, f.declared_range));
        }
        // Arguments are evaluated in order, each only for the rows whose earlier arguments did
        // not abstain, into buffers of their own (an argument calls this function too), and
        // only then moved to the parameters' slots.
        let prelude: Prelude = Box::new(move |e: &mut Env<'_, '_, '_>, live: &mut Vec<u32>| {
            let mut args = Vec::with_capacity(codes.len());
            for code in &codes {
                if live.is_empty() {
                    break;
                }
                let arg = match code {
                    SlotCode::Num(c) => {
                        let mut b = e.take_num();
                        c(e, live, &mut b);
                        live.retain(|&r| !at(&b, r as usize, NONE).is_nan());
                        Arg::Num(b)
                    }
                    SlotCode::Tri(c) => {
                        let mut b = e.take_tri();
                        c(e, live, &mut b);
                        live.retain(|&r| at(&b, r as usize, None).is_some());
                        Arg::Tri(b)
                    }
                    SlotCode::Id(c) => {
                        let mut b = e.take_id();
                        c(e, live, &mut b);
                        live.retain(|&r| at(&b, r as usize, ABSENT_ID) != ABSENT_ID);
                        Arg::Id(b)
                    }
                    SlotCode::Val(c) => {
                        let mut b = e.take_val();
                        c(e, live, &mut b);
                        live.retain(|&r| !matches!(b.get(r as usize), Some(Val::Abstain) | None));
                        Arg::Val(b)
                    }
                };
                args.push(arg);
            }
            for (arg, &slot) in args.into_iter().zip(&params) {
                match arg {
                    Arg::Num(b) => {
                        if let Some(s) = e.num_slots.get_mut(slot) {
                            copy_rows(live, &b, s);
                        }
                        e.give_num(b);
                    }
                    Arg::Tri(b) => {
                        if let Some(s) = e.tri_slots.get_mut(slot) {
                            copy_rows(live, &b, s);
                        }
                        e.give_tri(b);
                    }
                    Arg::Id(b) => {
                        if let Some(s) = e.id_slots.get_mut(slot) {
                            copy_rows(live, &b, s);
                        }
                        e.give_id(b);
                    }
                    Arg::Val(mut b) => {
                        if let Some(s) = e.slots.get_mut(slot) {
                            for &r in live.iter() {
                                let r = r as usize;
                                if let (Some(s), Some(x)) = (s.get_mut(r), b.get_mut(r)) {
                                    *s = std::mem::replace(x, Val::Abstain);
                                }
                            }
                        }
                        e.give_val(b);
                    }
                }
            }
        });
        Some((prelude, body, f.declared_range))
    }
}
