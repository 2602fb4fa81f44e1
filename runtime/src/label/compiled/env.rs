//! What compiled code reads and writes while a chunk of pairs is labeled: the batch, the slots
//! of `let`s and parameters, and the pools of buffers the code borrows and gives back.

use super::*;

/// Everything a compiled node may read and write while a chunk of pairs is labeled. Row `r` of
/// the chunk is pair `base + r` of the batch.
pub(in crate::label) struct Env<'a, 's, 'p> {
    pub batch: &'a PairBatch,
    pub base: usize,
    /// `let`s and function parameters: each a column at a slot fixed at compile time, held as
    /// numbers, truths, ids or general values (see [`SlotKind`]).
    pub slots: Vec<Vec<Val<'a>>>,
    pub num_slots: Vec<Vec<f64>>,
    pub tri_slots: Vec<Vec<Option<bool>>>,
    pub id_slots: Vec<Vec<u32>>,
    pub ctx: &'a mut Ctx<'s, 'p>,
    /// The dimension's score while its grade bands run; NaN elsewhere.
    pub score: Vec<f64>,
    /// The overall score while rules and overall bands run; NaN elsewhere.
    pub overall: Vec<f64>,
    /// Each dimension's scores (NaN: abstained) while rules and overall bands run.
    pub dims: Vec<Vec<f64>>,
    /// A division by zero or an overflow happened in the dimension being evaluated.
    pub undefined: Vec<bool>,
    /// The length of every buffer: [`CHUNK`], or fewer for a batch that is smaller.
    pub rows: usize,
    pub(super) pool: Pool<'a>,
}

/// Buffers handed out to nodes and given back, so a chunk allocates nothing after the first.
/// The pool outlives its `Env`: it goes back to its thread when the `Env` is dropped, so that
/// labeling one pair after another (`rubric trace`, `test`, `stats`) allocates almost nothing.
#[derive(Default)]
pub(super) struct Pool<'a> {
    pub(super) nums: Vec<Vec<f64>>,
    pub(super) tris: Vec<Vec<Option<bool>>>,
    pub(super) vals: Vec<Vec<Val<'a>>>,
    pub(super) sels: Vec<Vec<u32>>,
    pub(super) ids: Vec<Vec<u32>>,
    pub(super) keys: Vec<Vec<KeyTuple>>,
}

thread_local! {
    /// Each thread's pool, between labelings.
    static POOL: Cell<Pool<'static>> = const {
        Cell::new(Pool {
            nums: Vec::new(),
            tris: Vec::new(),
            vals: Vec::new(),
            sels: Vec::new(),
            ids: Vec::new(),
            keys: Vec::new(),
        })
    };
}

/// A buffer of `rows` values from a pool's list (its old values are stale: every node writes a
/// row before reading it).
pub(super) fn pooled<T: Clone>(list: &mut Vec<Vec<T>>, rows: usize, fill: T) -> Vec<T> {
    let mut b = list.pop().unwrap_or_default();
    b.resize(rows, fill);
    b
}

impl<'a, 's, 'p> Env<'a, 's, 'p> {
    pub fn new(batch: &'a PairBatch, ctx: &'a mut Ctx<'s, 'p>, slots: Slots, dims: usize) -> Self {
        let rows = chunk_rows(batch.len());
        // The thread's pool, its values' lifetime shortened to this batch's.
        let mut pool: Pool<'a> = POOL.take();
        Env {
            batch,
            base: 0,
            slots: (0..slots.val)
                .map(|_| pooled(&mut pool.vals, rows, Val::Abstain))
                .collect(),
            num_slots: (0..slots.num)
                .map(|_| pooled(&mut pool.nums, rows, NONE))
                .collect(),
            tri_slots: (0..slots.tri)
                .map(|_| pooled(&mut pool.tris, rows, None))
                .collect(),
            id_slots: (0..slots.id)
                .map(|_| pooled(&mut pool.ids, rows, ABSENT_ID))
                .collect(),
            ctx,
            score: pooled(&mut pool.nums, rows, NONE),
            overall: pooled(&mut pool.nums, rows, NONE),
            dims: (0..dims)
                .map(|_| pooled(&mut pool.nums, rows, NONE))
                .collect(),
            undefined: vec![false; rows],
            rows,
            pool,
        }
    }

    /// Evaluates a `let` into its slot for the selected rows.
    pub fn set_slot(&mut self, slot: usize, code: &SlotCode, sel: &[u32]) {
        match code {
            SlotCode::Num(c) => run_into_slot(self, |e| &mut e.num_slots, slot, c, sel),
            SlotCode::Tri(c) => run_into_slot(self, |e| &mut e.tri_slots, slot, c, sel),
            SlotCode::Id(c) => run_into_slot(self, |e| &mut e.id_slots, slot, c, sel),
            SlotCode::Val(c) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    let mut column = std::mem::take(s);
                    c(self, sel, &mut column);
                    if let Some(s) = self.slots.get_mut(slot) {
                        *s = column;
                    }
                }
            }
        }
    }

    /// Calls `f` with a row's value where it is, without copying it into a buffer.
    pub(super) fn with_val<R>(&self, p: Place, r: usize, f: impl FnOnce(&Val<'_>) -> R) -> R {
        match p {
            Place::Column(c) => match self.column(c) {
                Some(col) => f(&col.val(self.base + r)),
                None => f(&Val::Abstain),
            },
            Place::Slot(s) => match self.slots.get(s).and_then(|v| row(v, r)) {
                Some(v) => f(v),
                None => f(&Val::Abstain),
            },
        }
    }

    pub(super) fn column(&self, c: usize) -> Option<&'a Column> {
        self.batch.column(c)
    }

    pub fn take_num(&mut self) -> Vec<f64> {
        pooled(&mut self.pool.nums, self.rows, NONE)
    }
    pub fn give_num(&mut self, b: Vec<f64>) {
        self.pool.nums.push(b);
    }
    pub fn take_tri(&mut self) -> Vec<Option<bool>> {
        pooled(&mut self.pool.tris, self.rows, None)
    }
    pub fn give_tri(&mut self, b: Vec<Option<bool>>) {
        self.pool.tris.push(b);
    }
    pub(super) fn take_id(&mut self) -> Vec<u32> {
        pooled(&mut self.pool.ids, self.rows, ABSENT_ID)
    }
    pub(super) fn give_id(&mut self, b: Vec<u32>) {
        self.pool.ids.push(b);
    }
    pub(super) fn take_val(&mut self) -> Vec<Val<'a>> {
        pooled(&mut self.pool.vals, self.rows, Val::Abstain)
    }
    pub(super) fn give_val(&mut self, b: Vec<Val<'a>>) {
        self.pool.vals.push(b);
    }
    /// An empty selection.
    pub fn take_sel(&mut self) -> Vec<u32> {
        let mut s = self.pool.sels.pop().unwrap_or_default();
        s.clear();
        s
    }
    pub fn give_sel(&mut self, s: Vec<u32>) {
        self.pool.sels.push(s);
    }

    pub(super) fn take_keys(&mut self) -> Vec<KeyTuple> {
        pooled(&mut self.pool.keys, self.rows, [None; MAX_KEYS])
    }
    pub(super) fn give_keys(&mut self, b: Vec<KeyTuple>) {
        self.pool.keys.push(b);
    }
}

/// Runs code of a plain result into one of the `Env`'s slot columns (taken out while the code
/// runs, so the code can read the other slots).
pub(super) fn run_into_slot<T>(
    e: &mut Env<'_, '_, '_>,
    columns: for<'e> fn(&'e mut Env<'_, '_, '_>) -> &'e mut Vec<Vec<T>>,
    slot: usize,
    code: &Code<T>,
    sel: &[u32],
) {
    let Some(s) = columns(e).get_mut(slot) else {
        return;
    };
    let mut values = std::mem::take(s);
    code(e, sel, &mut values);
    if let Some(s) = columns(e).get_mut(slot) {
        *s = values;
    }
}

impl Drop for Env<'_, '_, '_> {
    /// Gives every buffer back to the thread's pool, emptied of this batch's values.
    fn drop(&mut self) {
        let mut pool = std::mem::take(&mut self.pool);
        pool.nums.append(&mut self.num_slots);
        pool.nums.append(&mut self.dims);
        pool.nums.push(std::mem::take(&mut self.score));
        pool.nums.push(std::mem::take(&mut self.overall));
        pool.tris.append(&mut self.tri_slots);
        pool.ids.append(&mut self.id_slots);
        pool.vals.append(&mut self.slots);
        // Values may borrow from the batch: the value buffers are emptied, which only re-types
        // them (`collect` reuses each allocation).
        let vals = std::mem::take(&mut pool.vals)
            .into_iter()
            .map(|mut v| {
                v.clear();
                v.into_iter()
                    .map(|_| Val::Abstain)
                    .collect::<Vec<Val<'static>>>()
            })
            .collect();
        POOL.set(Pool {
            nums: pool.nums,
            tris: pool.tris,
            vals,
            sels: pool.sels,
            ids: pool.ids,
            keys: pool.keys,
        });
    }
}
